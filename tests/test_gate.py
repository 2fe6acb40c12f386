import numpy as np
import pytest
import tensorflow as tf

from mmoeex_tf import MaskedSoftmaxGate, MMoEExError
from tests.helpers import assert_config_round_trip
from tests.layer_checks import check_layer

MASK = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]])


def test_closed_experts_get_exactly_zero_weight():
    gate = MaskedSoftmaxGate(MASK)
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
    weights = gate(x).numpy()
    assert weights.shape == (32, 3, 4)
    assert np.all(weights[:, MASK == 0] == 0.0)
    assert np.all(weights[:, MASK == 1] > 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)


def test_closed_experts_get_exactly_zero_gradient():
    gate = MaskedSoftmaxGate(MASK)
    x = tf.constant(np.random.default_rng(1).normal(size=(16, 5)), tf.float32)
    probe = tf.constant(np.random.default_rng(2).normal(size=(16, 3, 4)), tf.float32)
    gate(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gate(x) * probe)
    kernel_grad, bias_grad = tape.gradient(loss, [gate.kernel, gate.bias])
    closed = MASK == 0
    assert np.all(kernel_grad.numpy()[:, closed] == 0.0)
    assert np.all(bias_grad.numpy()[closed] == 0.0)
    assert np.all(np.abs(kernel_grad.numpy()[:, ~closed]).sum(0) > 0.0)


def test_large_logits_are_stable():
    gate = MaskedSoftmaxGate(MASK, use_bias=False)
    gate.build((None, 2))
    gate.kernel.assign(np.full((2, 3, 4), 1e4, "float32"))
    weights = gate(np.array([[3.0, 5.0]], "float32")).numpy()
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights[0, 0], [1 / 3, 0, 1 / 3, 1 / 3], rtol=1e-6)


def test_single_gate_and_sequence_inputs():
    gate = MaskedSoftmaxGate([1, 0, 1])
    weights = gate(np.ones((2, 7, 4), "float32")).numpy()
    assert weights.shape == (2, 7, 3)
    assert np.all(weights[..., 1] == 0.0)
    assert gate.compute_output_shape((2, 7, 4)) == (2, 7, 3)


def test_config_round_trip():
    x = np.random.default_rng(3).normal(size=(4, 5)).astype("float32")
    clone = assert_config_round_trip(MaskedSoftmaxGate(MASK, name="g"), x)
    np.testing.assert_array_equal(clone.mask, MASK.astype(bool))


@pytest.mark.parametrize(
    "mask, message",
    [
        ([[1, 2]], r"mask entries must be 0 \(closed\) or 1 \(open\)"),
        ([[0, 0], [1, 1]], r"Task\(s\) at index \[0\] would have no open expert"),
        ([0, 0, 0], r"Task\(s\) at index \[0\] would have no open expert"),
        (np.ones((2, 2, 2)), r"mask must have shape \(tasks, experts\)"),
        (1, r"mask must have shape \(tasks, experts\)"),
    ],
)
def test_bad_masks(mask, message):
    with pytest.raises(MMoEExError, match=message):
        MaskedSoftmaxGate(mask)


@pytest.mark.parametrize(
    "init_kwargs, output_shape, num_weights, num_params",
    [
        # kernel (5, 3, 4), bias (3, 4)
        ({"mask": MASK.tolist()}, (6, 3, 4), 2, 60 + 12),
        ({"mask": MASK.tolist(), "use_bias": False}, (6, 3, 4), 1, 60),
        # kernel (5, 1, 3), bias (1, 3); the task axis is dropped
        ({"mask": [1, 0, 1]}, (6, 3), 2, 15 + 3),
    ],
    ids=["tasks", "no-bias", "single-gate"],
)
def test_layer_checklist(init_kwargs, output_shape, num_weights, num_params, tmp_path):
    x = np.random.default_rng(4).normal(size=(6, 5)).astype("float32")
    check_layer(
        MaskedSoftmaxGate,
        init_kwargs,
        x,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=num_weights,
        expected_num_params=num_params,
        tmp_path=tmp_path,
    )


def test_equal_logits_share_the_open_experts_equally():
    # With "ones" kernels every logit is the sum of the features: all equal,
    # so each task spreads its weight evenly over its open experts.
    gate = MaskedSoftmaxGate(MASK, kernel_initializer="ones")
    weights = gate(np.array([[1.0, -2.0, 4.0]], "float32")).numpy()[0]
    third = np.float32(1.0) / np.float32(3.0)
    np.testing.assert_array_equal(weights[0], [third, 0, third, third])
    np.testing.assert_array_equal(weights[1], [0, 0.5, 0.5, 0])
    np.testing.assert_array_equal(weights[2], [0.25, 0.25, 0.25, 0.25])


def test_one_open_expert_weighs_exactly_one():
    gate = MaskedSoftmaxGate([[0, 1, 0], [1, 1, 1]], kernel_initializer="ones")
    weights = gate(np.array([[1e3, 2e3]], "float32")).numpy()[0]
    np.testing.assert_array_equal(weights[0], [0.0, 1.0, 0.0])


def test_public_attributes_hold_constructor_values():
    gate = MaskedSoftmaxGate([1, 0, 1], use_bias=False)
    np.testing.assert_array_equal(gate.mask, [[True, False, True]])
    assert gate.single_gate and not gate.use_bias
    assert (gate.num_tasks, gate.num_experts) == (1, 3)
    assert gate.get_config()["mask"] == [1, 0, 1]
