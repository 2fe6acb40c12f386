"""Scoring a trained model on a data set's splits, as tables.

Three ways to score a model coexist, for different uses:

- `score_split` (here): the Keras metrics of every task on one split of a
  `MultiTaskData` (loss, AUC, ...), streamed in batches through
  `MMoEExModel.evaluate`. `mmoeex train` writes these to `metrics.json` and
  `metrics.csv`, and `mmoeex evaluate` prints them.
- `mmoeex_tf.analysis.scores.score_model`: each task's primary metric
  (ROC-AUC, kappa or MAE), exact (scikit-learn) on arrays held in memory,
  for comparing models and settings (`mmoeex group`, the benchmarks, and
  `exact` in `metrics.json`).
- `MMoEExModel.evaluate`: the plain Keras method, on any data.
"""

import functools
import math

import pandas as pd

from mmoeex_tf.choices import ALL_ROWS
from mmoeex_tf.datasets.base import SPLITS
from mmoeex_tf.datasets.molecule_features import NUM_BITS
from mmoeex_tf.errors import MMoEExError


def score_split(model, data, split, batch_size=512):
    """Scores a model on one split of a data set with its Keras metrics.

    The values are those of `MMoEExModel.evaluate` on the split: each
    task's loss and its compiled metrics, accumulated batch by batch (Keras
    streaming metrics; the AUC is Keras' estimate from 1,000 thresholds).
    `mmoeex_tf.analysis.scores.score_model` gives instead each task's
    primary metric computed exactly by scikit-learn; for a task with rare
    positives its ROC-AUC can differ from this one by a few hundredths
    (physio4's decomp: 0.003-0.031), so `mmoeex train` writes both.

    Args:
        model: An `MMoEExModel` predicting the data set's tasks.
        data: The `MultiTaskData`.
        split: `"train"`, `"val"`, `"test"` or `"all"` (`ALL_ROWS`: the
            three splits' rows together, for scoring a whole data set).
        batch_size: Examples per forward pass.

    Returns:
        A dict task name -> metric name (`loss` and the task's metrics) ->
        value; `NaN` where the split's labels leave a metric undefined (one
        class only, or no label).

    Raises:
        MMoEExError: if the model's tasks or input shape differ from the
            data set's.
    """
    check_compatible(model, data)
    splits = SPLITS if split == ALL_ROWS else (split,)
    batches = functools.reduce(
        lambda first, second: first.concatenate(second),
        [data.tf_dataset(name, batch_size) for name in splits],
    )
    logs = model.evaluate(batches, verbose=0, return_dict=True)
    return {
        task.name: {m: float(logs[f"{task.name}_{m}"]) for m in ("loss", *task.metrics)}
        for task in model.tasks
    }


def check_compatible(model, data):
    """Checks that a model fits a data set's tasks and example shape.

    Raises:
        MMoEExError: naming the difference.
    """
    data_tasks = [task.name for task in data.tasks]
    if list(model.task_names) != data_tasks:
        raise MMoEExError(
            f"The model predicts tasks {model.task_names}, but data set "
            f"{data.name!r} has tasks {data_tasks}."
        )
    expected = tuple(model.get_build_config()["input_shape"][1:])
    actual = data.x["train"].shape[1:]
    if expected != actual:
        hint = ""
        if expected == (NUM_BITS,) and data.feature_names[0] == "morgan_0":
            hint = " It reads the fingerprint bits alone: add --no-descriptors."
        raise MMoEExError(
            f"The model takes examples shaped {expected}, but data set "
            f"{data.name!r} has examples shaped {actual}.{hint}"
        )


def metrics_table(scores):
    """One row per split and task, one column per metric.

    Args:
        scores: Split -> the output of `score_split`.

    Returns:
        A `DataFrame` with columns `split`, `task`, `loss`, then the metrics
        (empty where a task does not have that metric).
    """
    rows = [
        {"split": split, "task": task, **values}
        for split, per_task in scores.items()
        for task, values in per_task.items()
    ]
    return pd.DataFrame(rows)


def mean_scores(per_task):
    """The mean over tasks of each metric, leaving out the undefined values.

    A task whose labels in the split leave a metric undefined (one class
    only, or no label: see `mmoeex_tf.training.metrics`) has `NaN` there and
    does not count in that metric's mean.

    Args:
        per_task: One split's scores, the output of `score_split`.

    Returns:
        A dict metric name -> mean (`NaN` if no task has a value).
    """
    return pd.DataFrame.from_dict(per_task, orient="index").mean().to_dict()


def unscored_tasks(per_task):
    """The tasks that have a `NaN` metric in one split's scores."""
    return [
        task
        for task, values in per_task.items()
        if any(math.isnan(value) for value in values.values())
    ]


def format_scores(per_task):
    """Formats one split's scores as a text table, a row per task.

    With several tasks a last row `mean` holds `mean_scores`, and a line
    under the table names the tasks left out of it (`unscored_tasks`). A
    `NaN` prints as `nan`, an empty cell is a metric the task does not have.
    """
    rows = dict(per_task)
    if len(per_task) > 1:
        rows["mean"] = mean_scores(per_task)
    cells = {
        task: {metric: f"{value:.4f}" for metric, value in values.items()}
        for task, values in rows.items()
    }
    frame = pd.DataFrame.from_dict(cells, orient="index").fillna("")
    frame.index.name = "task"
    table = frame.to_string()
    unscored = unscored_tasks(per_task)
    if unscored and len(per_task) > 1:
        table += (
            f"\nnan: undefined for {len(unscored)} task(s) on this split (one "
            f"class or no labels), left out of the mean: {', '.join(unscored)}"
        )
    return table
