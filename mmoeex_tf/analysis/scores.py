"""Exact per-task scores from predictions (scikit-learn), for reports.

The metrics logged during `fit` are Keras' streaming estimates (ROC-AUC from
thresholded counts); reports and benchmarks use these exact scores, computed
on the present labels only.
"""

import math

import numpy as np
from sklearn.metrics import cohen_kappa_score, mean_absolute_error, roc_auc_score

from mmoeex_tf.tasks import higher_is_better

#: The headline metric of each task kind.
PRIMARY_METRIC = {
    "binary": "roc_auc",
    "multilabel": "roc_auc",
    "multiclass": "kappa",
    "regression": "mae",
}


def task_score(task, labels, predictions):
    """The exact primary metric of one task over its present labels.

    Args:
        task: The `Task`.
        labels: Its labels, `NaN` = missing; any batch/step shape.
        predictions: The model's outputs for the task.

    Returns:
        ROC-AUC (binary: over all present labels and steps; multilabel: mean
        over labels with both classes), linear-weighted Cohen's kappa
        (multiclass) or MAE (regression); `NaN` if undefined (no labels, or
        one class only).
    """
    labels = np.asarray(labels, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    if task.kind == "multiclass":
        present = ~np.isnan(labels)
        if np.unique(labels[present]).size < 2:
            return float("nan")
        chosen = predictions.argmax(axis=-1)[present]
        return float(cohen_kappa_score(labels[present], chosen, weights="linear"))
    if task.kind == "multilabel":
        labels = labels.reshape(-1, task.output_size)
        predictions = predictions.reshape(-1, task.output_size)
        scores = [
            _auc(labels[:, j], predictions[:, j]) for j in range(task.output_size)
        ]
        scores = [s for s in scores if not np.isnan(s)]
        return float(np.mean(scores)) if scores else float("nan")
    labels, predictions = labels.ravel(), predictions.ravel()
    if task.kind == "binary":
        return _auc(labels, predictions)
    present = ~np.isnan(labels)
    if not present.any():
        return float("nan")
    return float(mean_absolute_error(labels[present], predictions[present]))


def _auc(labels, scores):
    present = ~np.isnan(labels)
    labels, scores = labels[present], scores[present]
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def score_model(model, x, y, batch_size=2048):
    """Exact primary score of every task of `model` on `(x, y)`.

    Args:
        model: A model returning a dict task name -> outputs, with `.tasks`.
        x: Features.
        y: Dict task name -> labels (`NaN` = missing).
        batch_size: Rows per forward pass.

    Returns:
        A dict task name -> score (see `task_score`).
    """
    predictions = model.predict(x, batch_size=batch_size, verbose=0)
    return {t.name: task_score(t, y[t.name], predictions[t.name]) for t in model.tasks}


def skill(metric, value, trivial):
    """A metric value as skill: 0 for a trivial predictor, 1 for a perfect one.

    `(value - trivial) / (perfect - trivial)`, with `perfect` 1 for metrics
    where higher is better (AUC, kappa, accuracy) and 0 for errors (MAE,
    RMSE, MSE). An MAE half the training median's is 0.5, an AUC of 0.75 is
    0.5, a kappa of 0.5 is 0.5: one scale for every kind of task.

    Args:
        metric: The metric's name.
        value: Its value.
        trivial: Its value for the trivial predictor (AUC 0.5, kappa 0, the
            MAE of the training median, ...).

    Returns:
        A float; `NaN` if `value` or `trivial` is not finite or `trivial`
        is already perfect.
    """
    perfect = 1.0 if higher_is_better(metric) else 0.0
    if not (math.isfinite(value) and math.isfinite(trivial)) or trivial == perfect:
        return math.nan
    return (value - trivial) / (perfect - trivial)


def validation_score(tasks, logs, trivial_scores=None):
    """The score that picks the best epoch, stops early and ranks trials.

    With `trivial_scores` (a model's `task_scaling.trivial_scores()`, set by
    `MMoEExModel.adapt`), each task's first validation metric counts as its
    `skill` over the trivial predictor, so that an AUC, a kappa and an MAE
    in any unit weigh alike; tasks without a trivial score count by their raw
    metric, errors negated. The score is the mean over the tasks that have a
    value.

    Args:
        tasks: The `Task` specs.
        logs: Keras epoch logs with `val_<task>_<metric>` entries.
        trivial_scores: Optional dict task name -> trivial score of its first
            metric.

    Returns:
        A float, higher is better (`NaN` if no task has a value).
    """
    trivial_scores = trivial_scores or {}
    values = []
    for task in tasks:
        if not task.metrics:
            continue
        metric = task.metrics[0]
        value = float(logs.get(f"val_{task.name}_{metric}", math.nan))
        trivial = trivial_scores.get(task.name, math.nan)
        if math.isfinite(trivial):
            value = skill(metric, value, trivial)
        elif not higher_is_better(metric):
            value = -value
        values.append(value)
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
