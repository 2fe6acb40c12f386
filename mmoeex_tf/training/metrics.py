"""Per-task metrics that skip missing labels.

Each task's metrics are Keras metrics updated with the task's present labels
only (missing ones get sample weight 0), named `<task>_<metric>` so that
`fit` logs `income_auc`, `val_los_kappa`, ...; the ROC-AUCs of all binary
tasks are one metric (`TaskAUCs`), so hundreds of tasks add a few ops. A
metric that its labels leave undefined is `NaN`, never a number that looks
like a score: the AUC and kappa of labels of one class only, and any metric
without labels. Means over tasks (`mmoeex_tf.analysis.scores.validation_score`,
the command-line tables) leave such tasks out.
"""

import keras
import tensorflow as tf

from mmoeex_tf.training.stacking import stack_tasks, task_axis
from mmoeex_tf.training.task_vector_metrics import TaskAUCs


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class CohenKappa(keras.metrics.Metric):
    """Cohen's kappa of a multiclass task, from a weighted confusion matrix.

    Args:
        num_classes: Number of classes.
        weighting: `None` (plain kappa), `"linear"` or `"quadratic"`
            disagreement weights.
        name: Metric name.
        dtype: Dtype of the confusion matrix.

    `update_state` takes integer class labels `(n,)`, class probabilities or
    scores `(n, num_classes)` (the arg-max is the prediction) and optional
    sample weights `(n,)`. The result is `NaN` while the labels seen hold
    fewer than two classes (kappa is then 0 or undefined, whatever the
    predictions).
    """

    def __init__(self, num_classes, weighting="linear", name="kappa", dtype="float64"):
        super().__init__(name=name, dtype=dtype)
        if weighting not in (None, "linear", "quadratic"):
            raise ValueError(
                f"weighting must be None, 'linear' or 'quadratic', got {weighting!r}."
            )
        self.num_classes = num_classes
        self.weighting = weighting
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype=self.dtype,
            name="confusion",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        true = tf.one_hot(tf.cast(y_true, tf.int32), self.num_classes, dtype=self.dtype)
        predicted = tf.one_hot(
            tf.argmax(y_pred, axis=-1), self.num_classes, dtype=self.dtype
        )
        if sample_weight is not None:
            true = true * tf.cast(sample_weight, self.dtype)[:, None]
        self.confusion.assign_add(tf.matmul(true, predicted, transpose_a=True))

    def result(self):
        confusion = tf.convert_to_tensor(self.confusion)
        classes = tf.range(self.num_classes, dtype=self.dtype)
        distance = tf.abs(classes[:, None] - classes[None, :])
        if self.weighting is None:
            disagreement = tf.cast(distance > 0, self.dtype)
        elif self.weighting == "linear":
            disagreement = distance
        else:
            disagreement = distance**2
        total = tf.reduce_sum(confusion)
        expected = tf.math.divide_no_nan(
            tf.reduce_sum(confusion, 1)[:, None] * tf.reduce_sum(confusion, 0)[None, :],
            total,
        )
        observed_cost = tf.reduce_sum(disagreement * confusion)
        expected_cost = tf.reduce_sum(disagreement * expected)
        kappa = 1.0 - tf.math.divide_no_nan(observed_cost, expected_cost)
        classes_seen = tf.math.count_nonzero(tf.reduce_sum(confusion, 1) > 0)
        return tf.where(classes_seen >= 2, kappa, tf.constant(float("nan"), self.dtype))

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        config = {"num_classes": self.num_classes, "weighting": self.weighting}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class TwoClassAUC(keras.metrics.AUC):
    """`keras.metrics.AUC` that is `NaN` for labels of one class only.

    Keras' AUC is 0 when the labels seen have no positive or no negative;
    this one is `NaN` then. With `multi_label=True` it is the mean over the
    labels that have both classes (`NaN` if none has), as
    `mmoeex_tf.analysis.scores.task_score` computes it exactly. Takes the
    arguments of `keras.metrics.AUC` but `label_weights`.
    """

    def result(self):
        # tp + fn (all positives) and tn + fp (all negatives) are the same at
        # every threshold; the first one's are read.
        positives = self.true_positives[0] + self.false_negatives[0]
        negatives = self.true_negatives[0] + self.false_positives[0]
        both = tf.logical_and(positives > 0, negatives > 0)
        nan = tf.constant(float("nan"), self.dtype)
        if not self.multi_label:
            return tf.where(both, super().result(), nan)
        # The weighted mean of the per-label AUCs, weight 1 for the labels
        # with both classes and 0 for the others.
        self.label_weights = tf.cast(both, self.dtype)
        try:
            mean = super().result()
        finally:
            self.label_weights = None
        return tf.where(tf.reduce_any(both), mean, nan)


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class LabelledMetric(keras.metrics.Metric):
    """A metric that is `NaN` until it has seen a present label.

    Mean-based Keras metrics (MAE, accuracy, ...) are 0 after updates whose
    labels all have weight 0; this wrapper makes them `NaN` then.

    Args:
        metric: The wrapped metric; the wrapper takes its name.
    """

    def __init__(self, metric, name=None, dtype=None):
        if isinstance(metric, dict):
            metric = keras.metrics.deserialize(metric)
        super().__init__(name=name or metric.name, dtype=dtype or metric.dtype)
        self.metric = metric
        self.labels = self.add_variable(shape=(), initializer="zeros", name="labels")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.metric.update_state(y_true, y_pred, sample_weight=sample_weight)
        if sample_weight is None:
            seen = tf.cast(tf.size(y_true), self.labels.dtype)
        else:
            seen = tf.reduce_sum(tf.cast(sample_weight, self.labels.dtype))
        self.labels.assign_add(seen)

    def result(self):
        value = self.metric.result()
        return tf.where(self.labels > 0, value, tf.constant(float("nan"), value.dtype))

    def reset_state(self):
        self.metric.reset_state()
        self.labels.assign(0.0)

    def get_config(self):
        config = {"metric": keras.metrics.serialize(self.metric)}
        return {**super().get_config(), **config}


def _make_metric(task, metric):
    name = f"{task.name}_{metric}"
    if metric in ("auc", "pr_auc"):
        return TwoClassAUC(
            name=name,
            curve="PR" if metric == "pr_auc" else "ROC",
            num_thresholds=1000,
            multi_label=task.kind == "multilabel",
            num_labels=task.output_size if task.kind == "multilabel" else None,
        )
    if metric in ("kappa", "quadratic_kappa"):
        weighting = "linear" if metric == "kappa" else "quadratic"
        return CohenKappa(task.output_size, weighting=weighting, name=name)
    if metric == "accuracy":
        if task.kind == "binary":
            return LabelledMetric(keras.metrics.BinaryAccuracy(name=name))
        return LabelledMetric(keras.metrics.SparseCategoricalAccuracy(name=name))
    if metric == "mae":
        return LabelledMetric(keras.metrics.MeanAbsoluteError(name=name))
    if metric == "rmse":
        return LabelledMetric(keras.metrics.RootMeanSquaredError(name=name))
    return LabelledMetric(keras.metrics.MeanSquaredError(name=name))


class TaskMetrics:
    """The metrics of all tasks, fed with their present labels only.

    The `auc` of every binary task is one `TaskAUCs` for all of them (with
    hundreds of tasks, one Keras metric per task made the training graph
    hundreds of times larger); every other metric is one Keras metric per
    task.

    Args:
        tasks: The `Task` specs; each one's `metrics` names its metrics.
    """

    def __init__(self, tasks):
        self.tasks = list(tasks)
        # One TaskAUCs for the binary tasks predicted per example and one for
        # those predicted per step: their labels have different shapes.
        self._aucs, self._auc_task_axes = [], []
        for per_step in (False, True):
            names = [
                task.name
                for task in self.tasks
                if task.kind == "binary"
                and "auc" in task.metrics
                and task.per_step == per_step
            ]
            if names:
                name = "step_task_aucs" if per_step else "task_aucs"
                self._aucs.append(TaskAUCs(names, name=name))
                self._auc_task_axes.append(task_axis(per_step))
        batched = {name for metric in self._aucs for name in metric.task_names}
        self._per_task = {
            task.name: [
                _make_metric(task, metric)
                for metric in task.metrics
                if not (metric == "auc" and task.name in batched)
            ]
            for task in self.tasks
        }

    @property
    def metrics(self):
        """Every Keras metric object, the `TaskAUCs` first."""
        per_task = [m for metrics in self._per_task.values() for m in metrics]
        return self._aucs + per_task

    def update(self, labels, weights, logits, activate, finite=True):
        """Updates every metric.

        Args:
            labels: Dict task name -> cleaned labels (missing entries hold
                any value).
            weights: Dict task name -> per-label weights, 0 for missing labels.
            logits: Dict task name -> logits.
            activate: Function `(task index, logits)` -> the task's outputs
                (probabilities or values), as the model returns them.
            finite: Whether the step counts; if not, it counts for nothing.
        """
        keep = tf.cast(finite, tf.float32)

        for aucs, axis in zip(self._aucs, self._auc_task_axes):
            names = aucs.task_names
            # A binary task's output is the sigmoid of its logit: one op for
            # all the tasks.
            scores = tf.where(finite, _columns(logits, names, axis), 0.0)
            aucs.update_state(
                _columns(labels, names, axis),
                tf.sigmoid(scores),
                sample_weight=_columns(weights, names, axis) * keep,
            )
        for index, task in enumerate(self.tasks):
            if self._per_task[task.name]:
                outputs = activate(index, tf.where(finite, logits[task.name], 0.0))
                flat_labels, flat_weights, flat_outputs = _flatten(
                    task, labels[task.name], weights[task.name] * keep, outputs
                )
                for metric in self._per_task[task.name]:
                    metric.update_state(
                        flat_labels, flat_outputs, sample_weight=flat_weights
                    )


def _columns(values, names, axis):
    """The tasks' values stacked on `axis`, as `(rows, tasks)` columns."""
    stacked = stack_tasks([values[name] for name in names], axis)
    return tf.reshape(stacked, [-1, len(names)])


def _flatten(task, labels, weights, outputs):
    """Collapses batch and step axes so every step counts as a sample."""
    if task.kind == "multiclass":
        classes = task.output_size
        return (
            tf.reshape(labels, [-1]),
            tf.reshape(weights, [-1]),
            tf.reshape(outputs, [-1, classes]),
        )
    if task.kind == "multilabel":
        size = task.output_size
        return (
            tf.reshape(labels, [-1, size]),
            tf.reshape(weights, [-1, size]),
            tf.reshape(outputs, [-1, size]),
        )
    return (
        tf.reshape(labels, [-1, 1]),
        tf.reshape(weights, [-1]),
        tf.reshape(outputs, [-1, 1]),
    )
