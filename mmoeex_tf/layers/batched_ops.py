"""Batched dense maps over groups (experts, tasks) as plain matrix products.

All leading axes (batch, steps) are flattened into one before the product.
TensorFlow's einsum with an ellipsis builds its gradient through a broadcast
of the full `(rows, groups, in, out)` product, which made one training step
of a census-sized model a hundred times slower than these matmuls.
"""

import tensorflow as tf

#: Up to this many groups, `grouped_dense` runs one matmul per group: a
#: batched matmul would need the batch moved to the group axis and back,
#: two transposes of the whole batch that cost more than the products at
#: the sizes of task towers and heads (benchmarks/RESULTS.md, "Grouped maps
#: of a few groups").
MAX_GROUPS_MULTIPLIED_APART = 8


def _flatten_leading(inputs, kept_axes):
    """Reshapes `(..., *kept)` to `(rows, *kept)`; returns it and `...`."""
    leading = tf.shape(inputs)[: tf.rank(inputs) - kept_axes]
    tail = inputs.shape[-kept_axes:]
    return tf.reshape(inputs, [-1, *tail]), leading


def shared_input_dense(inputs, kernel):
    """Applies G dense maps to the same input in one matmul.

    Args:
        inputs: `(..., features)`.
        kernel: `(features, groups, units)`.

    Returns:
        `(..., groups, units)`.
    """
    features, groups, units = kernel.shape
    rows, leading = _flatten_leading(inputs, 1)
    outputs = tf.matmul(rows, tf.reshape(kernel, [features, groups * units]))
    return tf.reshape(outputs, tf.concat([leading, [groups, units]], 0))


def grouped_dense(inputs, kernel):
    """Applies dense map g to group g of the input, all groups at once.

    A group axis of size 1 is one input shared by every group (it
    broadcasts): it is not copied G times but multiplied by all the kernels
    in one matmul. Otherwise up to `MAX_GROUPS_MULTIPLIED_APART` groups are
    multiplied one by one, and more in one batched matmul.

    Args:
        inputs: `(..., groups, features)` or `(..., 1, features)`.
        kernel: `(groups, features, units)`.

    Returns:
        `(..., groups, units)`.
    """
    if inputs.shape[-2] == 1 and kernel.shape[0] != 1:
        return shared_input_dense(inputs[..., 0, :], tf.transpose(kernel, [1, 0, 2]))
    rows, leading = _flatten_leading(inputs, 2)
    groups = kernel.shape[0]
    if groups <= MAX_GROUPS_MULTIPLIED_APART:
        # Unstacked, not sliced: the gradient of an unstack is one stack.
        pairs = zip(tf.unstack(rows, axis=1), tf.unstack(kernel))
        outputs = tf.stack([tf.matmul(group, weights) for group, weights in pairs], 1)
    else:
        batched = tf.matmul(tf.transpose(rows, [1, 0, 2]), kernel)
        outputs = tf.transpose(batched, [1, 0, 2])
    return tf.reshape(outputs, tf.concat([leading, tf.shape(outputs)[1:]], 0))


def mix(weights, values):
    """Weighted sums of values: `(..., T, E)` x `(..., E, U)` -> `(..., T, U)`."""
    flat_weights, leading = _flatten_leading(weights, 2)
    flat_values, _ = _flatten_leading(values, 2)
    outputs = tf.matmul(flat_weights, flat_values)
    return tf.reshape(outputs, tf.concat([leading, tf.shape(outputs)[1:]], 0))
