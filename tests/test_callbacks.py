import collections
import io
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.image import imread

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError
from mmoeex_tf.analysis.diversity import (
    diversity_score,
    expert_distance_matrix,
    gate_usage,
)
from mmoeex_tf.analysis.scores import validation_score
from mmoeex_tf.integrations.callbacks import DiversityCallback, MeanTaskMetric

RNG = np.random.default_rng(11)
X = RNG.normal(size=(96, 5)).astype("float32")
TASKS = [
    mt.Task("flag", "binary"),
    mt.Task("grade", "multiclass", output_size=3),
    mt.Task("value", "regression"),
    mt.Task("other", "binary", metrics=("auc", "pr_auc")),
]
Y = {
    "flag": (X[:, 0] > 0).astype("float32"),
    "grade": np.digitize(X[:, 1], [-0.5, 0.5]).astype("float32"),
    "value": X[:, 2] + X[:, 3],
    "other": (X[:, 4] > 0.3).astype("float32"),
}


def _model():
    model = mt.MMoEExModel(TASKS, mt.DenseExperts(4, 8), alpha=0.5, seed=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _events(run_dir):
    """Tag -> step -> the summary's tensor, from a run's event files."""
    events = collections.defaultdict(dict)
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                events[value.tag][event.step] = tf.make_ndarray(value.tensor)
    return events


def _fit_two_epochs(callbacks):
    """Fits a fresh model for two epochs with validation; returns the history."""
    return (
        _model()
        .fit(
            X,
            Y,
            validation_data=(X, Y),
            epochs=2,
            batch_size=32,
            verbose=0,
            callbacks=callbacks,
        )
        .history
    )


def test_tensorboard_logs_every_per_task_loss_and_metric(tmp_path):
    history = _fit_two_epochs([keras.callbacks.TensorBoard(tmp_path)])
    for run, prefix in (("train", ""), ("validation", "val_")):
        events = _events(tmp_path / run)
        for task in TASKS:
            for metric in ("loss", *task.metrics):
                tag = f"epoch_{task.name}_{metric}"
                assert sorted(events[tag]) == [0, 1], (run, tag)
                logged = history[f"{prefix}{task.name}_{metric}"]
                np.testing.assert_allclose(
                    [events[tag][0], events[tag][1]], logged, rtol=1e-6
                )
        assert "epoch_loss" in events


def test_diversity_callback_logs_gate_usage_score_and_heatmap(tmp_path):
    model = _model()
    sample = X[:64]
    model.fit(
        X,
        Y,
        epochs=4,
        batch_size=32,
        verbose=0,
        callbacks=[DiversityCallback(sample, tmp_path, every_n_epochs=2)],
    )
    events = _events(tmp_path / "diversity")
    usage = gate_usage(model, sample)
    expected_tags = {
        f"gate_usage/{task}/expert_{i}" for task in model.task_names for i in range(4)
    }
    assert expected_tags | {"diversity/score", "diversity/heatmap"} == set(events)
    for tag in expected_tags:
        assert sorted(events[tag]) == [1, 3]  # every second epoch
    for task in model.task_names:
        logged = [events[f"gate_usage/{task}/expert_{i}"][3] for i in range(4)]
        np.testing.assert_allclose(logged, usage.loc[task], atol=1e-6)
        closed = np.asarray(model.gate_mask)[model.task_names.index(task)] == 0
        assert np.all(np.asarray(logged)[closed] == 0)
    score = diversity_score(expert_distance_matrix(model, sample))
    assert events["diversity/score"][3] == pytest.approx(score, abs=1e-6)
    width, height, png = events["diversity/heatmap"][3]
    image = imread(io.BytesIO(png), format="png")
    assert image.shape == (int(height), int(width), 4)


def test_mean_task_metric_logs_the_mean_over_tasks_on_validation_epochs():
    callbacks = [
        MeanTaskMetric(TASKS),
        MeanTaskMetric(TASKS, "auc"),
        MeanTaskMetric(TASKS, "loss"),
    ]
    history = _fit_two_epochs(callbacks)
    for epoch in range(2):
        logs = {key: values[epoch] for key, values in history.items()}
        assert np.isfinite(logs["val_mean_score"])  # its value: the next test
        auc = [logs["val_flag_auc"], logs["val_other_auc"]]
        assert logs["val_mean_auc"] == pytest.approx(np.mean(auc))
        losses = [logs[f"val_{task.name}_loss"] for task in TASKS]
        assert logs["val_mean_loss"] == pytest.approx(np.mean(losses))
    without_validation = (
        _model().fit(X, Y, epochs=1, verbose=0, callbacks=callbacks).history
    )
    assert not any(key.startswith("val_") for key in without_validation)


def test_mean_task_metric_ranks_an_adapted_model_by_skill_and_skips_nan():
    model = _model().adapt(Y)
    val_y = {**Y, "flag": np.ones_like(Y["flag"])}  # one class: its AUC is NaN
    callbacks = [MeanTaskMetric(TASKS), MeanTaskMetric(TASKS, "auc")]
    history = model.fit(
        X, Y, validation_data=(X, val_y), epochs=1, verbose=0, callbacks=callbacks
    ).history
    logs = {key: values[0] for key, values in history.items()}
    trivial = model.task_scaling.trivial_scores()
    assert all(np.isfinite(list(trivial.values())))
    assert logs["val_mean_score"] == pytest.approx(
        validation_score(TASKS, logs, trivial)
    )
    assert logs["val_mean_score"] != pytest.approx(validation_score(TASKS, logs))
    assert np.isnan(logs["val_flag_auc"])
    assert logs["val_mean_auc"] == pytest.approx(logs["val_other_auc"])


def test_callbacks_check_arguments_and_report_their_config(tmp_path):
    with pytest.raises(MMoEExError, match="No task logs metric 'kappa'"):
        MeanTaskMetric(TASKS[:1], "kappa")
    for value in (0, 2.0, True, None):
        with pytest.raises(
            MMoEExError,
            match=(
                "DiversityCallback every_n_epochs must be a positive integer, "
                f"got {re.escape(repr(value))}\\.$"
            ),
        ):
            DiversityCallback(X, tmp_path, every_n_epochs=value)
        with pytest.raises(
            MMoEExError,
            match=(
                "DiversityCallback batch_size must be a positive integer, "
                f"got {re.escape(repr(value))}\\.$"
            ),
        ):
            DiversityCallback(X, tmp_path, batch_size=value)
    callback = DiversityCallback(X, tmp_path, np.int64(2), batch_size=np.int64(8))
    assert type(callback.every_n_epochs) is int and callback.every_n_epochs == 2
    assert type(callback.batch_size) is int and callback.batch_size == 8
    assert MeanTaskMetric(TASKS, "auc").get_config() == {
        "tasks": [task.get_config() for task in TASKS],
        "metric": "auc",
    }
    assert DiversityCallback(X, tmp_path, 3, batch_size=16).get_config() == {
        "log_dir": str(tmp_path),
        "every_n_epochs": 3,
        "batch_size": 16,
    }
