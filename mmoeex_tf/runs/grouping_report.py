"""The grouping workflow: all-in-one vs grouped vs single-task, and its report.

One joint model with linear heads gives the task similarity; each candidate
number of groups is trained and scored on validation; the best grouping is
compared on the test split with one model for all tasks and, where
affordable, one model per task, counting the tasks that end worse than
single-task (negative transfer).
"""

import dataclasses
import time

import keras
import numpy as np
import pandas as pd

from mmoeex_tf.analysis import scores as evaluation
from mmoeex_tf.analysis.grouping import group_tasks
from mmoeex_tf.analysis.plots import plot_task_similarity
from mmoeex_tf.models import baselines
from mmoeex_tf.models.grouped import fit_grouped


@dataclasses.dataclass
class GroupingComparison:
    """Test scores of every setting, and the grouping chosen.

    Attributes:
        scores: Setting name -> task name -> exact test score.
        seconds: Setting name -> training wall time.
        grouping: The chosen `TaskGrouping`.
        validation: Number of groups -> validation mean score.
    """

    scores: dict
    seconds: dict
    grouping: object
    validation: dict

    def table(self):
        """One row per setting: mean score, tasks scored, negative transfer."""
        single = self.scores.get("single-task")
        rows = []
        for setting, scores in self.scores.items():
            values = [v for v in scores.values() if not np.isnan(v)]
            row = {
                "setting": setting,
                "mean test score": float(np.mean(values)),
                "tasks scored": len(values),
                "worse than single-task": None,
                "train s": round(self.seconds[setting]),
            }
            if single is not None and setting != "single-task":
                pairs = [
                    (scores[n], single[n])
                    for n in scores
                    if not (np.isnan(scores[n]) or np.isnan(single[n]))
                ]
                row["worse than single-task"] = sum(a < b for a, b in pairs)
            rows.append(row)
        return pd.DataFrame(rows)


def _fit_options(data, names, epochs, batch_size):
    x_val, y_val = data.split("val")
    return {
        "validation_data": (x_val, {n: y_val[n] for n in names}),
        "epochs": epochs,
        "batch_size": batch_size,
        "verbose": 0,
        "callbacks": [
            keras.callbacks.EarlyStopping(
                patience=3, restore_best_weights=True, monitor="val_loss"
            )
        ],
    }


def _mean(scores):
    values = [v for v in scores.values() if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def compare_groupings(
    data,
    build_model,
    group_counts,
    epochs=30,
    batch_size=128,
    single_task=False,
    grouping_units=(128,),
):
    """Trains every setting and scores it on the test split.

    Args:
        data: A `MultiTaskData` whose tasks share one output size.
        build_model: `(tasks) -> compiled MMoEExModel`, the architecture of
            the all-in-one model, the group models and (with one task) the
            single-task models.
        group_counts: Candidate numbers of groups; the best on the
            validation mean score is kept.
        epochs: Most epochs of every training (early stopping on validation
            loss, patience 3, best weights restored).
        batch_size: Batch size of every training.
        single_task: Also train one model per task.
        grouping_units: Widths of the shared network of the joint model
            whose linear heads define the task similarity.

    Returns:
        A `GroupingComparison`.
    """
    tasks = [dataclasses.replace(task, metrics=()) for task in data.tasks]
    names = [task.name for task in tasks]
    x, y = data.split("train")
    x_val, y_val = data.split("val")
    x_test, y_test = data.split("test")
    options = _fit_options(data, names, epochs, batch_size)
    scores, seconds = {}, {}

    start = time.perf_counter()
    model = build_model(tasks)
    model.fit(x, y, **options)
    scores["all-in-one"] = evaluation.score_model(model, x_test, y_test)
    seconds["all-in-one"] = time.perf_counter() - start

    start = time.perf_counter()
    joint = baselines.shared_bottom(tasks, list(grouping_units), tower_units=[])
    joint.compile(optimizer=keras.optimizers.AdamW(1e-3))
    joint.fit(x, y, **options)
    validation, best = {}, None
    for count in group_counts:
        grouping = group_tasks(joint, count)
        grouped, _ = fit_grouped(grouping, tasks, build_model, x, y, **options)
        validation[count] = _mean(evaluation.score_model(grouped, x_val, y_val))
        if best is None or validation[count] > validation[best[0]]:
            best = (count, grouping, grouped)
    count, grouping, grouped = best
    setting = f"grouped ({count} groups)"
    scores[setting] = evaluation.score_model(grouped, x_test, y_test)
    seconds[setting] = time.perf_counter() - start

    if single_task:
        start = time.perf_counter()
        scores["single-task"] = {}
        for task in tasks:
            model = build_model([task])
            model.fit(
                x,
                {task.name: y[task.name]},
                **_fit_options(data, [task.name], epochs, batch_size),
            )
            scores["single-task"].update(evaluation.score_model(model, x_test, y_test))
        seconds["single-task"] = time.perf_counter() - start
    return GroupingComparison(scores, seconds, grouping, validation)


def write_report(comparison, folder):
    """Writes the report files into `folder` (which must exist).

    Files: `summary.csv`, `task_scores.csv`, `groups.txt`, `similarity.png`.
    """
    comparison.table().to_csv(folder / "summary.csv", index=False)
    pd.DataFrame(comparison.scores).to_csv(folder / "task_scores.csv")
    lines = [", ".join(group) for group in comparison.grouping.groups]
    (folder / "groups.txt").write_text("\n".join(lines) + "\n")
    plot_task_similarity(comparison.grouping, folder / "similarity.png")
