"""Grouped dense maps against the einsum they compute, values and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from mmoeex_tf.layers import batched_ops


@pytest.mark.parametrize(
    "groups", [1, 3, batched_ops.MAX_GROUPS_MULTIPLIED_APART, 10]
)  # one matmul per group up to the limit, one batched matmul above it
@pytest.mark.parametrize("leading", [(5,), (2, 3)])  # rows; batch and steps
def test_grouped_dense_is_each_groups_own_map(groups, leading):
    rng = np.random.default_rng(groups)
    inputs = tf.constant(rng.normal(size=(*leading, groups, 4)))
    kernel = tf.constant(rng.normal(size=(groups, 4, 3)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([inputs, kernel])
        outputs = batched_ops.grouped_dense(inputs, kernel)
        expected = tf.einsum("...gf,gfu->...gu", inputs, kernel)
        weights = tf.constant(rng.normal(size=expected.shape))
        loss, expected_loss = (tf.reduce_sum(weights * t) for t in (outputs, expected))
    np.testing.assert_allclose(outputs, expected, rtol=1e-12)
    for got, want in zip(
        tape.gradient(loss, [inputs, kernel]),
        tape.gradient(expected_loss, [inputs, kernel]),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_grouped_dense_broadcasts_one_shared_input():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(5, 1, 4))
    kernel = rng.normal(size=(3, 4, 2))
    outputs = batched_ops.grouped_dense(tf.constant(inputs), tf.constant(kernel))
    np.testing.assert_allclose(
        outputs, np.einsum("bf,gfu->bgu", inputs[:, 0], kernel), rtol=1e-12
    )
