"""Label statistics: target scaling, loss normalisation, prior biases, skill."""

import math

import keras
import numpy as np
import pytest

import mmoeex_tf as mt
from mmoeex_tf.analysis.scores import skill, validation_score
from mmoeex_tf.layers.task_scaling import label_statistics
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.factory import learning_rate
from mmoeex_tf.runs.loop import BestWeights

TASKS = [
    mt.Task("flag", "binary"),
    mt.Task("grade", "multiclass", output_size=3),
    mt.Task("age", "regression"),
]
# Hand-made labels: flag positive rate 1/4; grade frequencies 1/2, 1/4, 1/4;
# age mean 50, population standard deviation 10.
Y = {
    "flag": np.array([1, 0, 0, 0, 1, 0, 0, 0, np.nan], "float32"),
    "grade": np.array([0, 0, 1, 2, 0, 0, 1, 2, np.nan], "float32"),
    "age": np.array([40, 60, 40, 60, 40, 60, 40, 60, np.nan], "float32"),
}
X = np.random.default_rng(0).normal(size=(9, 5)).astype("float32")


def adapted_model(zero_kernels=False, **adapt_options):
    model = mt.MMoEExModel(TASKS, mt.DenseExperts(4, 8), alpha=0.5, tower_units=[6])
    model.build((None, 5))
    if zero_kernels:
        kernels = [w for w in model.heads.weights if "kernel" in w.path]
        for kernel in kernels:
            kernel.assign(np.zeros(kernel.shape, "float32"))
    return model.adapt(Y, **adapt_options)


def test_label_statistics_by_hand():
    flag = label_statistics(TASKS[0], Y["flag"])
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert flag["prior_loss"] == pytest.approx(entropy)
    np.testing.assert_allclose(flag["prior_logits"], [math.log(1 / 3)], rtol=1e-6)
    assert flag["trivial_score"] == 0.5
    grade = label_statistics(TASKS[1], Y["grade"])
    frequencies = np.array([0.5, 0.25, 0.25])
    assert grade["prior_loss"] == pytest.approx(
        -(frequencies * np.log(frequencies)).sum()
    )
    log_prior = np.log(frequencies)
    np.testing.assert_allclose(grade["prior_logits"], log_prior - log_prior.mean())
    assert grade["trivial_score"] == 0.0  # accuracy is the second metric
    age = label_statistics(TASKS[2], Y["age"])
    assert age["mean"] == pytest.approx([50.0]) and age["scale"] == pytest.approx(
        [10.0]
    )
    assert age["prior_loss"] == 1.0
    assert age["trivial_score"] == pytest.approx(10.0)  # MAE of the median (50)


def test_the_prior_predicts_the_label_frequencies_and_the_mean():
    model = adapted_model(zero_kernels=True)
    outputs = model.predict(X, verbose=0)
    np.testing.assert_allclose(outputs["flag"], 0.25, rtol=1e-5)
    np.testing.assert_allclose(outputs["grade"], [[0.5, 0.25, 0.25]] * 9, rtol=1e-5)
    np.testing.assert_allclose(outputs["age"], 50.0, rtol=1e-6)


def test_every_task_loss_of_the_prior_is_exactly_one():
    model = adapted_model(zero_kernels=True)
    logits = model(X, return_logits=True)
    labels, weights = model.prepare_batch(X, Y, None)
    task_losses = model.compute_task_losses(labels, weights, logits)
    np.testing.assert_allclose(task_losses.numpy(), [1.0, 1.0, 1.0], rtol=1e-5)


def test_absolute_error_starts_at_the_median_and_its_prior_loss_is_one():
    task = mt.Task("stay", "regression", regression_loss="absolute_error")
    days = np.array([1, 1, 2, 4, 1, 1, 2, 10, np.nan], "float32")
    # Median 1.5, mean 2.75; mean absolute error of the median 14 / 8 = 1.75.
    std = float(np.std(days[:-1]))
    stats = label_statistics(task, days)
    assert stats["prior_loss"] == pytest.approx(1.75 / std)
    np.testing.assert_allclose(stats["prior_logits"], [(1.5 - 2.75) / std], rtol=1e-6)
    raw = label_statistics(task, days, standardize=False)
    assert raw["prior_loss"] == pytest.approx(1.75)
    np.testing.assert_allclose(raw["prior_logits"], [1.5])
    model = mt.MMoEExModel([task], mt.DenseExperts(2, 4), alpha=0.5, tower_units=[3])
    model.build((None, 5))
    for kernel in [w for w in model.heads.weights if "kernel" in w.path]:
        kernel.assign(np.zeros(kernel.shape, "float32"))
    model.adapt({"stay": days})
    np.testing.assert_allclose(model.predict(X, verbose=0)["stay"], 1.5, rtol=1e-6)
    # The loss is the absolute error: 1.75 / std standardised, / prior = 1.
    labels, weights = model.prepare_batch(X, {"stay": days}, None)
    logits = model(X, return_logits=True)
    losses = model.compute_task_losses(labels, weights, logits).numpy()
    np.testing.assert_allclose(losses, [1.0], rtol=1e-5)
    logits = {"stay": logits["stay"] + 2.0 / std}  # predict 3.5 everywhere
    losses = model.compute_task_losses(labels, weights, logits).numpy()
    # |1 - 3.5| x 4 + |2 - 3.5| x 2 + |4 - 3.5| + |10 - 3.5| = 20 over 8 rows.
    np.testing.assert_allclose(losses, [(20 / 8) / 1.75], rtol=1e-5)


def test_regression_loss_is_checked():
    with pytest.raises(mt.MMoEExError, match="regression_loss"):
        mt.Task("stay", "regression", regression_loss="huber")
    with pytest.raises(mt.MMoEExError, match="applies to regression"):
        mt.Task("flag", "binary", regression_loss="absolute_error")


def test_normalisation_off_gives_the_raw_losses():
    model = adapted_model(zero_kernels=True, normalize_losses=False)
    np.testing.assert_array_equal(np.asarray(model.task_scaling.loss_scale), 1.0)
    logits = model(X, return_logits=True)
    labels, weights = model.prepare_batch(X, Y, None)
    losses = model.compute_task_losses(labels, weights, logits).numpy()
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert losses[0] == pytest.approx(entropy, rel=1e-5)
    assert losses[2] == pytest.approx(1.0, rel=1e-5)  # standardised age


def test_raw_targets_keep_their_units_in_the_loss():
    model = adapted_model(zero_kernels=True, standardize_targets=False)
    assert float(model.task_scaling.loss_scale[2]) == pytest.approx(1 / 100.0)
    np.testing.assert_allclose(model.predict(X, verbose=0)["age"], 50.0, rtol=1e-6)


def test_scaled_regression_round_trip(tmp_path):
    model = adapted_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(X, Y, epochs=2, verbose=0)
    expected = model.predict(X, verbose=0)
    assert abs(float(np.mean(expected["age"])) - 50.0) < 5.0  # original units
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    for name in expected:
        np.testing.assert_array_equal(
            loaded.predict(X, verbose=0)[name], expected[name]
        )
    np.testing.assert_array_equal(
        np.asarray(loaded.task_scaling.loss_scale),
        np.asarray(model.task_scaling.loss_scale),
    )
    assert loaded.task_scaling.trivial_scores() == pytest.approx(
        model.task_scaling.trivial_scores()
    )


def test_a_model_file_without_statistics_loads_as_identity():
    path = "tests/fixtures/legacy_v0_1_0.keras"
    model = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(model.task_scaling.loss_scale), 1.0)


def test_skill_puts_every_metric_on_one_scale():
    assert skill("auc", 0.75, 0.5) == pytest.approx(0.5)
    assert skill("kappa", 0.3, 0.0) == pytest.approx(0.3)
    assert skill("mae", 1.0, 2.0) == pytest.approx(0.5)
    assert skill("mae", 3.0, 2.0) == pytest.approx(-0.5)
    assert math.isnan(skill("auc", 0.7, math.nan))


def test_validation_score_of_a_mix_of_auc_kappa_and_mae():
    tasks = [
        mt.Task("a", "binary"),
        mt.Task("k", "multiclass", output_size=4),
        mt.Task("m", "regression"),
    ]
    logs = {"val_a_auc": 0.75, "val_k_accuracy": 0.6, "val_m_mae": 1.0}
    tasks[1] = mt.Task("k", "multiclass", output_size=4, metrics=("kappa",))
    logs["val_k_kappa"] = 0.3
    trivial = {"a": 0.5, "k": 0.0, "m": 2.0}
    assert validation_score(tasks, logs, trivial) == pytest.approx(
        (0.5 + 0.3 + 0.5) / 3
    )
    # without statistics: raw metrics, errors negated (the old rule)
    assert validation_score(tasks, logs) == pytest.approx((0.75 + 0.3 - 1.0) / 3)
    # a task without a value is left out instead of making the mean NaN
    del logs["val_m_mae"]
    assert validation_score(tasks, logs, trivial) == pytest.approx(0.4)


def test_early_stopping_after_patience_epochs_without_improvement():
    model = adapted_model()
    stopper = BestWeights(TASKS, patience=2)
    stopper.set_model(model)
    for epoch, auc in enumerate([0.6, 0.7, 0.65, 0.66]):
        model.stop_training = False
        stopper.on_epoch_end(epoch, {"val_flag_auc": auc})
    assert stopper.best_epoch == 2 and model.stop_training


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = RunConfig(
        lr_schedule="cosine",
        warmup_epochs=1,
        epochs=4,
        batch_size=10,
        learning_rate=0.1,
    )
    schedule = learning_rate(config, train_rows=100)  # 10 steps per epoch
    values = [float(schedule(step)) for step in (0, 5, 10, 25, 40)]
    assert values[0] == pytest.approx(0.0)
    assert values[1] == pytest.approx(0.05)
    assert values[2] == pytest.approx(0.1)
    assert values[3] == pytest.approx(0.05, rel=1e-5)
    assert values[4] == pytest.approx(0.0, abs=1e-7)
    assert learning_rate(RunConfig(learning_rate=0.2)) == 0.2
    with pytest.raises(mt.MMoEExError, match="training rows"):
        learning_rate(config)
