"""Keras callbacks for `MMoEExModel`: experts in TensorBoard, mean task scores.

The standard `keras.callbacks.TensorBoard` already logs every per-task loss
and metric (`epoch_income_loss`, `epoch_income_auc`, ... under `train/` and
`validation/`). `DiversityCallback` adds what is particular to a mixture of
experts: how much each task's gate uses each expert, the expert diversity
score, and the expert distance heatmap. `MeanTaskMetric` logs one number
summarising all tasks, for checkpointing, early stopping or tuning on it.
"""

import io
import math
import os

import keras
import numpy as np
import tensorflow as tf

from mmoeex_tf._checks import check_positive_integer
from mmoeex_tf.analysis.diversity import diversity_report
from mmoeex_tf.analysis.scores import validation_score
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import check_tasks


class DiversityCallback(keras.callbacks.Callback):
    """Logs gate usage, the diversity score and the distance heatmap.

    Every `every_n_epochs` epochs it computes, on `x`, each task's mean gate
    weight per expert and the experts' normalised distance matrix (see
    `mmoeex_tf.analysis.diversity`), and writes to the TensorBoard run
    `<log_dir>/diversity`, at the epoch's index like the `TensorBoard`
    callback:

    - scalars `gate_usage/<task>/expert_<i>`,
    - scalar `diversity/score`,
    - image `diversity/heatmap`, the distance matrix as a heatmap.

    Args:
        x: Features to measure on, `(n, features)` or `(n, steps,
            features)`; a few hundred examples are enough.
        log_dir: The TensorBoard log folder (as given to `TensorBoard`).
        every_n_epochs: Log at the end of every n-th epoch.
        batch_size: Examples per forward pass.

    Example:
    ```python
    model.fit(x, y, epochs=10, callbacks=[
        keras.callbacks.TensorBoard("logs"),
        DiversityCallback(x_val[:512], "logs"),
    ])
    ```
    """

    RUN_NAME = "diversity"

    def __init__(self, x, log_dir, every_n_epochs=1, batch_size=1024):
        super().__init__()
        self.x = np.asarray(x, dtype=np.float32)
        self.log_dir = os.fspath(log_dir)
        self.every_n_epochs = check_positive_integer(
            every_n_epochs, "DiversityCallback every_n_epochs"
        )
        self.batch_size = check_positive_integer(
            batch_size, "DiversityCallback batch_size"
        )
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        report = diversity_report(self.model, self.x, self.batch_size)
        png = io.BytesIO()
        report.plot(png, title=f"Expert distances, epoch {epoch + 1}")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, self.RUN_NAME)
            )
        with self._writer.as_default(step=epoch):
            for task, row in report.usage.iterrows():
                for expert, value in row.items():
                    tf.summary.scalar(f"gate_usage/{task}/{expert}", value)
            tf.summary.scalar("diversity/score", report.score)
            image = tf.io.decode_png(png.getvalue(), channels=4)
            tf.summary.image("diversity/heatmap", image[tf.newaxis])
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self):
        """The settings of the callback (the features `x` left out)."""
        return {
            "log_dir": self.log_dir,
            "every_n_epochs": self.every_n_epochs,
            "batch_size": self.batch_size,
        }


class MeanTaskMetric(keras.callbacks.Callback):
    """Adds the mean over tasks of a validation metric to the epoch logs.

    With `metric=None` it logs `val_mean_score`, the score that picks the
    best epoch of `mmoeex train` (`mmoeex_tf.analysis.scores.validation_score`):
    the mean of each task's skill over its trivial predictor when the model
    knows the trivial scores (`MMoEExModel.adapt`), else of each task's first
    metric with error metrics (MAE, RMSE, MSE) negated, so that higher is
    better whatever the tasks' kinds. With a metric name it logs
    `val_mean_<metric>`: the mean of `val_<task>_<metric>` over the tasks
    that log that metric (all tasks for `"loss"`) and have a value (a task
    with one class in the split scores `NaN` and is left out). Nothing is
    logged for an epoch without validation.

    Callbacks later in the list (checkpoints, early stopping, Keras Tuner's)
    and the `History` see the new entry.

    Args:
        tasks: The model's `Task` specs.
        metric: A metric name such as `"auc"` or `"loss"`, or `None`.

    Raises:
        MMoEExError: if no task logs `metric`.
    """

    def __init__(self, tasks, metric=None):
        super().__init__()
        self.tasks = check_tasks(tasks)
        self.metric = metric
        if metric is None:
            self.name = "val_mean_score"
            return
        self.name = f"val_mean_{metric}"
        self._keys = [
            f"val_{task.name}_{metric}"
            for task in self.tasks
            if metric == "loss" or metric in task.metrics
        ]
        if not self._keys:
            raise MMoEExError(
                f"No task logs metric {metric!r}; the tasks' metrics are "
                f"{sorted({m for task in self.tasks for m in task.metrics})} "
                "and loss."
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not any(key.startswith("val_") for key in logs):
            return
        if self.metric is None:
            scaling = getattr(self.model, "task_scaling", None)
            trivial = scaling.trivial_scores() if scaling is not None else None
            logs[self.name] = validation_score(self.tasks, logs, trivial)
        else:
            values = [float(logs.get(key, math.nan)) for key in self._keys]
            finite = [value for value in values if math.isfinite(value)]
            logs[self.name] = float(np.mean(finite)) if finite else math.nan

    def get_config(self):
        """The tasks (as configs) and the metric."""
        return {
            "tasks": [task.get_config() for task in self.tasks],
            "metric": self.metric,
        }
