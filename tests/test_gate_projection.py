"""Gates computed from a projection of the input shared by all tasks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf import MaskedSoftmaxGate, MMoEEx, MMoEExError, MMoEExModel, Task
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.factory import build_model
from tests.layer_checks import check_layer

MASK = np.array([[1, 0, 1], [0, 1, 1]])
X = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 3.0]], "float32")


def hand_set_gate():
    """Features 3 -> projection 2 -> 2 tasks x 3 experts, known weights."""
    gate = MaskedSoftmaxGate(MASK, projection_units=2)
    gate.build((None, 3))
    projection = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]], "float32")
    kernel = np.array(
        [[[1.0, 9.0, 0.0], [0.0, 2.0, 1.0]], [[0.0, 9.0, 1.0], [1.0, 0.0, -1.0]]],
        "float32",
    )
    bias = np.array([[0.5, 7.0, 0.0], [0.0, 0.0, 0.25]], "float32")
    gate.set_weights([projection, kernel, bias])
    return gate, projection, kernel, bias


def test_weights_are_the_masked_softmax_of_the_projected_logits():
    gate, projection, kernel, bias = hand_set_gate()
    weights = gate(X).numpy()
    projected = X @ projection  # (2, 2): [[0, 3], [3.5, -4]]
    for t in range(2):
        logits = projected @ kernel[:, t] + bias[t]
        open_ = MASK[t] == 1
        exp = np.exp(logits[:, open_] - logits[:, open_].max(-1, keepdims=True))
        np.testing.assert_allclose(
            weights[:, t, open_], exp / exp.sum(-1, keepdims=True), rtol=1e-6
        )
        np.testing.assert_array_equal(weights[:, t, ~open_], 0.0)
    # Row 0, task 0: logits [0 + 0.5, -, 3 + 0] over experts 0 and 2.
    expected = np.exp([0.5 - 3.0, 0.0]) / np.exp([0.5 - 3.0, 0.0]).sum()
    np.testing.assert_allclose(weights[0, 0, [0, 2]], expected, rtol=1e-6)


def test_closed_experts_get_exactly_zero_gradient_and_the_projection_learns():
    gate = MaskedSoftmaxGate(MASK, projection_units=2)
    x = tf.constant(np.random.default_rng(1).normal(size=(16, 3)), tf.float32)
    probe = tf.constant(np.random.default_rng(2).normal(size=(16, 2, 3)), tf.float32)
    gate(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gate(x) * probe)
    projection, kernel, bias = tape.gradient(
        loss, [gate.projection, gate.kernel, gate.bias]
    )
    closed = MASK == 0
    assert np.all(kernel.numpy()[:, closed] == 0.0)
    assert np.all(bias.numpy()[closed] == 0.0)
    assert np.all(np.abs(kernel.numpy()[:, ~closed]).sum(0) > 0.0)
    assert np.all(np.abs(projection.numpy()) > 0.0)


def test_weight_count_does_not_grow_with_features_times_tasks():
    # toxcast: 1,024 bits, 617 tasks, 8 experts; a projection to 16 units.
    mask = np.ones((617, 8))
    full = MaskedSoftmaxGate(mask)
    full.build((None, 1024))
    projected = MaskedSoftmaxGate(mask, projection_units=16)
    projected.build((None, 1024))
    assert full.count_params() == 1024 * 617 * 8 + 617 * 8 == 5_059_400
    assert projected.count_params() == 1024 * 16 + 16 * 617 * 8 + 617 * 8 == 100_296
    assert [w.shape for w in projected.weights] == [(1024, 16), (16, 617, 8), (617, 8)]


def test_layer_checklist(tmp_path):
    x = np.random.default_rng(4).normal(size=(6, 5)).astype("float32")
    check_layer(
        MaskedSoftmaxGate,
        {"mask": MASK.tolist(), "projection_units": 4},
        x,
        expected_output_shape=(6, 2, 3),
        expected_num_trainable_weights=3,
        expected_num_params=5 * 4 + 4 * 2 * 3 + 2 * 3,
        tmp_path=tmp_path,
    )


def test_sequence_inputs_are_projected_at_every_step():
    gate, projection, _, _ = hand_set_gate()
    steps = np.stack([X, X[::-1]], axis=1)  # (2, 2 steps, 3)
    weights = gate(steps).numpy()
    np.testing.assert_array_equal(weights[:, 0], gate(X).numpy())
    np.testing.assert_array_equal(weights[:, 1], gate(X[::-1]).numpy())


@pytest.mark.parametrize("units", [-1, 2.5, "4"])
def test_bad_projection_units(units):
    message = (
        r"MaskedSoftmaxGate projection_units must be None \(no projection\) or an "
        rf"integer >= 0, got {units!r}\."
    )
    with pytest.raises(MMoEExError, match=message):
        MaskedSoftmaxGate(MASK, projection_units=units)


def test_mixture_and_model_keep_gate_units_through_saving(tmp_path):
    layer = MMoEEx(mt.DenseExperts(3, 2), num_tasks=2, gate_units=4)
    assert layer.gate_units == 4 and layer.get_config()["gate_units"] == 4
    assert MMoEEx(mt.DenseExperts(3, 2), num_tasks=2).gate_units is None
    tasks = [Task("a", "binary"), Task("b", "regression")]
    model = MMoEExModel(tasks, mt.DenseExperts(3, 4), alpha=0.5, gate_units=2)
    model.compile(optimizer="adam")
    x = np.random.default_rng(5).normal(size=(32, 6)).astype("float32")
    y = {"a": (x[:, 0] > 0).astype("float32"), "b": x[:, 1]}
    model.fit(x, y, epochs=1, verbose=0)
    assert model.mixture.gate.projection.shape == (6, 2)
    assert_reloads_alike(model, x, tmp_path, gate_units=2)


def assert_reloads_alike(model, x, tmp_path, gate_units):
    """Saves and reloads `model`: same `gate_units`, same predictions."""
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["gate_units"] == gate_units
    expected, actual = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])


@pytest.mark.parametrize(
    "model, projected",
    [
        ("mmoeex", True),
        ("mmoe", True),
        ("shared-bottom", False),
        ("single-task", False),
    ],
)
def test_factory_gives_the_gates_of_mixtures_the_projection(model, projected):
    tasks = [Task("a", "binary"), Task("b", "binary")]
    config = RunConfig(model=model, experts=4, expert_units=(4,), gate_units=3)
    built = build_model(config, tasks, (7,))
    assert built.mixture.gate_units == (3 if projected else None)


def test_gates_of_width_zero_read_no_input_and_mix_by_their_biases():
    gate = MaskedSoftmaxGate(MASK, projection_units=0)
    gate.build((None, 3))
    assert [w.name for w in gate.weights] == ["bias"]
    assert gate.task_weights == [gate.bias]
    bias = np.array([[0.5, 7.0, 0.0], [0.0, 0.0, 0.25]], "float32")
    gate.set_weights([bias])
    with tf.GradientTape() as tape:
        inputs = tf.constant(X)
        tape.watch(inputs)
        weights = gate(inputs)
    expected = np.zeros((2, 3))
    expected[0, [0, 2]] = np.exp([0.5, 0.0]) / np.exp([0.5, 0.0]).sum()
    expected[1, [1, 2]] = np.exp([0.0, 0.25]) / np.exp([0.0, 0.25]).sum()
    for row in weights.numpy():  # every example: the same mixture per task
        np.testing.assert_allclose(row, expected, rtol=1e-6)
    assert tape.gradient(weights, inputs) is None
    steps = gate(np.stack([X, X], axis=1)).numpy()
    assert steps.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(steps[0, 1], expected, rtol=1e-6)
    without_bias = MaskedSoftmaxGate(MASK, use_bias=False, projection_units=0)
    np.testing.assert_array_equal(without_bias(X).numpy()[0], MASK / 2)


def test_gates_of_width_zero_train_save_and_run_maml(tmp_path):
    x = np.random.default_rng(5).normal(size=(40, 6)).astype("float32")
    tasks = [Task("a", "binary"), Task("b", "regression")]
    config = RunConfig(model="mmoeex", experts=3, expert_units=(4,), gate_units=0)
    assert build_model(config, tasks, (6,)).mixture.gate_units == 0
    with pytest.raises(MMoEExError, match="gate_units"):
        RunConfig(gate_units=-1)
    model = MMoEExModel(
        tasks,
        mt.DenseExperts(3, 4),
        alpha=0.5,
        gate_units=0,
        optimization=mt.MAMLMTL(inner_lr=0.1),
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model(x[:2])
    y = {"a": (x[:, 0] > 0).astype("float32"), "b": x[:, 1]}
    before = model.mixture.gate.bias.numpy().copy()
    model.fit(x, y, epochs=2, batch_size=20, verbose=0)
    assert not np.allclose(model.mixture.gate.bias.numpy(), before)
    assert_reloads_alike(model, x, tmp_path, gate_units=0)
