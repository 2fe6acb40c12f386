"""Per-task logs read once per call of the compiled step function.

Keras makes every entry of the logs dict a training or test step returns an
output of the compiled step function, and with `steps_per_execution` above 1
every step of a call computes them although only the last step's are
returned. A metric for hundreds of tasks (`TaskMeans`, `TaskAUCs`) logs one
scalar per task: a model with 617 binary tasks returned some 1,234 scalars
per step, and those outputs alone held about 1.5 GiB of memory once the train
and test functions were traced, while computing 617 AUCs from their counts
took a tenth of every step (`benchmarks/RESULTS.md`, "Many tasks"). Inside
the step, `packed_results` gives such a metric one placeholder entry; a model
with the `PackedLogs` mixin wraps its compiled functions so that after each
call the per-task results are read from the metrics' variables (one traced
function for all of them) and put in the placeholders' places. What the
wrapped functions return, and so what callbacks, the progress bar and `fit`'s
history see, has the keys and values of `keras.Model.get_metrics_result`.
"""

import tensorflow as tf

#: Prefix of the log key of a per-task metric's placeholder (never a task's key).
PACKED = "packed:"


def packed_results(metrics):
    """The metrics' results, without computing the per-task ones.

    Args:
        metrics: Keras metrics; those with a `result_vector` method (and
            `log_keys`) give one value per task.

    Returns:
        A dict as `keras.Model.get_metrics_result` returns it, but with one
        placeholder entry `"packed:<metric name>"` (a scalar 0) for each
        per-task metric, whose results `unpack` puts there after the call.
        Under `tf.distribute.MultiWorkerMirroredStrategy` every result is
        computed in the step, because the workers' metric variables are only
        summed inside it.
    """
    pack = not isinstance(
        tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy
    )
    logs = {}
    for metric in metrics:
        if pack and hasattr(metric, "result_vector"):
            logs[PACKED + metric.name] = tf.zeros(())
            continue
        result = metric.result()
        if isinstance(result, dict):
            logs.update(result)
        else:
            logs[metric.name] = result
    return logs


def per_task_results(metrics):
    """Each per-task metric's `(tasks,)` results, keyed as its placeholder.

    Args:
        metrics: Keras metrics; only those with a `result_vector` method are
            read.

    Returns:
        A dict `"packed:<metric name>"` -> the metric's `result_vector()`.
    """
    return {
        PACKED + metric.name: metric.result_vector()
        for metric in metrics
        if hasattr(metric, "result_vector")
    }


def unpack(logs, metrics, vectors):
    """Replaces `packed_results`' placeholders with one entry per task.

    Args:
        logs: A dict from `packed_results` (or the compiled step returning
            it).
        metrics: The metrics that made `logs`.
        vectors: `per_task_results(metrics)`, read after the step.

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
            unpacked.update(zip(keys[key], tf.unstack(vectors[key])))
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
    read = tf.function(lambda: per_task_results(metrics))

    def unpacked_function(*args, **kwargs):
        logs = function(*args, **kwargs)
        if not any(key.startswith(PACKED) for key in logs):
            return logs
        return unpack(logs, metrics, read())

    return unpacked_function
