import keras
import numpy as np
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError, MMoEExModel, Task
from mmoeex_tf.training.losses import activate as activate_task
from mmoeex_tf.training.metrics import TaskMetrics, TwoClassAUC
from mmoeex_tf.training.task_vector_metrics import TaskAUCs
from tests.helpers import ScaledDense

RNG = np.random.default_rng(0)
X = RNG.normal(size=(256, 6)).astype("float32")
TABLE_TASKS = [
    Task("flag", "binary"),
    Task("grade", "multiclass", output_size=3),
    Task("tags", "multilabel", output_size=2),
    Task("value", "regression"),
]
Y = {
    "flag": (X[:, 0] > 0).astype("float32"),
    "grade": np.digitize(X[:, 1], [-0.5, 0.5]).astype("float32"),
    "tags": (X[:, 2:4] > 0).astype("float32"),
    "value": X[:, 4] * 2.0 + X[:, 5],
}
STEPS = 10
SEQ = RNG.normal(size=(128, STEPS, 3)).astype("float32")
SEQ_TASKS = [
    Task("ihm", "binary", pooling="last", pooling_steps=6),
    Task("los", "multiclass", output_size=4, per_step=True),
    Task("decomp", "binary", per_step=True),
    Task("sofa", "regression", pooling="mean"),
]
SEQ_Y = {
    "ihm": (SEQ[:, :6, 0].mean(1) > 0).astype("float32"),
    "los": np.digitize(np.cumsum(SEQ[:, :, 1], axis=1), [-1, 0, 1]).astype("float32"),
    "decomp": (SEQ[:, :, 2] > 0.5).astype("float32"),
    "sofa": SEQ[:, :, 0].mean(1) * 3.0,
}
SEQ_Y["sofa"][::3] = np.nan


def table_model(**kwargs):
    options = {"experts": mt.DenseExperts(6, 16), "alpha": 0.5, "seed": 2}
    model = MMoEExModel(TABLE_TASKS, **{**options, **kwargs})
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def test_fit_logs_a_loss_and_metrics_per_task_and_learns():
    model = table_model()
    before = model.evaluate(X, Y, verbose=0, return_dict=True)
    history = model.fit(
        X, Y, validation_data=(X, Y), epochs=15, batch_size=64, verbose=0
    ).history
    expected = {
        "loss",
        "flag_loss",
        "flag_auc",
        "grade_loss",
        "grade_accuracy",
        "grade_kappa",
        "tags_loss",
        "tags_auc",
        "value_loss",
        "value_mae",
        "value_rmse",
    }
    expected.add("non_finite_steps")  # 0 in validation
    assert expected | {f"val_{k}" for k in expected} == set(history)
    after = model.evaluate(X, Y, verbose=0, return_dict=True)
    assert after["loss"] < 0.5 * before["loss"]
    assert after["flag_auc"] > 0.95 and after["tags_auc"] > 0.95
    assert after["grade_accuracy"] > 0.8 and after["grade_kappa"] > 0.7
    assert after["value_mae"] < np.abs(Y["value"] - Y["value"].mean()).mean() / 2


def test_fit_and_evaluate_turn_model_pruning_off_only_meanwhile():
    def pruning_off():
        options = tf.config.optimizer.get_experimental_options()
        return options.get("disable_model_pruning", False)

    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(("fit", pruning_off()))

        def on_test_begin(self, logs=None):
            seen.append(("evaluate", pruning_off()))

    model = table_model()
    assert not pruning_off()
    model.fit(X, Y, epochs=1, batch_size=128, verbose=0, callbacks=[Record()])
    model.evaluate(X, Y, verbose=0, callbacks=[Record()])
    assert seen == [("fit", True), ("evaluate", True)]
    assert not pruning_off()


def test_predict_returns_a_dict_shaped_by_task():
    outputs = table_model().predict(X, verbose=0)
    assert {k: v.shape for k, v in outputs.items()} == {
        "flag": (256,),
        "grade": (256, 3),
        "tags": (256, 2),
        "value": (256,),
    }
    np.testing.assert_allclose(outputs["grade"].sum(-1), 1.0, rtol=1e-5)
    assert ((outputs["flag"] > 0) & (outputs["flag"] < 1)).all()


def test_metrics_skip_missing_labels():
    model = table_model()
    missing = RNG.random(256) < 0.4
    masked = {k: v.copy() for k, v in Y.items()}
    for value in masked.values():
        value[missing] = np.nan
    kept = {k: v[~missing] for k, v in Y.items()}
    with_nan = model.evaluate(X, masked, batch_size=256, verbose=0, return_dict=True)
    dropped = model.evaluate(
        X[~missing], kept, batch_size=256, verbose=0, return_dict=True
    )
    for name, value in dropped.items():
        assert with_nan[name] == pytest.approx(value, rel=1e-5), name


def test_binary_aucs_are_one_metric_equal_to_each_tasks_own():
    tasks = [Task(f"t{i}", "binary") for i in range(4)] + [Task("v", "regression")]
    rng = np.random.default_rng(7)
    labels = {t.name: (rng.random(300) < 0.3).astype("float32") for t in tasks}
    labels["t3"][:] = 0.0  # one class only
    weights = {t.name: (rng.random(300) < 0.7).astype("float32") for t in tasks}
    logits = {t.name: rng.normal(size=(300, 1)).astype("float32") for t in tasks}
    metrics = TaskMetrics(tasks)
    aucs = metrics.metrics[0]
    assert isinstance(aucs, TaskAUCs) and aucs.task_names == ["t0", "t1", "t2", "t3"]
    assert [m.name for m in metrics.metrics[1:]] == ["v_mae", "v_rmse"]

    def activate(index, task_logits):  # the model's outputs of the logits
        return activate_task(tasks[index], task_logits)

    metrics.update(labels, weights, logits, activate)
    flipped = {name: -value for name, value in logits.items()}
    metrics.update(labels, weights, flipped, activate, finite=False)  # no count
    result = aucs.result()
    assert sorted(result) == ["t0_auc", "t1_auc", "t2_auc", "t3_auc"]
    for name in ("t0", "t1", "t2"):
        single = TwoClassAUC(num_thresholds=1000)
        probabilities = 1.0 / (1.0 + np.exp(-logits[name][:, 0]))
        single.update_state(labels[name], probabilities, sample_weight=weights[name])
        assert float(result[f"{name}_auc"]) == pytest.approx(float(single.result()))
    assert np.isnan(result["t3_auc"])
    present = weights["v"] > 0
    mae = np.abs(logits["v"][present, 0] - labels["v"][present]).mean()
    assert float(metrics.metrics[1].result()) == pytest.approx(mae)
    clone = TaskAUCs.from_config(aucs.get_config())
    assert clone.get_config() == aucs.get_config()


def test_sequence_tasks_per_step_and_pooled():
    experts = mt.RecurrentExperts(3, 8, cell="gru")
    model = MMoEExModel(SEQ_TASKS, experts, alpha=0.34, tower_units=[8], seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    outputs = model.predict(SEQ, verbose=0)
    assert {k: v.shape for k, v in outputs.items()} == {
        "ihm": (128,),
        "los": (128, STEPS, 4),
        "decomp": (128, STEPS),
        "sofa": (128,),
    }
    later = SEQ.copy()
    later[:, 6:] += 3.0  # ihm pools the first 6 steps of a causal expert
    np.testing.assert_allclose(
        model.predict(later, verbose=0)["ihm"], outputs["ihm"], rtol=1e-5
    )
    before = model.evaluate(SEQ, SEQ_Y, verbose=0, return_dict=True)
    history = model.fit(SEQ, SEQ_Y, epochs=8, batch_size=32, verbose=0).history
    assert {"los_kappa", "decomp_auc", "ihm_auc", "sofa_mae"} <= set(history)
    # Pooled and per-step binary tasks: one batched AUC metric each.
    aucs = [m.task_names for m in model.metrics if isinstance(m, TaskAUCs)]
    assert aucs == [["ihm"], ["decomp"]]
    after = model.evaluate(SEQ, SEQ_Y, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"]
    assert np.isfinite(after["sofa_loss"])


def test_conv_and_custom_experts_train():
    for experts in (
        mt.Conv1DExperts(2, 4),
        mt.LayerExperts(keras.layers.LSTM(4, return_sequences=True), 2),
    ):
        model = MMoEExModel(SEQ_TASKS, experts, seed=0)
        model.compile(optimizer="adam")
        history = model.fit(SEQ, SEQ_Y, epochs=2, batch_size=64, verbose=0).history
        assert np.isfinite(history["loss"]).all()


def test_save_and_load_round_trip(tmp_path):
    experts = mt.LayerExperts(ScaledDense(5), num_experts=6)
    model = MMoEExModel(TABLE_TASKS, experts, alpha=0.5, mode="exclusion", seed=9)
    model.compile(optimizer="adam")
    model.fit(X, Y, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.gate_mask, model.gate_mask)
    expected, actual = model.predict(X, verbose=0), loaded.predict(X, verbose=0)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])
    _, gates = loaded(X, return_gates=True)
    assert np.all(gates.numpy()[:, model.gate_mask == 0] == 0.0)
    assert loaded.tasks == model.tasks
    loaded.fit(X, Y, epochs=1, verbose=0)  # compiled on load, trains on


def test_baselines_share_the_api():
    mmoe = mt.mmoe(TABLE_TASKS, mt.DenseExperts(4, 8), seed=1)
    mmoeex = MMoEExModel(TABLE_TASKS, mt.DenseExperts(4, 8), alpha=0.0, seed=1)
    mmoe(X), mmoeex(X)
    mmoeex.set_weights(mmoe.get_weights())
    np.testing.assert_array_equal(
        mmoe.predict(X, verbose=0)["grade"], mmoeex.predict(X, verbose=0)["grade"]
    )
    bottom = mt.shared_bottom(TABLE_TASKS, [16, 8])
    _, gates = bottom(X, return_gates=True)
    np.testing.assert_array_equal(gates.numpy(), 1.0)
    singles = mt.single_task_models(TABLE_TASKS, [8])
    assert list(singles) == ["flag", "grade", "tags", "value"]
    assert singles["grade"].task_names == ["grade"]


def test_shared_bottom_and_single_task_gates_have_no_weights(recwarn):
    # One open expert per task: every gate weight is exactly 1 or 0 whatever
    # the input, so the gates hold no weights and training misses none.
    bottom = mt.shared_bottom(TABLE_TASKS, [8])
    singles = MMoEExModel(
        TABLE_TASKS, mt.DenseExperts(4, 8), gate_mask=np.eye(4, dtype="int32")
    )
    for model in (bottom, singles):
        model.compile(optimizer=keras.optimizers.AdamW(1e-2))
        model.fit(X, Y, batch_size=64, epochs=1, verbose=0)
        assert model.mixture.gate.constant and not model.mixture.gate.weights
    _, gates = singles(X[:3], return_gates=True)
    np.testing.assert_array_equal(gates.numpy(), np.broadcast_to(np.eye(4), (3, 4, 4)))
    assert not [w for w in recwarn if "Gradients do not exist" in str(w.message)]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda y: {**y, "typo": y["flag"]}, r"unknown task\(s\) \['typo'\]"),
        (
            lambda y: {k: v for k, v in y.items() if k != "value"},
            r"missing for task\(s\) \['value'\]",
        ),
        (
            lambda y: {**y, "grade": y["grade"] + 1},
            r"Task 'grade': multiclass labels must be integers in \[0, 3\)",
        ),
        (
            lambda y: {**y, "flag": y["flag"] * 2},
            "Task 'flag': binary labels must be 0 or 1",
        ),
        (
            lambda y: {**y, "value": y["value"][:10]},
            "Task 'value': 10 label rows for 256",
        ),
        (lambda y: {**y, "tags": y["tags"][:, 0]}, r"Task 'tags'.*shape \(batch, 2\)"),
    ],
)
def test_bad_labels_are_named(change, message):
    with pytest.raises(MMoEExError, match=message):
        table_model().fit(X, change(dict(Y)), epochs=1, verbose=0)


def test_label_keys_are_named_alike_in_memory_and_in_a_pipeline():
    y = {**{k: v for k, v in Y.items() if k != "value"}, "typo": Y["flag"]}
    pipeline = tf.data.Dataset.from_tensor_slices((X, y)).batch(64)
    message = r"unknown task\(s\) \['typo'\], labels missing for task\(s\) \['value'\]"
    for data in ((X, y), (pipeline, None)):
        with pytest.raises(MMoEExError, match=message):
            table_model().fit(*data, epochs=1, verbose=0)


def test_bad_features_are_named():
    model = table_model()
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(
        MMoEExError, match=r"NaN or inf in 1 row\(s\), first rows \[3\]"
    ):
        model.fit(bad, Y, verbose=0)
    with pytest.raises(MMoEExError, match="empty"):
        model.fit(X[:0], {k: v[:0] for k, v in Y.items()}, verbose=0)
    with pytest.raises(MMoEExError, match="numeric"):
        model.fit(X.astype(str), Y, verbose=0)
    with pytest.raises(MMoEExError, match=r"\(batch, steps, features\)"):
        MMoEExModel(SEQ_TASKS, mt.RecurrentExperts(2, 3)).fit(X, Y, verbose=0)
    model.fit(X, Y, epochs=1, verbose=0)
    wider = np.concatenate([X, X[:, :2]], axis=1)
    with pytest.raises(
        MMoEExError, match=r"shape \(batch, 8\).*built for \(batch, 6\)"
    ):
        model.fit(wider, Y, verbose=0)
    with pytest.raises(MMoEExError, match=r"built for \(batch, 6\)"):
        model.evaluate(wider[:, None], Y, verbose=0)
    with pytest.raises(MMoEExError, match=r"built for \(batch, 6\)"):
        model.predict(wider, verbose=0)
    with pytest.raises(MMoEExError, match="NaN or inf"):
        model.predict(bad, verbose=0)


def test_bad_model_arguments():
    with pytest.raises(MMoEExError, match=r"alpha must be a number in \[0, 1\]"):
        MMoEExModel(TABLE_TASKS, mt.DenseExperts(4, 2), alpha=-0.5)
    with pytest.raises(MMoEExError, match="num_exclusive must be an integer in"):
        MMoEExModel(TABLE_TASKS, mt.DenseExperts(4, 2), num_exclusive=5)
    with pytest.raises(MMoEExError, match="unique"):
        MMoEExModel([Task("a", "binary"), Task("a", "regression")])
    with pytest.raises(MMoEExError, match="loss comes from the tasks"):
        table_model().compile(optimizer="adam", loss="mse")
    with pytest.raises(MMoEExError, match="Per-step task"):
        MMoEExModel(SEQ_TASKS)(X)
