"""Metrics of many tasks at once, one variable for all the tasks.

A Keras metric per task made the training graph of hundreds of tasks
hundreds of times larger; these keep one value per task in one variable,
update it with a few ops per step whatever the number of tasks, and give
their results as one `(tasks,)` vector (`result_vector`, read once per call
of the compiled step by `mmoeex_tf.training.packed_logs`) or as a dict keyed
by `log_keys`.
"""

import keras
import tensorflow as tf


class TaskVectorMetric(keras.metrics.Metric):
    """A metric with one value per task; subclasses define `result_vector`.

    `result()` is the dict `{log key: value}` of `result_vector()`, split by
    one unstack op, not one slice per task.
    """

    def result_vector(self):
        """The `(tasks,)` results, in the order of `log_keys`."""
        raise NotImplementedError

    def result(self):
        return dict(zip(self.log_keys, tf.unstack(self.result_vector())))


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class TaskMeans(TaskVectorMetric):
    """Running means of one value per task, updated as one vector.

    One metric for all tasks, so hundreds of tasks cost two ops per step;
    `result()` is a dict `{"<task>_<suffix>": mean}`, `result_vector()` the
    same means as one `(tasks,)` vector in the order of `log_keys`.

    Args:
        task_names: The task names, in the order of the updates.
        suffix: Appended to each task name in the result.
        name: Metric name.
    """

    def __init__(self, task_names, suffix="loss", name="task_means", **kwargs):
        super().__init__(name=name, **kwargs)
        self.task_names = list(task_names)
        self.suffix = suffix
        self.log_keys = [f"{name}_{suffix}" for name in self.task_names]
        self.totals = self.add_variable(
            shape=(len(self.task_names),), initializer="zeros", name="totals"
        )
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, values, weight=1.0):
        """Adds one `(tasks,)` vector of values, counted `weight` times."""
        weight = tf.cast(weight, self.totals.dtype)
        self.totals.assign_add(tf.cast(values, self.totals.dtype) * weight)
        self.count.assign_add(weight)

    def result_vector(self):
        """The `(tasks,)` means, in the order of `log_keys`."""
        return tf.math.divide_no_nan(self.totals, self.count)

    def reset_state(self):
        self.totals.assign(tf.zeros_like(self.totals))
        self.count.assign(0.0)

    def get_config(self):
        config = {"task_names": self.task_names, "suffix": self.suffix}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class TaskAUCs(TaskVectorMetric):
    """The ROC-AUCs of many binary tasks as one metric.

    The AUC of `keras.metrics.AUC(num_thresholds, multi_label=True)`, one
    per task, from cheaper state: instead of four cumulative confusion
    counts per threshold, updated in full every step, it keeps the weight of
    the positive and of the negative labels whose probability falls between
    each two neighbouring thresholds (evenly spaced over [0, 1]), added by
    one segment sum and one variable update per step whatever the number of
    tasks. The counts at
    each threshold are the reversed cumulative sums of these, taken only
    when the result is read. Each task's AUC equals that of its own
    `TwoClassAUC` (to float round-off with fractional weights), `NaN` while
    its labels hold one class only. `result()` is a dict
    `{"<task>_auc": auc}`, `result_vector()` the same AUCs as one `(tasks,)`
    vector in the order of `log_keys`.

    Args:
        task_names: The task names, in the order of the label columns.
        num_thresholds: Thresholds of the ROC curve, `keras.metrics.AUC`'s.
        name: Metric name.
        dtype: Dtype of the counts.

    `update_state` takes labels (0 or 1), probabilities and sample weights
    shaped `(n, tasks)`; a weight of 0 leaves that label out.
    """

    def __init__(self, task_names, num_thresholds=1000, name="task_aucs", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.task_names = list(task_names)
        self.num_thresholds = num_thresholds
        self.log_keys = [f"{name}_auc" for name in self.task_names]
        # [0]: weights of positive labels, [1]: of negative ones, per bin.
        self.bins = self.add_variable(
            (2, num_thresholds, len(self.task_names)), "zeros", name="bins"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds the weights of a batch's labels to their probabilities' bins.

        Args:
            y_true: `(n, tasks)` labels, 0 or 1.
            y_pred: `(n, tasks)` probabilities.
            sample_weight: `(n, tasks)` label weights; 1 if `None`.
        """
        y_pred = tf.clip_by_value(tf.cast(y_pred, self.dtype), 0.0, 1.0)
        weight = tf.ones_like(y_pred) if sample_weight is None else sample_weight
        weight = tf.broadcast_to(tf.cast(weight, self.dtype), tf.shape(y_pred))
        tasks = len(self.task_names)
        # Bin b holds the probabilities above thresholds 0..b and no other,
        # as keras.metrics.AUC's own evenly-spaced update counts them; the
        # negative labels' bins come after all the positive ones'.
        bins = tf.nn.relu(tf.math.ceil(y_pred * (self.num_thresholds - 1)) - 1)
        size = self.num_thresholds * tasks
        negative = tf.cast(tf.cast(y_true, self.dtype) < 0.5, tf.int32)
        cells = tf.cast(bins, tf.int32) * tasks + tf.range(tasks) + negative * size
        sums = tf.math.unsorted_segment_sum(weight, cells, 2 * size)
        self.bins.assign_add(tf.reshape(sums, self.bins.shape))

    def result_vector(self):
        """The `(tasks,)` AUCs, in the order of `log_keys`."""
        # Labels predicted above each threshold, then the ROC area of
        # keras.metrics.AUC (trapezoids over the thresholds) per task.
        above = tf.cumsum(self.bins, axis=1, reverse=True)
        true_positives, false_positives = above[0], above[1]
        positives, negatives = true_positives[0], false_positives[0]
        recall = tf.math.divide_no_nan(true_positives, positives)
        false_rate = tf.math.divide_no_nan(false_positives, negatives)
        heights = (recall[:-1] + recall[1:]) / 2.0
        aucs = tf.reduce_sum((false_rate[:-1] - false_rate[1:]) * heights, axis=0)
        both = tf.logical_and(positives > 0, negatives > 0)
        return tf.where(both, aucs, tf.constant(float("nan"), aucs.dtype))

    def reset_state(self):
        self.bins.assign(tf.zeros_like(self.bins))

    def get_config(self):
        return {
            "task_names": self.task_names,
            "num_thresholds": self.num_thresholds,
            "name": self.name,
            "dtype": self.dtype,
        }
