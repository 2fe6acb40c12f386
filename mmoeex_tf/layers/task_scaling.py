"""Per-task label statistics of the training split, kept inside the model.

`TaskScaling` holds what a model learns from its training labels before the
first step (`MMoEExModel.adapt`), as non-trainable weights, so that it is
saved, restored and exported with the model:
- regression targets are standardised inside the loss (`standardize`) and the
  outputs are returned in the original units (`restore_units`);
- every task's loss is divided by the loss of its label prior (a constant
  prediction of the training frequencies, mean or median), so that a rare-positive
  binary task, a 10-class per-step task and a regression in any unit all
  start near 1 and share the experts on one scale;
- the score of a trivial predictor for each task's first metric (AUC 0.5,
  the MAE of the training median, ...), which makes validation scores of
  different kinds comparable (`mmoeex_tf.analysis.scores.validation_score`).

Until `adapt` runs, the layer is the identity: means 0, scales 1, loss
scales 1.
"""

import math

import keras
import numpy as np
from keras import ops

from mmoeex_tf.tasks import check_tasks

#: Smallest label-prior loss a task is divided by (a nearly constant label).
MIN_PRIOR_LOSS = 1e-2
#: Frequencies are clipped to [EPSILON, 1 - EPSILON] for logs and log-odds.
EPSILON = 1e-4


def _present(task, labels):
    """The labels as `(n, output_size)` float64 rows, `NaN` = missing."""
    labels = np.asarray(labels, dtype=np.float64)
    width = task.output_size if task.label_rank else 1
    return labels.reshape(-1, width)


def label_statistics(task, labels, standardize=True):
    """What `adapt` learns from one task's training labels.

    Args:
        task: The `Task`.
        labels: Its training labels, `NaN` = missing, any batch/step shape.
        standardize: Regression: the loss sees standardised targets.

    Returns:
        A dict with `mean` and `scale` (regression: per target, else
        `None`), `prior_loss` (the loss of the best constant prediction:
        for regression the mean, or the median with `"absolute_error"`, in
        the units the loss sees), `prior_logits` (the head bias that
        predicts the prior, in those units) and `trivial_score` (the task's
        first metric for that constant prediction).
    """
    rows = _present(task, labels)
    metric = task.metrics[0] if task.metrics else None
    if task.kind == "regression":
        mean = np.nanmean(rows, axis=0) if np.isfinite(rows).any() else 0.0
        std = np.nanstd(rows, axis=0) if np.isfinite(rows).any() else 1.0
        mean = np.nan_to_num(np.broadcast_to(mean, rows.shape[1:]).astype(float))
        std = np.nan_to_num(np.broadcast_to(std, rows.shape[1:]).astype(float), nan=1)
        std = np.where(std > 0, std, 1.0)
        median = np.nanmedian(rows, axis=0) if np.isfinite(rows).any() else mean
        trivial = {
            "mae": float(np.nanmean(np.abs(rows - median))),
            "rmse": float(np.sqrt(np.nanmean((rows - mean) ** 2))),
            "mse": float(np.nanmean((rows - mean) ** 2)),
        }
        absolute = task.regression_loss == "absolute_error"
        best = median if absolute else mean
        center, unit = (mean, std) if standardize else (0.0, 1.0)
        errors = (rows - best) / unit
        prior_loss = 1.0
        if np.isfinite(rows).any():
            prior_loss = np.nanmean(np.abs(errors) if absolute else errors**2)
        return {
            "mean": mean,
            "scale": std,
            "prior_loss": float(prior_loss),
            "prior_logits": (best - center) / unit,
            "trivial_score": trivial.get(metric, np.nan),
        }
    if task.kind == "multiclass":
        present = rows[~np.isnan(rows[:, 0]), 0].astype(int)
        counts = np.bincount(present, minlength=task.output_size).astype(float)
        frequencies = counts / max(counts.sum(), 1.0)
        weights = np.asarray(task.class_weights or np.ones(task.output_size))
        clipped = np.clip(frequencies, EPSILON, 1.0)
        prior_loss = float(np.sum(weights * frequencies * -np.log(clipped)))
        log_prior = np.log(clipped)
        trivial = {"accuracy": float(frequencies.max())}
        return {
            "mean": None,
            "scale": None,
            "prior_loss": prior_loss,
            "prior_logits": log_prior - log_prior.mean(),
            "trivial_score": trivial.get(metric, 0.0),
        }
    # binary and multilabel: one positive rate per output
    present = ~np.isnan(rows)
    positives = np.where(present, rows, 0.0).sum(0)
    rate = positives / np.maximum(present.sum(0), 1)
    rate = np.where(present.sum(0) > 0, rate, 0.5)
    clipped = np.clip(rate, EPSILON, 1 - EPSILON)
    positive_weight = np.broadcast_to(task.positive_weight or 1.0, rate.shape)
    entropy = -(
        positive_weight * rate * np.log(clipped) + (1 - rate) * np.log1p(-clipped)
    )
    trivial = {
        "auc": 0.5,
        "pr_auc": float(rate.mean()),
        "accuracy": float(np.maximum(rate, 1 - rate).mean()),
    }
    return {
        "mean": None,
        "scale": None,
        "prior_loss": float(entropy.mean()),
        "prior_logits": np.log(clipped) - np.log1p(-clipped),
        "trivial_score": trivial.get(metric, np.nan),
    }


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class TaskScaling(keras.layers.Layer):
    """Training-label statistics per task: target scaling and loss scales.

    Args:
        tasks: The `Task` specs (or their configs), in output order.
        **kwargs: Base layer keyword arguments.

    Attributes (weights, non-trainable, after `build`):
        loss_scale: `(tasks,)` factor of each task's loss (1 / prior loss).
        trivial_score: `(tasks,)` first-metric score of a constant predictor.
        target_mean, target_scale: One `(output_size,)` weight per regression
            task, in task order (`None` for other tasks).
    """

    def __init__(self, tasks, **kwargs):
        super().__init__(**kwargs)
        self.tasks = check_tasks(tasks)
        self.trainable = False

    def build(self, input_shape=None):
        defaults = [self._default_trivial_score(task) for task in self.tasks]
        self.loss_scale = self.add_weight(
            name="loss_scale",
            shape=(len(self.tasks),),
            initializer="ones",
            trainable=False,
        )
        self.trivial_score = self.add_weight(
            name="trivial_score",
            shape=(len(self.tasks),),
            initializer=keras.initializers.Constant(defaults),
            trainable=False,
        )
        self.target_mean, self.target_scale = [], []
        for index, task in enumerate(self.tasks):
            mean = scale = None
            if task.kind == "regression":
                mean = self.add_weight(
                    name=f"target_mean_{index}",
                    shape=(task.output_size,),
                    initializer="zeros",
                    trainable=False,
                )
                scale = self.add_weight(
                    name=f"target_scale_{index}",
                    shape=(task.output_size,),
                    initializer="ones",
                    trainable=False,
                )
            self.target_mean.append(mean)
            self.target_scale.append(scale)

    @staticmethod
    def _default_trivial_score(task):
        """Chance level where no labels were seen: AUC 0.5, kappa 0; else NaN."""
        metric = task.metrics[0] if task.metrics else None
        return {"auc": 0.5, "kappa": 0.0, "quadratic_kappa": 0.0}.get(metric, math.nan)

    def standardize(self, index, labels):
        """Task `index`'s regression labels in standardised units."""
        if self.target_mean[index] is None:
            return labels
        mean, scale = self._broadcast(index, labels)
        return (labels - mean) / scale

    def restore_units(self, index, values):
        """Task `index`'s standardised regression outputs in original units."""
        if self.target_mean[index] is None:
            return values
        mean, scale = self._broadcast(index, values)
        return values * scale + mean

    def _broadcast(self, index, values):
        mean = ops.cast(self.target_mean[index], values.dtype)
        scale = ops.cast(self.target_scale[index], values.dtype)
        if not self.tasks[index].label_rank:  # single target: values lack its axis
            mean, scale = mean[0], scale[0]
        return mean, scale

    def adapt(self, labels, standardize_targets=True, normalize_losses=True):
        """Sets the statistics from the training labels.

        Args:
            labels: Dict task name -> training labels (`NaN` = missing).
            standardize_targets: Standardise regression targets.
            normalize_losses: Divide each task's loss by its prior loss.

        Returns:
            Dict task name -> the `label_statistics` of that task (its
            `prior_logits` in the units the head predicts).
        """
        if not self.built:
            self.build()
        statistics = {}
        loss_scales, trivial = [], []
        for index, task in enumerate(self.tasks):
            stats = label_statistics(task, labels[task.name], standardize_targets)
            if task.kind == "regression":
                mean, scale = stats["mean"], stats["scale"]
                if not standardize_targets:
                    mean, scale = np.zeros_like(mean), np.ones_like(scale)
                self.target_mean[index].assign(np.asarray(mean, "float32"))
                self.target_scale[index].assign(np.asarray(scale, "float32"))
            prior = max(stats["prior_loss"], MIN_PRIOR_LOSS)
            loss_scales.append(1.0 / prior if normalize_losses else 1.0)
            trivial.append(stats["trivial_score"])
            statistics[task.name] = stats
        self.loss_scale.assign(np.asarray(loss_scales, "float32"))
        self.trivial_score.assign(np.asarray(trivial, "float32"))
        return statistics

    def trivial_scores(self):
        """Dict task name -> trivial score of its first metric (`NaN` unknown)."""
        values = np.asarray(self.trivial_score) if self.built else []
        return {task.name: float(value) for task, value in zip(self.tasks, values)}

    def load_own_variables(self, store):
        """Loads the statistics; a file saved before they existed keeps the identity."""
        if not len(store.keys()):
            return
        super().load_own_variables(store)

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, inputs):
        return inputs

    def get_config(self):
        config = {"tasks": [task.get_config() for task in self.tasks]}
        return {**super().get_config(), **config}
