"""Task grouping from head weights (Shiri and Sun, arXiv 2209.11892).

Train every task jointly once, with linear task heads on a shared
representation; tasks whose head weights point the same way are similar.
Cluster them, train one model per group, and combine the group models into
one predictor with the original task order.
"""

import dataclasses

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from mmoeex_tf._checks import check_choice
from mmoeex_tf.errors import MMoEExError

SIMILARITIES = ("cosine", "correlation")


def head_weights(model):
    """Returns each task's head weights as one row, `(tasks, features)`.

    The heads must read the shared representation directly (a model built
    with `tower_units=[]`), so that their weights share one basis; tower
    units are permuted arbitrarily from task to task and cannot be compared.

    Args:
        model: A built `MMoEExModel` with no tower layers.

    Raises:
        MMoEExError: if the model has towers or its tasks' outputs differ in
            size.
    """
    if model.towers.units:
        raise MMoEExError(
            "Task grouping compares head weights in the shared basis: train the "
            "joint model with tower_units=[] (its towers have "
            f"{model.towers.units} units)."
        )
    sizes = {task.output_size for task in model.tasks}
    if len(sizes) > 1:
        raise MMoEExError(
            f"Task grouping needs tasks of one output size, got sizes {sorted(sizes)}."
        )
    rows = [None] * len(model.tasks)
    heads = model.heads
    for (_, members), kernel, bias in zip(heads.groups, heads.kernels, heads.biases):
        kernel, bias = np.asarray(kernel), np.asarray(bias)
        for position, index in enumerate(members):
            rows[index] = np.concatenate([kernel[position].ravel(), bias[position]])
    return np.stack(rows)


def task_similarity(weights, metric="cosine"):
    """Pairwise similarity of the rows of `weights`, in [-1, 1].

    Args:
        weights: `(tasks, features)` head weights.
        metric: `"cosine"` or `"correlation"` (Pearson, i.e. cosine of the
            centred rows).

    Returns:
        A symmetric `(tasks, tasks)` array with ones on the diagonal.
    """
    check_choice(metric, "metric", SIMILARITIES)
    weights = np.asarray(weights, dtype=np.float64)
    if metric == "correlation":
        weights = weights - weights.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(weights, axis=1, keepdims=True)
    unit = weights / np.where(norms > 0, norms, 1.0)
    similarity = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(similarity, 1.0)
    return similarity


def cluster_tasks(similarity, num_groups, linkage="average"):
    """Agglomerative clustering of tasks on the distance `1 - similarity`.

    Args:
        similarity: `(tasks, tasks)` similarity matrix.
        num_groups: Number of groups, in [1, tasks].
        linkage: Scipy linkage method: `"average"`, `"complete"` or `"single"`.

    Returns:
        A list of groups, each a sorted list of task indices; groups are
        ordered by their first task.
    """
    count = len(similarity)
    if not 1 <= num_groups <= count:
        raise MMoEExError(f"num_groups must be in [1, {count}], got {num_groups}.")
    if count == 1:
        return [[0]]
    distance = np.clip(1.0 - np.asarray(similarity, dtype=np.float64), 0.0, 2.0)
    distance = (distance + distance.T) / 2.0
    np.fill_diagonal(distance, 0.0)
    tree = hierarchy.linkage(squareform(distance, checks=False), method=linkage)
    labels = hierarchy.fcluster(tree, t=num_groups, criterion="maxclust")
    groups = [np.flatnonzero(labels == label).tolist() for label in np.unique(labels)]
    return sorted(groups, key=lambda group: group[0])


@dataclasses.dataclass
class TaskGrouping:
    """Groups of tasks and the similarity they were drawn from.

    Attributes:
        task_names: All task names, in the joint model's order.
        groups: Each group as a list of task names.
        similarity: `(tasks, tasks)` similarity matrix in `task_names` order.
    """

    task_names: list
    groups: list
    similarity: np.ndarray

    def order(self):
        """Task indices ordered group by group (for plotting the matrix)."""
        position = {name: i for i, name in enumerate(self.task_names)}
        return [position[name] for group in self.groups for name in group]


def group_tasks(model, num_groups, metric="cosine", linkage="average"):
    """Groups the tasks of a jointly trained model by their head weights.

    Args:
        model: An `MMoEExModel` trained on all tasks with `tower_units=[]`.
        num_groups: Number of groups.
        metric: `"cosine"` or `"correlation"`.
        linkage: Agglomerative linkage method.

    Returns:
        A `TaskGrouping`.
    """
    similarity = task_similarity(head_weights(model), metric)
    groups = cluster_tasks(similarity, num_groups, linkage)
    names = list(model.task_names)
    return TaskGrouping(names, [[names[i] for i in g] for g in groups], similarity)
