"""Scores that labels of one class (or none) leave undefined are NaN."""

import math

import keras
import numpy as np
import pytest

from mmoeex_tf import MMoEExModel, Task
from mmoeex_tf.analysis.scores import task_score
from mmoeex_tf.datasets.base import MultiTaskData
from mmoeex_tf.layers import DenseExperts
from mmoeex_tf.runs.report import format_scores, mean_scores, score_split
from mmoeex_tf.training.metrics import CohenKappa, LabelledMetric, TwoClassAUC

RNG = np.random.default_rng(0)


def test_auc_of_one_class_is_nan_not_zero():
    auc = TwoClassAUC(num_thresholds=200)
    auc.update_state(np.zeros((4, 1)), RNG.uniform(size=(4, 1)))
    assert math.isnan(float(auc.result()))
    auc.update_state(np.ones((1, 1)), np.ones((1, 1)))
    assert float(auc.result()) == pytest.approx(1.0)
    pr = TwoClassAUC(num_thresholds=200, curve="PR")
    pr.update_state(np.ones((3, 1)), RNG.uniform(size=(3, 1)))
    assert math.isnan(float(pr.result()))


def test_multilabel_auc_is_the_mean_over_labels_with_both_classes():
    labels = (RNG.uniform(size=(200, 3)) > 0.5).astype("float32")
    labels[:, 1] = 1.0  # one class only
    scores = np.clip(labels * 0.3 + RNG.uniform(size=labels.shape), 0, 1)
    auc = TwoClassAUC(num_thresholds=1000, multi_label=True, num_labels=3)
    auc.update_state(labels, scores)
    task = Task("tags", "multilabel", output_size=3)
    exact = task_score(task, labels, scores)
    assert float(auc.result()) == pytest.approx(exact, abs=2e-3)
    assert auc.get_config()["label_weights"] is None
    auc.reset_state()
    auc.update_state(np.zeros((5, 3)), RNG.uniform(size=(5, 3)))
    assert math.isnan(float(auc.result()))


def test_kappa_of_one_class_and_metrics_without_labels_are_nan():
    kappa = CohenKappa(3)
    kappa.update_state(np.array([1, 1]), np.eye(3)[[1, 2]])
    assert math.isnan(float(kappa.result()))
    kappa.update_state(np.array([0]), np.eye(3)[[0]])
    assert 0 < float(kappa.result()) < 1
    task = Task("grade", "multiclass", output_size=3)
    assert math.isnan(task_score(task, np.ones(3), np.eye(3)))

    mae = LabelledMetric(keras.metrics.MeanAbsoluteError(name="value_mae"))
    assert mae.name == "value_mae"
    mae.update_state(np.ones((3, 1)), np.zeros((3, 1)), sample_weight=np.zeros(3))
    assert math.isnan(float(mae.result()))
    mae.update_state(np.ones((2, 1)), np.zeros((2, 1)), sample_weight=np.ones(2))
    assert float(mae.result()) == pytest.approx(1.0)
    restored = LabelledMetric.from_config(mae.get_config())
    assert restored.name == "value_mae" and math.isnan(float(restored.result()))


def one_class_data():
    """Three tasks; in the test split `rare` has no positive, `value` no label."""
    x = {s: RNG.normal(size=(n, 4)).astype("float32") for s, n in SIZES.items()}
    y = {}
    for split, rows in x.items():
        rare = (rows[:, 1] > 1.0).astype("float32")
        value = rows[:, 2].copy()
        if split == "test":
            rare[:] = 0.0
            value[:] = np.nan
        y[split] = {"flag": (rows[:, 0] > 0).astype("float32"), "rare": rare}
        y[split]["value"] = value
    tasks = (
        Task("flag", "binary"),
        Task("rare", "binary"),
        Task("value", "regression"),
    )
    return MultiTaskData("tiny", tasks, x, y, ["a", "b", "c", "d"])


SIZES = {"train": 96, "val": 32, "test": 32}


def test_score_split_and_tables_leave_undefined_scores_out_of_means():
    data = one_class_data()
    model = MMoEExModel(data.tasks, experts=DenseExperts(2, 4), seed=0)
    model.compile(optimizer="adam")
    model.fit(data.x["train"], data.y["train"], epochs=1, verbose=0)
    test = score_split(model, data, "test")
    assert math.isnan(test["rare"]["auc"]) and not math.isnan(test["flag"]["auc"])
    assert math.isnan(test["value"]["mae"])
    assert mean_scores(test)["auc"] == pytest.approx(test["flag"]["auc"])
    table = format_scores(test)
    assert "mean" in table and "left out of the mean: rare, value" in table
    every_row = score_split(model, data, "all")
    assert not math.isnan(every_row["rare"]["auc"])
    assert not math.isnan(every_row["value"]["mae"])
    # the first validation metric that picks the best epoch skips them too
    history = model.fit(
        data.x["train"],
        data.y["train"],
        validation_data=(data.x["test"], data.y["test"]),
        epochs=1,
        verbose=0,
    ).history
    assert math.isnan(history["val_rare_auc"][0])
