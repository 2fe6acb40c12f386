"""Per-task logs packed into one vector per metric inside the compiled step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmoeex_tf import MMoEExModel, Task
from mmoeex_tf.layers.experts import DenseExperts
from mmoeex_tf.training.packed_logs import (
    PACKED,
    PackedLogs,
    packed_results,
    per_task_results,
    unpack,
)
from mmoeex_tf.training.task_vector_metrics import TaskAUCs, TaskMeans

NAMES = ["a", "b", "c"]


def small_case(rows=64, seed=3):
    """Three binary tasks with missing labels (one of one class only) and a
    regression task."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5)).astype("float32")
    y = {name: (rng.random(rows) < 0.4).astype("float32") for name in NAMES}
    y["c"][:] = 1.0
    for name in NAMES:
        y[name][rng.random(rows) < 0.5] = np.nan
    y["v"] = rng.normal(size=rows).astype("float32")
    y["v"][::3] = np.nan
    tasks = [Task(name, "binary") for name in NAMES] + [Task("v", "regression")]
    return x, y, tasks


def small_model(tasks):
    model = MMoEExModel(tasks, DenseExperts(2, 4, seed=0), tower_units=[4], seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def test_result_vector_holds_the_results_in_log_key_order():
    means = TaskMeans(NAMES, suffix="loss")
    means.update_state([1.0, 2.0, 4.0])
    means.update_state([3.0, 0.0, 4.0])
    assert means.log_keys == ["a_loss", "b_loss", "c_loss"]
    np.testing.assert_array_equal(means.result_vector(), [2.0, 1.0, 4.0])
    assert list(means.result()) == means.log_keys
    aucs = TaskAUCs(NAMES)
    aucs.update_state(
        [[1, 0, 1], [0, 1, 1], [1, 1, 1]],
        [[0.9, 0.2, 0.3], [0.1, 0.8, 0.6], [0.7, 0.1, 0.5]],
    )
    assert aucs.log_keys == ["a_auc", "b_auc", "c_auc"]
    vector = aucs.result_vector().numpy()
    result = aucs.result()
    assert list(result) == aucs.log_keys
    np.testing.assert_array_equal(vector, [float(v) for v in result.values()])
    np.testing.assert_allclose(vector[:2], [1.0, 0.5], atol=1e-6)
    assert np.isnan(vector[2])  # one class only


def test_packed_results_unpack_to_get_metrics_result():
    x, y, tasks = small_case()
    model = small_model(tasks)
    model.evaluate(x, y, batch_size=16, verbose=0)
    packed = packed_results(model.metrics)
    assert list(packed) == [
        "loss",
        PACKED + "task_means",
        PACKED + "task_aucs",
        "v_mae",
        "v_rmse",
        "non_finite_steps",
    ]
    assert packed[PACKED + "task_aucs"].shape == ()  # read after the step
    vectors = per_task_results(model.metrics)
    assert vectors[PACKED + "task_aucs"].shape == (3,)
    assert vectors[PACKED + "task_means"].shape == (4,)
    unpacked = unpack(packed, model.metrics, vectors)
    expected = model.get_metrics_result()
    assert list(unpacked) == list(expected)
    for key, value in expected.items():
        got = unpacked[key]
        assert got.dtype == value.dtype, key
        np.testing.assert_array_equal(got.numpy(), value.numpy(), err_msg=key)


def test_compiled_step_returns_vectors_and_logs_stay_per_task():
    x, y, tasks = small_case()
    model = small_model(tasks)
    per_batch = []
    recorder = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: per_batch.append(dict(logs))
    )
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        verbose=0,
        validation_data=(x, y),
        callbacks=[recorder],
    )
    keys = list(model.get_metrics_result())
    assert keys[:4] == ["loss", "a_loss", "b_loss", "c_loss"]
    assert "a_auc" in keys and "v_mae" in keys
    assert per_batch and all(set(logs) == set(keys) for logs in per_batch)
    assert set(history.history) == set(keys) | {f"val_{key}" for key in keys}
    assert set(model.train_on_batch(x, y, return_dict=True)) == set(keys)
    assert set(model.test_on_batch(x, y, return_dict=True)) == set(keys)
    logs = tf.function(model.train_step)((x[:16], y_slice(y, 0, 16)))
    assert logs[PACKED + "task_aucs"].shape == ()  # placeholders only
    assert logs[PACKED + "task_means"].shape == ()
    assert not {"a_auc", "a_loss"} & set(logs)


def y_slice(y, start, stop):
    return {name: values[start:stop] for name, values in y.items()}


def test_logged_values_equal_each_tasks_own_keras_metrics():
    x, y, tasks = small_case(rows=96)
    model = small_model(tasks)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    logs = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    logits = model(x, return_logits=True)
    for name in NAMES:
        present = ~np.isnan(y[name])
        labels = y[name][present]
        task_logits = logits[name].numpy().reshape(-1)[present]
        auc = keras.metrics.AUC(num_thresholds=1000)
        auc.update_state(labels, 1.0 / (1.0 + np.exp(-task_logits)))
        if name == "c":  # positives only: NaN, where Keras says 0
            assert np.isnan(logs["c_auc"])
        else:
            assert logs[f"{name}_auc"] == pytest.approx(float(auc.result()), abs=1e-6)
        # Every batch holds 32 rows, so the mean of the batch losses.
        losses = [
            keras.losses.binary_crossentropy(labels_, logits_, from_logits=True).numpy()
            for labels_, logits_ in batch_present(y[name], logits[name], 32)
        ]
        assert logs[f"{name}_loss"] == pytest.approx(np.mean(losses), abs=1e-6)
    present = ~np.isnan(y["v"])
    outputs = model.predict(x, verbose=0)["v"][present]
    mae = np.abs(outputs - y["v"][present]).mean()
    assert logs["v_mae"] == pytest.approx(mae, abs=1e-6)


def batch_present(labels, logits, batch):
    """Per batch, the present labels and their logits."""
    logits = logits.numpy().reshape(-1)
    for start in range(0, len(labels), batch):
        chunk = labels[start : start + batch]
        present = ~np.isnan(chunk)
        yield chunk[present], logits[start : start + batch][present]


class TwoMeans(PackedLogs, keras.Model):
    """A plain Keras model logging two task means through `PackedLogs`."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)
        self.means = TaskMeans(["p", "q"], suffix="err")
        self.total = keras.metrics.Mean(name="total")

    def call(self, x):
        return self.dense(x)

    def test_step(self, data):
        x, y = data
        errors = tf.reduce_mean(tf.abs(self(x) - y), axis=0)
        self.means.update_state(errors)
        self.total.update_state(tf.reduce_sum(errors))
        return packed_results(self.metrics)

    @property
    def metrics(self):
        return [self.means, self.total]


def test_mixin_unpacks_the_logs_of_any_keras_model():
    model = TwoMeans()
    model.compile()
    x = np.arange(12, dtype="float32").reshape(6, 2)
    logs = model.evaluate(x, x, batch_size=6, verbose=0, return_dict=True)
    assert list(logs) == ["p_err", "q_err", "total"]
    errors = np.abs(model.predict(x, verbose=0) - x).mean(axis=0)
    np.testing.assert_allclose([logs["p_err"], logs["q_err"]], errors, rtol=1e-6)
    assert logs["total"] == pytest.approx(errors.sum(), rel=1e-6)


def test_task_aucs_equal_keras_auc_at_the_thresholds_and_ends():
    rng = np.random.default_rng(5)
    labels = (rng.random((400, 4)) < 0.3).astype("float32")
    # Probabilities on the thresholds themselves, at 0 and 1, and between.
    probabilities = rng.integers(0, 1000, size=(400, 4)) / 999.0
    probabilities[::7] = rng.random((58, 4))
    probabilities[::11] = 0.0
    probabilities[::13] = 1.0
    weights = rng.choice([0.0, 0.5, 1.0, 2.0], size=(400, 4)).astype("float32")
    aucs = TaskAUCs(["a", "b", "c", "d"])
    expected = keras.metrics.AUC(num_thresholds=1000, multi_label=True, num_labels=4)
    for rows in (slice(0, 150), slice(150, 400)):  # two updates add up
        aucs.update_state(labels[rows], probabilities[rows], weights[rows])
    for column in range(4):
        one = keras.metrics.AUC(num_thresholds=1000)
        one.update_state(
            labels[:, column], probabilities[:, column], weights[:, column]
        )
        assert float(aucs.result_vector()[column]) == pytest.approx(
            float(one.result()), abs=1e-6
        )
    expected.update_state(labels, probabilities, weights)
    assert float(tf.reduce_mean(aucs.result_vector())) == pytest.approx(
        float(expected.result()), abs=1e-6
    )
    aucs.reset_state()
    assert np.isnan(aucs.result_vector().numpy()).all()
