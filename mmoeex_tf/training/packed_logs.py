"""A step's per-task logs as one tensor per metric, split after the step.

Keras makes every entry of the logs dict a training or test step returns an
output of the compiled step function. A metric for hundreds of tasks
(`TaskMeans`, `TaskAUCs`) logs one scalar per task, so a model with 617
binary tasks returned some 1,234 scalars per step, and those outputs alone
held about 1.5 GiB of memory once the train and test functions were traced
(`benchmarks/RESULTS.md`, "Many tasks"). Inside the step, `packed_results`
returns such a metric's values as one `(tasks,)` vector; a model with the
`PackedLogs` mixin wraps its compiled functions so that what they return,
and so what callbacks, the progress bar and `fit`'s history see, has the
keys and values of `keras.Model.get_metrics_result`.
"""

import tensorflow as tf

#: Prefix of the log key of a metric's packed vector (never a task's key).
PACKED = "packed:"


def packed_results(metrics):
    """The metrics' results, each per-task metric's as one vector.

    Args:
        metrics: Keras metrics, those with a `result_vector` method (and
            `log_keys`) giving one value per task.

    Returns:
        A dict as `keras.Model.get_metrics_result` returns it, but with the
        results of a per-task metric as one entry `"packed:<metric name>"`;
        under `tf.distribute.MultiWorkerMirroredStrategy` nothing is packed,
        because Keras averages each log entry of the workers over its first
        axis there, which would average a vector's tasks together.
    """
    pack = not isinstance(
        tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
    )
    logs = {}
    for metric in metrics:
        if pack and hasattr(metric, "result_vector"):
            logs[PACKED + metric.name] = metric.result_vector()
            continue
        result = metric.result()
        if isinstance(result, dict):
            logs.update(result)
        else:
            logs[metric.name] = result
    return logs


def unpack(logs, metrics):
    """Splits `packed_results`' vectors into one entry per task.

    Args:
        logs: A dict from `packed_results` (or the compiled step returning
            it).
        metrics: The metrics that made `logs`.

    Returns:
        The dict `get_metrics_result` gives for the same metric values: same
        keys in the same order, each task's value a scalar tensor.
    """
    keys = {
        PACKED + metric.name: metric.log_keys
        for metric in metrics
        if hasattr(metric, "result_vector")
    }
    unpacked = {}
    for key, value in logs.items():
        if key in keys:
            unpacked.update(zip(keys[key], tf.unstack(value)))
        else:
            unpacked[key] = value
    return unpacked


class PackedLogs:
    """Mixin for a `keras.Model` whose steps return `packed_results`.

    Put before `keras.Model` in the bases. Its train and test functions
    (those `fit`, `evaluate`, `train_on_batch` and `test_on_batch` call)
    return the logs `unpack`ed, so the packing shows nowhere outside the
    step.
    """

    def make_train_function(self, force=False):
        """Keras' train function, returning unpacked logs."""
        if self.train_function is None or force:
            super().make_train_function(force)
            self.train_function = _unpacking(self.train_function, self.metrics)
        return self.train_function

    def make_test_function(self, force=False):
        """Keras' test function, returning unpacked logs."""
        if self.test_function is None or force:
            super().make_test_function(force)
            self.test_function = _unpacking(self.test_function, self.metrics)
        return self.test_function


def _unpacking(function, metrics):
    def unpacked_function(*args, **kwargs):
        return unpack(function(*args, **kwargs), metrics)

    return unpacked_function
