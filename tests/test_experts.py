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
from tests.layer_checks import check_layer

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
    # One Keras layer per expert; the grouped recurrence is checked against
    # such layers in test_grouped_recurrent.py.
    experts = RecurrentExperts(2, [5, 3], cell=cell, grouped=False)
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
    assert experts.output_units == 3
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
    "init_kwargs, output_shape, num_weights, num_params",
    [
        # kernels (5, 2, 3) and (2, 3, 4), biases (2, 3) and (2, 4)
        ({"num_experts": 2, "units": [3, 4]}, (6, 2, 4), 4, 30 + 24 + 6 + 8),
        ({"num_experts": 2, "units": [3, 4], "use_bias": False}, (6, 2, 4), 2, 54),
        # kernel (5, 3, 2), bias (3, 2)
        (
            {"num_experts": 3, "units": [2], "dropout": 0.25, "seed": 7},
            (6, 3, 2),
            2,
            36,
        ),
    ],
    ids=["two-layers", "no-bias", "dropout"],
)
def test_dense_experts_layer_checklist(
    init_kwargs, output_shape, num_weights, num_params, tmp_path
):
    check_layer(
        DenseExperts,
        {**init_kwargs, "activation": "tanh"},
        FLAT,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=num_weights,
        expected_num_params=num_params,
        tmp_path=tmp_path,
    )


def test_dense_experts_by_hand_with_ones():
    # Every unit of layer 1 sums the features (1 + 2 = 3); every unit of
    # layer 2 sums three of those (9). Relu zeroes a negative sum.
    experts = DenseExperts(2, [3, 2], kernel_initializer="ones")
    outputs = experts(np.array([[1.0, 2.0], [1.0, -3.0]], "float32")).numpy()
    np.testing.assert_array_equal(outputs[0], np.full((2, 2), 9.0))
    np.testing.assert_array_equal(outputs[1], np.zeros((2, 2)))
    linear = DenseExperts(1, 1, activation=None, kernel_initializer="ones")
    outputs = linear(np.array([[1.0, -3.0]], "float32")).numpy()
    np.testing.assert_array_equal(outputs, [[[-2.0]]])


@pytest.mark.parametrize(
    "make",
    [
        lambda: DenseExperts(2, [3, 4], activation="tanh", dropout=0.5, seed=3),
        lambda: RecurrentExperts(2, [3, 4], cell="gru", dropout=0.5, seed=3),
        lambda: Conv1DExperts(2, [3, 4], activation="tanh", dropout=0.5, seed=3),
    ],
    ids=["dense", "recurrent", "conv1d"],
)
def test_public_attributes_hold_constructor_values(make):
    experts = make()
    assert experts.dropout == 0.5 and isinstance(experts.dropout, float)
    assert experts.seed == 3
    assert experts.output_units == 4
    widths = experts.filters if isinstance(experts, Conv1DExperts) else experts.units
    assert widths == [3, 4]
    if hasattr(experts, "activation"):
        assert experts.activation is keras.activations.tanh
        assert experts.get_config()["activation"] == "tanh"


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: DenseExperts(0, 3), "DenseExperts num_experts must be a positive"),
        (lambda: DenseExperts(2.0, 4), r"num_experts must be .*, got 2\.0"),
        (lambda: DenseExperts(True, 4), "num_experts must be .*, got True"),
        (lambda: DenseExperts(2, []), "DenseExperts units must be"),
        (lambda: DenseExperts(2, [4, 2.0]), "units must be"),
        (
            lambda: DenseExperts(2, 3, dropout=1.0),
            r"dropout must be a rate in \[0, 1\)",
        ),
        (lambda: DenseExperts(2, 3, seed=-1), "seed must be None"),
        (lambda: RecurrentExperts(2, 3, cell="transformer"), "cell must be one of"),
        (lambda: RecurrentExperts(2, 3, use_cudnn=1), "use_cudnn must be one of"),
        (lambda: RecurrentExperts(2, 3, grouped="yes"), "grouped must be one of"),
        (lambda: Conv1DExperts(2, 3, padding="valid"), "padding must be one of"),
        (lambda: Conv1DExperts(2, 3, kernel_size=3.0), "kernel_size must be"),
        (lambda: Conv1DExperts(2, 0), "Conv1DExperts filters must be"),
        (lambda: LayerExperts("dense", 2), "Keras layer"),
        (lambda: LayerExperts(ScaledDense(3), 0), "LayerExperts num_experts"),
    ],
)
def test_bad_expert_arguments(build, message):
    with pytest.raises(MMoEExError, match=message):
        build()
