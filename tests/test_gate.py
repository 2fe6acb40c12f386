import numpy as np
import pytest
import tensorflow as tf

from mmoeex_tf import MaskedSoftmaxGate, MMoEExError
from tests.helpers import assert_config_round_trip

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
    [([[1, 2]], "0/1"), ([[0, 0], [1, 1]], "closes every expert")],
)
def test_bad_masks(mask, message):
    with pytest.raises(MMoEExError, match=message):
        MaskedSoftmaxGate(mask)
