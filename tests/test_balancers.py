import keras
import numpy as np
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError, MMoEExModel, Task
from mmoeex_tf.training import balancers
from mmoeex_tf.training.maml import MAMLMTL

TASKS = [Task("flag", "binary"), Task("value", "regression")]
RNG = np.random.default_rng(3)
X = RNG.normal(size=(120, 4)).astype("float32")
Y = {"flag": (X[:, 0] > 0).astype("float32"), "value": X[:, 1] * 3.0}


def bound(balancer):
    balancer.bind(TASKS)
    return balancer


def weights(balancer, losses):
    return balancer(tf.constant(losses, tf.float32)).numpy()


def test_equal_and_static_weights():
    np.testing.assert_array_equal(weights(bound(mt.EqualWeights()), [3, 0.5]), 1.0)
    static = bound(balancers.get({"value": 0.25, "flag": 2}))
    assert isinstance(static, mt.StaticWeights)
    np.testing.assert_array_equal(weights(static, [3, 0.5]), [2.0, 0.25])


@pytest.mark.parametrize(
    "given, message",
    [
        ({"flag": 1.0}, r"missing: \['value'\], unknown: \[\]"),
        ({"flag": 1, "value": 1, "typo": 1}, r"missing: \[\], unknown: \['typo'\]"),
    ],
)
def test_static_weights_must_name_every_task(given, message):
    for optimization in (mt.JointTraining(given), MAMLMTL(balancer=given)):
        with pytest.raises(MMoEExError, match=message):
            MMoEExModel(TASKS, optimization=optimization)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: mt.StaticWeights({"flag": -1.0}), r"weights\['flag'\] must be"),
        (lambda: mt.StaticWeights([1.0, 2.0]), "must be a dict"),
        (lambda: mt.DynamicWeightAverage(temperature=0), "temperature must be"),
        (lambda: mt.DynamicWeightAverage(bounds=(2, 1)), "bounds must be"),
        (lambda: mt.LossBalancedTaskWeighting(bounds=(1,)), "bounds must be"),
        (lambda: mt.LossBalancedTaskWeighting(alpha=-1), "alpha must be"),
        (lambda: balancers.get("gradnorm"), "balancer must be None, a Balancer"),
        (lambda: balancers.get(3), "balancer must be None, a Balancer"),
    ],
)
def test_bad_balancer_arguments(make, message):
    with pytest.raises(MMoEExError, match=message):
        make()


def test_dynamic_weight_average_follows_the_epoch_loss_ratios():
    dwa = bound(mt.DynamicWeightAverage(temperature=2.0, bounds=None))
    epochs = [[[2.0, 1.0], [4.0, 3.0]], [[3.0, 1.0], [3.0, 1.0]], [[1.0, 1.0]]]
    for epoch in epochs[:2]:
        for losses in epoch:
            np.testing.assert_array_equal(weights(dwa, losses), 1.0)
        dwa.end_epoch()
    ratios = np.array([3.0, 1.0]) / np.array([3.0, 2.0])  # epoch means 2 / 1
    expected = 2 * np.exp(ratios / 2) / np.exp(ratios / 2).sum()
    np.testing.assert_allclose(weights(dwa, epochs[2][0]), expected, rtol=1e-6)
    clipped = bound(mt.DynamicWeightAverage(temperature=0.05))
    for epoch in epochs[:2]:
        for losses in epoch:
            weights(clipped, losses)
        clipped.end_epoch()
    np.testing.assert_allclose(weights(clipped, [1.0, 1.0]), [1.5, 0.5])


def test_loss_balanced_task_weighting_uses_the_first_loss_of_the_epoch():
    lbtw = bound(mt.LossBalancedTaskWeighting(alpha=0.5, bounds=None))
    np.testing.assert_array_equal(weights(lbtw, [4.0, 2.0]), 1.0)
    np.testing.assert_allclose(weights(lbtw, [1.0, 2.0]), [0.5, 1.0])
    lbtw.end_epoch()
    np.testing.assert_array_equal(weights(lbtw, [1.0, 8.0]), 1.0)
    np.testing.assert_allclose(weights(lbtw, [9.0, 2.0]), [3.0, 0.5])
    clipped = bound(mt.LossBalancedTaskWeighting())
    weights(clipped, [4.0, 2.0])
    np.testing.assert_allclose(weights(clipped, [100.0, 0.0]), [1.5, 0.5])


def test_uncertainty_weighting_learns_log_variances():
    uncertainty = bound(mt.UncertaintyWeighting())
    uncertainty.log_variances.assign([np.log(4.0), 0.0])
    np.testing.assert_allclose(weights(uncertainty, [1.0, 1.0]), [0.25, 0.5])
    assert float(uncertainty.penalty()) == pytest.approx(0.5 * np.log(4.0))
    model = MMoEExModel(TASKS, optimization=mt.JointTraining("uncertainty"))
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(X, Y, epochs=2, batch_size=40, verbose=0)
    assert any(v is model.balancer.log_variances for v in model.trainable_variables)
    assert np.all(model.balancer.log_variances.numpy() != 0.0)


@pytest.mark.parametrize(
    "name, optimization",
    [
        ("dwa", mt.JointTraining),
        ("lbtw", MAMLMTL),
        ("uncertainty", MAMLMTL),
        ("equal", mt.JointTraining),
    ],
)
def test_fit_runs_the_epoch_hook_and_saves_the_state(name, optimization, tmp_path):
    model = MMoEExModel(TASKS, optimization=optimization(balancer=name))
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(X, Y, epochs=3, batch_size=40, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    if name == "dwa":
        assert float(model.balancer.epochs.numpy()) == 3.0
    if name == "lbtw":
        assert float(model.balancer.epoch_start.numpy()) == 1.0
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.balancer) is type(model.balancer)
    assert loaded.optimization.get_config() == model.optimization.get_config()
    for want, got in zip(model.balancer.weights, loaded.balancer.weights):
        np.testing.assert_array_equal(want.numpy(), got.numpy())
