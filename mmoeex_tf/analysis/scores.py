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
        if not present.any():
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


def validation_score(tasks, logs):
    """The score that picks the best epoch: the mean of the tasks' first metrics.

    Each task contributes its first metric on the validation data (AUC for
    binary tasks by default); error metrics (MAE, RMSE, MSE) count negated,
    so higher is always better.

    Args:
        tasks: The `Task` specs.
        logs: Keras epoch logs with `val_<task>_<metric>` entries.

    Returns:
        A float (`NaN` if a value is missing).
    """
    values = []
    for task in tasks:
        metric = task.metrics[0]
        value = float(logs.get(f"val_{task.name}_{metric}", math.nan))
        values.append(-value if not higher_is_better(metric) else value)
    return float(np.mean(values))
