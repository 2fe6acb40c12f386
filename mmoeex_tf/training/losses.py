"""Per-task losses with missing labels masked out, and output activations.

Labels arrive as float tensors where `NaN` marks a missing label; an optional
per-task sample weight (0 = missing) masks too. Each task's loss is the
weighted mean over its present labels: the same number as if the missing
rows had been dropped, and exactly 0 (never NaN) for a batch where the task
has no labels at all.
"""

import numpy as np
import tensorflow as tf

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.training.stacking import stack_tasks, task_axis


def expected_label_shape(task, batch_shape):
    """Returns the label shape a task expects after `batch_shape`.

    Args:
        task: A `Task`.
        batch_shape: `(batch,)` or `(batch, steps)` for per-step tasks.

    Returns:
        A tuple: the batch shape, plus `(output_size,)` for multilabel and
        multi-output regression tasks.
    """
    return tuple(batch_shape) + ((task.output_size,) if task.label_rank else ())


def prepare_labels(tasks, labels, sample_weights, input_shape):
    """Checks every task's labels and returns them cleaned, with their masks.

    Labels of one shape and sample weight are cleaned as one stacked tensor,
    so hundreds of tasks add a few ops to a step, not a few per task.

    Args:
        tasks: The `Task` specs.
        labels: Dict task name -> labels, any numeric dtype, `NaN` = missing.
            A trailing axis of size 1 is accepted for scalar labels.
        sample_weights: Dict task name -> `None` or weights broadcastable to
            the task's labels.
        input_shape: Static shape of the features, `(batch, features)` or
            `(batch, steps, features)`.

    Returns:
        `(labels, weights)` dicts keyed by task name: float32 labels with
        missing entries set to 0, and float32 weights that are 0 on missing
        entries.

    Raises:
        MMoEExError: if a task's label shape or dtype does not fit it.
    """
    checked = {t.name: checked_labels(t, labels[t.name], input_shape) for t in tasks}
    groups = {}
    for name, values in checked.items():
        weight = sample_weights.get(name)
        key = (tuple(values.shape.as_list()), None if weight is None else id(weight))
        groups.setdefault(key, []).append(name)
    cleaned, weights = {}, {}
    for names in groups.values():
        weight = sample_weights.get(names[0])
        if len(names) == 1:
            cleaned[names[0]], weights[names[0]] = _masked(checked[names[0]], weight)
            continue
        stacked, mask = _masked(tf.stack([checked[n] for n in names], -1), weight)
        cleaned.update(zip(names, tf.unstack(stacked, axis=-1)))
        weights.update(zip(names, tf.unstack(mask, axis=-1)))
    return {n: cleaned[n] for n in checked}, {n: weights[n] for n in checked}


def checked_labels(task, labels, input_shape):
    """A task's labels as float32, checked against the task.

    Args:
        task: The `Task`.
        labels: Its labels (see `prepare_labels`).
        input_shape: Static shape of the features.

    Returns:
        The float32 labels, a trailing axis of size 1 of scalar labels removed.

    Raises:
        MMoEExError: if the label shape or dtype does not fit the task.
    """
    labels = tf.convert_to_tensor(labels)
    if not (
        labels.dtype.is_floating or labels.dtype.is_integer or labels.dtype.is_bool
    ):
        raise MMoEExError(
            f"Task {task.name!r}: labels must be numeric, got dtype "
            f"{labels.dtype.name}."
        )
    labels = tf.cast(labels, tf.float32)
    batch_rank = 2 if task.per_step else 1
    expected = expected_label_shape(task, tuple(input_shape)[:batch_rank])
    if (
        task.label_rank == 0
        and labels.shape.rank == batch_rank + 1
        and labels.shape[-1] == 1
    ):
        labels = tf.squeeze(labels, -1)
    if not _shape_fits(labels.shape, expected):
        raise MMoEExError(
            f"Task {task.name!r} ({task.kind}{', per step' if task.per_step else ''})"
            f": labels must have shape {describe_shape(expected)}, got "
            f"{describe_shape(labels.shape)}."
        )
    return labels


def _masked(labels, sample_weight):
    """`(labels with NaN set to 0, weights 0 there and sample_weight elsewhere)`.

    A `sample_weight` of lower rank applies along the leading axes.
    """
    present = tf.logical_not(tf.math.is_nan(labels))
    weights = tf.cast(present, tf.float32)
    if sample_weight is not None:
        sample_weight = tf.cast(sample_weight, tf.float32)
        while (
            sample_weight.shape.rank is not None
            and sample_weight.shape.rank < weights.shape.rank
        ):
            sample_weight = sample_weight[..., None]
        weights = weights * sample_weight
    return tf.where(present, labels, 0.0), weights


def _shape_fits(actual, expected):
    if actual.rank != len(expected):
        return False
    return all(a is None or e is None or a == e for a, e in zip(actual, expected))


def describe_shape(shape):
    """Writes a batched shape for messages: `(batch, 3)` for `(None, 3)`."""
    dims = ["batch" if i == 0 else d for i, d in enumerate(shape)]
    return "(" + ", ".join(str(d) for d in dims) + ")"


def loss_groups(tasks):
    """Groups task indices whose losses can be computed as one stacked op.

    Tasks group by kind, output size, per-step and regression loss; the
    groups keep the task order inside them.

    Returns:
        A list of index lists.
    """
    groups = {}
    for index, task in enumerate(tasks):
        key = (task.kind, task.output_size, task.per_step, task.regression_loss)
        groups.setdefault(key, []).append(index)
    return list(groups.values())


class StackedLoss:
    """The masked losses of a group of like tasks, as one computation.

    Binary and multilabel: sigmoid cross-entropy (positives weighted by each
    task's `positive_weight`); multiclass: softmax cross-entropy (weighted by
    `class_weights`); regression: squared or absolute error
    (`regression_loss`). Labels, weights and logits
    of the group's tasks are stacked on a task axis after the batch (and
    step) axes, so the cost does not grow with one op per task.

    Args:
        tasks: `Task` specs sharing kind, output size, per-step and
            regression loss.
    """

    def __init__(self, tasks):
        self.tasks = list(tasks)
        first = self.tasks[0]
        self.kind, self.size = first.kind, first.output_size
        self.regression_loss = first.regression_loss
        self.label_rank = first.label_rank
        self.task_axis = task_axis(first.per_step)
        if self.kind == "multiclass":
            self.weight_table = np.array(
                [t.class_weights or (1.0,) * self.size for t in self.tasks], "float32"
            )
        elif self.kind in ("binary", "multilabel"):
            table = [
                np.broadcast_to(t.positive_weight or (1.0,), (self.size,))
                for t in self.tasks
            ]
            table = np.array(table, "float32")
            self.weight_table = table if self.label_rank else table[:, 0]
        else:
            self.weight_table = None

    def __call__(self, labels, weights, logits):
        """Returns `(loss sums, weight sums)`, each `(group tasks,)`.

        Args:
            labels: The group's cleaned labels, a list in task order.
            weights: Their weights (0 = missing).
            logits: Their logits.
        """
        axis = self.task_axis
        labels = stack_tasks(labels, axis)
        weights = stack_tasks(weights, axis)
        logits = stack_tasks([tf.cast(z, tf.float32) for z in logits], axis)
        loss = self._elementwise(labels, logits)
        # Missing entries may hold any value; zero them before multiplying so
        # a non-finite loss there can never leak into the sum.
        loss = tf.where(weights > 0, loss, 0.0)
        others = [a for a in range(len(loss.shape)) if a != axis]
        return (
            tf.reduce_sum(loss * weights, others),
            tf.reduce_sum(weights, others),
        )

    def _elementwise(self, labels, logits):
        if self.kind == "multiclass":
            classes = tf.cast(labels, tf.int32)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(classes, logits)
            if np.any(self.weight_table != 1.0):
                chosen = tf.one_hot(classes, self.size) * self.weight_table
                loss = loss * tf.reduce_sum(chosen, -1)
            return loss
        if self.label_rank == 0:
            logits = tf.squeeze(logits, -1)
        if self.kind == "regression" and self.regression_loss == "absolute_error":
            return tf.abs(logits - labels)
        if self.kind == "regression":
            return tf.math.squared_difference(logits, labels)
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)
        if np.any(self.weight_table != 1.0):
            loss = loss * (1.0 + labels * (self.weight_table - 1.0))
        return loss


class TaskLosses:
    """Every task's masked loss sum and label count, one op per group of like tasks.

    Args:
        tasks: The `Task` specs, in output order.
    """

    def __init__(self, tasks):
        self.names = [task.name for task in tasks]
        self.groups = loss_groups(tasks)
        self.stacked = [StackedLoss([tasks[i] for i in g]) for g in self.groups]
        self.order = np.argsort(np.concatenate(self.groups))

    def __call__(self, labels, weights, logits):
        """Returns `(loss sums, weight sums)`, each `(tasks,)` in task order.

        Args:
            labels: Dict of cleaned labels per task.
            weights: Dict of label weights per task (0 = missing).
            logits: Dict of logits per task.
        """
        sums, counts = [], []
        for group, stacked in zip(self.groups, self.stacked):
            names = [self.names[i] for i in group]
            total, count = stacked(
                [labels[n] for n in names],
                [weights[n] for n in names],
                [logits[n] for n in names],
            )
            sums.append(total)
            counts.append(count)
        return (
            tf.gather(tf.concat(sums, 0), self.order),
            tf.gather(tf.concat(counts, 0), self.order),
        )


def activate(task, logits):
    """Turns logits into the task's outputs.

    Binary: probability, shape `(batch,)` (per step: `(batch, steps)`);
    multilabel: probabilities per label; multiclass: class probabilities;
    regression: the values, squeezed to `(batch,)` for a single target.
    """
    if task.kind == "multiclass":
        return tf.nn.softmax(logits, axis=-1)
    outputs = logits if task.kind == "regression" else tf.sigmoid(logits)
    return tf.squeeze(outputs, -1) if task.label_rank == 0 else outputs
