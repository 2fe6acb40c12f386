import keras
import numpy as np
import pytest

from mmoeex_tf import DenseExperts, MMoEEx, MMoEExError, Task
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.factory import build_model
from tests.helpers import assert_config_round_trip

X = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")


def softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def test_alpha_zero_is_exactly_mmoe():
    layer = MMoEEx(DenseExperts(4, 3), num_tasks=2, alpha=0.0)
    mixtures, gates = (t.numpy() for t in layer(X))
    np.testing.assert_array_equal(layer.gate_mask, np.ones((2, 4)))
    experts = layer.experts(X).numpy()  # (batch, experts, units)
    kernel, bias = layer.gate.get_weights()
    for t in range(2):
        gate = softmax(X @ kernel[:, t] + bias[t])
        np.testing.assert_allclose(gates[:, t], gate, rtol=1e-5)
        expected = np.einsum("be,beu->bu", gate, experts)
        np.testing.assert_allclose(mixtures[:, t], expected, rtol=1e-5, atol=1e-6)


def test_one_open_expert_per_task_mixes_to_that_expert_exactly():
    layer = MMoEEx(DenseExperts(3, 4), num_tasks=3, gate_mask=np.eye(3)[[2, 0, 1]])
    mixtures, gates = (t.numpy() for t in layer(X))
    experts = layer.experts(X).numpy()  # (batch, experts, units)
    np.testing.assert_array_equal(mixtures, experts[:, [2, 0, 1]])
    np.testing.assert_array_equal(
        gates, np.broadcast_to(np.eye(3)[[2, 0, 1]], (8, 3, 3))
    )
    # A file saved when such gates had a kernel and a bias still loads.
    layer.gate.load_own_variables({"0": np.ones((5, 3, 3)), "1": np.ones((3, 3))})
    np.testing.assert_array_equal(layer(X)[0].numpy(), mixtures)


def test_task_output_ignores_closed_experts():
    mask = [[1, 1, 0, 0], [0, 0, 1, 1]]
    layer = MMoEEx(DenseExperts(4, 3), num_tasks=2, gate_mask=mask)
    before = layer(X)[0].numpy()
    kernel_0, bias_0 = layer.experts.get_weights()
    kernel_0[:, 2:] += 5.0  # experts closed to task 0
    layer.experts.set_weights([kernel_0, bias_0])
    after = layer(X)[0].numpy()
    np.testing.assert_array_equal(after[:, 0], before[:, 0])
    assert not np.allclose(after[:, 1], before[:, 1])


def test_mask_is_drawn_from_seed_and_kept_in_config():
    layer = MMoEEx(DenseExperts(12, 2), num_tasks=3, alpha=0.75, seed=5)
    assert (layer.gate_mask.sum(0) == 1).sum() == 9
    clone = assert_config_round_trip(layer, X)
    np.testing.assert_array_equal(clone.gate_mask, layer.gate_mask)
    config = layer.get_config()
    config["seed"] = 99  # the stored mask wins over a new draw
    rebuilt = MMoEEx.from_config(config)
    np.testing.assert_array_equal(rebuilt.gate_mask, layer.gate_mask)


def test_one_expert_is_every_tasks_mixture_given_once():
    layer = MMoEEx(DenseExperts(1, 3), num_tasks=4)
    mixtures, gates = (t.numpy() for t in layer(X))
    np.testing.assert_array_equal(gates, np.ones((8, 4, 1)))
    np.testing.assert_array_equal(mixtures, layer.experts(X).numpy())
    assert mixtures.shape == layer.compute_output_shape(X.shape)[0] == (8, 1, 3)


def test_sequence_inputs_mix_per_step():
    layer = MMoEEx(DenseExperts(3, 2), num_tasks=2, alpha=0.5)
    mixtures, gates = layer(np.ones((2, 6, 5), "float32"))
    assert mixtures.shape == (2, 6, 2, 2)
    assert gates.shape == (2, 6, 2, 3)


def test_input_dropout_drops_what_experts_and_gates_see_in_training_only():
    layer = MMoEEx(
        DenseExperts(3, 2), num_tasks=2, alpha=0.5, seed=3, input_dropout=0.5
    )
    plain = MMoEEx(DenseExperts(3, 2), num_tasks=2, alpha=0.5, seed=3)
    for model in (layer, plain):
        model.build(X.shape)
    plain.experts.set_weights(layer.experts.get_weights())
    plain.gate.set_weights(layer.gate.get_weights())
    # A fresh dropout layer with the same seed draws the same first mask.
    dropped = keras.layers.Dropout(0.5, seed=3)(X, training=True).numpy()
    assert 0.2 < np.mean(dropped == 0) < 0.8
    for got, want in zip(layer(X, training=True), plain(dropped)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    for got, want in zip(layer(X), plain(X)):  # inference: every input kept
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    clone = assert_config_round_trip(layer, X)
    assert clone.input_dropout == 0.5 and plain.get_config()["input_dropout"] == 0.0


def test_bad_arguments():
    with pytest.raises(MMoEExError, match="input_dropout"):
        MMoEEx(DenseExperts(4, 2), num_tasks=2, input_dropout=1.0)
    with pytest.raises(MMoEExError, match="alpha"):
        MMoEEx(DenseExperts(4, 2), num_tasks=2, alpha=2.0)
    with pytest.raises(MMoEExError, match="num_exclusive"):
        MMoEEx(DenseExperts(4, 2), num_tasks=2, num_exclusive=5)
    with pytest.raises(MMoEExError, match="gate_mask must have shape"):
        MMoEEx(DenseExperts(4, 2), num_tasks=2, gate_mask=np.ones((3, 4)))
    with pytest.raises(TypeError, match="ExpertStack"):
        MMoEEx(keras.layers.Dense(3), num_tasks=2)
    with pytest.raises(MMoEExError, match=r"MMoEEx num_tasks must be .*, got 2\.0"):
        MMoEEx(DenseExperts(4, 2), num_tasks=2.0)
    with pytest.raises(MMoEExError, match=r"mode must be one of"):
        MMoEEx(DenseExperts(4, 2), num_tasks=2, mode="exclusive")


def test_constructor_takes_layers_and_from_config_takes_configs():
    experts = DenseExperts(4, 2)
    with pytest.raises(TypeError, match="ExpertStack"):
        MMoEEx(keras.saving.serialize_keras_object(experts), num_tasks=2)
    layer = MMoEEx(experts, num_tasks=2, alpha=0.5)
    clone = MMoEEx.from_config(layer.get_config())
    assert isinstance(clone.experts, DenseExperts)
    assert clone.get_config() == layer.get_config()


def test_gate_takes_the_mixture_dtype_policy():
    layer = MMoEEx(DenseExperts(4, 2), num_tasks=2, dtype="mixed_bfloat16")
    mixtures, gates = layer(X)
    assert layer.gate.dtype_policy.name == "mixed_bfloat16"
    assert gates.dtype == "bfloat16" and layer.gate.kernel.dtype == "float32"
    # float32 experts are mixed in the mixture's compute dtype
    assert mixtures.dtype == "bfloat16"
    assert layer.experts.compute_dtype == "float32"


@pytest.mark.parametrize("model", ["mmoeex", "mmoe", "shared-bottom", "single-task"])
def test_every_model_kind_keeps_input_dropout_through_saving(model, tmp_path):
    tasks = [Task("a", "binary"), Task("b", "regression")]
    config = RunConfig(model=model, experts=2, expert_units=(4,), input_dropout=0.25)
    built = build_model(config, tasks, (5,))
    assert built.mixture.input_dropout == 0.25
    built.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.mixture.input_dropout == 0.25
    np.testing.assert_allclose(  # inference keeps every input
        loaded.predict(X, verbose=0)["b"], built.predict(X, verbose=0)["b"], rtol=1e-6
    )
