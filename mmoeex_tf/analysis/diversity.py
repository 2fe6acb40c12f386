"""Expert diversity (Aoki et al., 2022) and gate usage of a trained model.

The MMoEEx paper measures how different the experts are by the distance
between their outputs over a data set: for experts i and j with output
matrices `O_i`, `O_j` (samples x units), `d_ij = ||O_i - O_j||_F`, the whole
matrix divided by its largest entry so that it lies in [0, 1]. The
diversity score is the mean of that matrix.

`diversity_report` gathers the three measures (distance matrix, score, gate
usage) of a model on a data set; `mmoeex diversity` prints and saves it, and
`mmoeex_tf.integrations.callbacks.DiversityCallback` logs it to TensorBoard.
"""

import dataclasses

import numpy as np
import pandas as pd

from mmoeex_tf.analysis.plots import plot_heatmap

__all__ = [
    "DiversityReport",
    "diversity_report",
    "diversity_score",
    "expert_distance_matrix",
    "gate_usage",
    "plot_heatmap",
]


def _batches(x, batch_size):
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]


def expert_distance_matrix(model, x, batch_size=1024):
    """Normalised pairwise distances between the experts' outputs.

    Entry `(i, j)` is the Frobenius norm of the difference of expert i's and
    expert j's outputs over all samples of `x` (every step of every sequence
    counting as a sample for sequence experts), divided by the largest
    entry. Outputs are computed in inference mode (no dropout).

    Args:
        model: An `MMoEExModel`.
        x: Features, `(n, features)` or `(n, steps, features)`.
        batch_size: Samples per forward pass.

    Returns:
        A float64 `(experts, experts)` array, symmetric, 0 on the diagonal,
        largest entry 1; all zeros if all experts give the same outputs.
    """
    num_experts = model.mixture.num_experts
    squared = np.zeros((num_experts, num_experts))
    for batch in _batches(x, batch_size):
        outputs = np.asarray(model.mixture.expert_outputs(batch), dtype=np.float64)
        outputs = outputs.reshape(-1, num_experts, outputs.shape[-1])
        for expert in range(num_experts):
            difference = outputs - outputs[:, expert : expert + 1]
            squared[expert] += np.square(difference).sum(axis=(0, 2))
    distances = np.sqrt(squared)
    largest = distances.max()
    return distances / largest if largest > 0 else distances


def diversity_score(distance_matrix):
    """The paper's diversity score: the mean of all `E x E` entries.

    The zero diagonal is included, as in the paper, so `E` equally distant
    experts score `(E - 1) / E` rather than 1.

    Args:
        distance_matrix: The output of `expert_distance_matrix`.

    Returns:
        A float in [0, 1]; 0 when the experts are identical.
    """
    return float(np.mean(distance_matrix))


def gate_usage(model, x, batch_size=1024):
    """Mean gate weight of every task on every expert.

    Args:
        model: An `MMoEExModel`.
        x: Features, `(n, features)` or `(n, steps, features)`; every step
            of a sequence counts as a sample.
        batch_size: Samples per forward pass.

    Returns:
        A `DataFrame`, tasks (index `task`) x experts (`expert_0`, ...):
        each row sums to 1 and experts closed to a task are exactly 0.
    """
    num_tasks, num_experts = np.shape(model.gate_mask)
    total, count = np.zeros((num_tasks, num_experts)), 0
    for batch in _batches(x, batch_size):
        gates = np.asarray(model.mixture.gate(batch), dtype=np.float64)
        gates = gates.reshape(-1, num_tasks, num_experts)
        total += gates.sum(axis=0)
        count += len(gates)
    return pd.DataFrame(
        total / count,
        index=pd.Index(model.task_names, name="task"),
        columns=[f"expert_{e}" for e in range(num_experts)],
    )


@dataclasses.dataclass
class DiversityReport:
    """The experts' distances, their diversity score and the gate usage.

    Attributes:
        distances: The `expert_distance_matrix` as a `DataFrame`, experts x
            experts (index `expert`; `expert_0`, ...).
        score: The `diversity_score` of `distances`.
        usage: The `gate_usage`, tasks x experts.
    """

    distances: pd.DataFrame
    score: float
    usage: pd.DataFrame

    def plot(self, path, title="Expert distances"):
        """Saves the distance matrix as a PNG heatmap, the score in the title.

        Args:
            path: The PNG file, or a binary file object.
            title: Start of the title; ` (score 0.123)` is appended.
        """
        plot_heatmap(self.distances, path, title=f"{title} (score {self.score:.3f})")


def diversity_report(model, x, batch_size=1024):
    """Measures a model's expert diversity and gate usage on features `x`.

    Args:
        model: An `MMoEExModel`.
        x: Features, `(n, features)` or `(n, steps, features)`.
        batch_size: Samples per forward pass.

    Returns:
        A `DiversityReport`.
    """
    usage = gate_usage(model, x, batch_size)
    experts = list(usage.columns)
    distances = pd.DataFrame(
        expert_distance_matrix(model, x, batch_size),
        index=pd.Index(experts, name="expert"),
        columns=experts,
    )
    return DiversityReport(distances, diversity_score(distances.to_numpy()), usage)
