import keras
import numpy as np
import pytest

from mmoeex_tf import (
    Conv1DExperts,
    DenseExperts,
    LayerExperts,
    MMoEExError,
    RecurrentExperts,
)
from tests.helpers import ScaledDense, assert_config_round_trip

RNG = np.random.default_rng(0)
FLAT = RNG.normal(size=(6, 5)).astype("float32")
SEQUENCE = RNG.normal(size=(3, 7, 4)).astype("float32")


def test_dense_experts_equal_separate_mlps():
    experts = DenseExperts(3, [4, 2], activation="tanh")
    outputs = experts(FLAT).numpy()
    assert outputs.shape == (6, 3, 2)
    weights = experts.get_weights()  # kernel_0, bias_0, kernel_1, bias_1
    for e in range(3):
        hidden = np.tanh(FLAT @ weights[0][:, e] + weights[1][e])
        expected = np.tanh(hidden @ weights[2][e] + weights[3][e])
        np.testing.assert_allclose(outputs[:, e], expected, rtol=1e-5, atol=1e-6)


def test_dense_experts_apply_at_every_step():
    experts = DenseExperts(2, 3)
    outputs = experts(SEQUENCE).numpy()
    assert outputs.shape == (3, 7, 2, 3)
    np.testing.assert_allclose(
        outputs[:, 4], experts(SEQUENCE[:, 4]).numpy(), rtol=1e-6
    )


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_recurrent_experts_are_independent_rnns(cell):
    experts = RecurrentExperts(2, [5, 3], cell=cell)
    outputs = experts(SEQUENCE).numpy()
    assert outputs.shape == (3, 7, 2, 3)
    second = SEQUENCE.copy()
    second[:, 3:] += 1.0  # later steps cannot change earlier outputs
    np.testing.assert_allclose(
        experts(second).numpy()[:, :3], outputs[:, :3], rtol=1e-6
    )
    hidden = SEQUENCE
    for layer in experts.experts[1]:
        hidden = layer(hidden)
    np.testing.assert_allclose(outputs[:, :, 1], hidden.numpy(), rtol=1e-6)
    assert_config_round_trip(experts, SEQUENCE)


def test_recurrent_experts_need_sequences():
    with pytest.raises(MMoEExError, match="steps"):
        RecurrentExperts(2, 3)(FLAT)


def test_conv1d_experts_equal_separate_convolutions():
    experts = Conv1DExperts(3, [4, 2], kernel_size=3, padding="causal")
    outputs = experts(SEQUENCE).numpy()
    assert outputs.shape == (3, 7, 3, 2)
    first, second = experts.convolutions
    for e in range(3):
        single_1 = keras.layers.Conv1D(4, 3, padding="causal", activation="relu")
        single_2 = keras.layers.Conv1D(2, 3, padding="causal", activation="relu")
        hidden = single_1(SEQUENCE)
        single_2(hidden)
        kernel, bias = first.get_weights()
        single_1.set_weights(
            [kernel[..., e * 4 : (e + 1) * 4], bias[e * 4 : (e + 1) * 4]]
        )
        kernel, bias = second.get_weights()
        single_2.set_weights(
            [kernel[..., e * 2 : (e + 1) * 2], bias[e * 2 : (e + 1) * 2]]
        )
        expected = single_2(single_1(SEQUENCE)).numpy()
        np.testing.assert_allclose(outputs[:, :, e], expected, rtol=1e-5, atol=1e-6)
    assert_config_round_trip(experts, SEQUENCE)


@pytest.mark.parametrize(
    "template",
    [
        ScaledDense(3),
        lambda: ScaledDense(3),
        keras.saving.serialize_keras_object(ScaledDense(3)),
    ],
    ids=["layer", "factory", "config"],
)
def test_layer_experts_from_any_keras_layer(template):
    experts = LayerExperts(template, num_experts=4)
    outputs = experts(FLAT).numpy()
    assert outputs.shape == (6, 4, 3)
    assert experts.units == 3
    kernels = [e.dense.kernel.numpy() for e in experts.experts]
    assert not np.allclose(kernels[0], kernels[1])  # own weights per expert
    expected = 2.0 * (FLAT @ kernels[2] + experts.experts[2].dense.bias.numpy())
    np.testing.assert_allclose(outputs[:, 2], expected, rtol=1e-5, atol=1e-6)
    assert_config_round_trip(experts, FLAT)


def test_dense_experts_config_round_trip_and_dropout():
    experts = DenseExperts(2, [3, 3], dropout=0.5, seed=1)
    assert_config_round_trip(experts, FLAT)
    trained = experts(np.ones((200, 5), "float32"), training=True).numpy()
    inferred = experts(np.ones((200, 5), "float32"), training=False).numpy()
    assert not np.allclose(trained, inferred)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: DenseExperts(0, 3), "num_experts"),
        (lambda: DenseExperts(2, []), "units"),
        (lambda: DenseExperts(2, 3, dropout=1.0), "dropout"),
        (lambda: RecurrentExperts(2, 3, cell="transformer"), "cell"),
        (lambda: Conv1DExperts(2, 3, padding="valid"), "padding"),
        (lambda: LayerExperts("dense", 2), "Keras layer"),
    ],
)
def test_bad_expert_arguments(build, message):
    with pytest.raises(MMoEExError, match=message):
        build()
