"""synthetic: two regression tasks of controlled correlation (MMoE, KDD 2018)."""

import numpy as np

from mmoeex_tf.datasets.base import SPLITS, MultiTaskData, split_arrays
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import Task


def load_synthetic(
    correlation=0.5,
    seed=0,
    num_features=100,
    scale=1.0,
    num_sines=10,
    noise_std=0.1,
    sizes=(10_000, 1_000, 1_000),
):
    """Generates MMoE's two regression tasks of controlled correlation.

    The generator of Ma et al., "Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts" (KDD 2018).
    With orthonormal `u1`, `u2`: `w1 = c * u1`,
    `w2 = c * (p * u1 + sqrt(1 - p**2) * u2)`; `x ~ N(0, I)`; and
    `y_i = w_i.x + sum_j sin(a_j * w_i.x + b_j) + noise`, with `a_j`,
    `b_j ~ N(0, 1)` shared by both tasks. `u1` and `u2` are also orthogonal
    to the all-ones vector, so that `p` is both the cosine and the Pearson
    correlation of `w1` and `w2` (and the correlation of the linear parts
    `w1.x` and `w2.x`). `info["weights"]` holds `(w1, w2)`.

    Args:
        correlation: `p`, in [-1, 1].
        seed: Seed of `numpy.random.default_rng`; everything drawn depends
            on it only.
        num_features: `d`, at least 3.
        scale: `c`.
        num_sines: `m`, the number of sine terms.
        noise_std: Standard deviation of the Gaussian noise of each task.
        sizes: Rows of train, val and test.

    Returns:
        A `MultiTaskData` named `"synthetic"` with regression tasks `y1` and
        `y2`.

    Raises:
        MMoEExError: if `correlation` is outside [-1, 1] or `num_features`
            is below 3.
    """
    if not -1.0 <= correlation <= 1.0:
        raise MMoEExError(
            f"synthetic: correlation must be in [-1, 1], got {correlation}."
        )
    if num_features < 3:
        raise MMoEExError(f"synthetic: num_features must be >= 3, got {num_features}.")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(
        np.column_stack([np.ones(num_features), rng.standard_normal((num_features, 2))])
    )
    u1, u2 = basis[:, 1], basis[:, 2]
    weights = (
        scale * u1,
        scale * (correlation * u1 + np.sqrt(1.0 - correlation**2) * u2),
    )
    alpha, beta = rng.standard_normal(num_sines), rng.standard_normal(num_sines)
    x = rng.standard_normal((sum(sizes), num_features))
    labels = {}
    for name, w in zip(("y1", "y2"), weights):
        linear = x @ w
        noise = noise_std * rng.standard_normal(len(x))
        labels[name] = linear + np.sin(np.outer(linear, alpha) + beta).sum(1) + noise
    bounds = np.cumsum((0, *sizes))
    rows = {s: np.arange(a, b) for s, a, b in zip(SPLITS, bounds[:-1], bounds[1:])}
    x_split, y_split = split_arrays(x, labels, rows)
    return MultiTaskData(
        "synthetic",
        (Task("y1", "regression"), Task("y2", "regression")),
        x_split,
        y_split,
        [f"x{i}" for i in range(num_features)],
        info={"weights": weights, "correlation": correlation},
    )
