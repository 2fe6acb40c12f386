"""Softmax gates over experts with a fixed open/closed mask per task."""

import keras
import numpy as np
from keras import ops

from mmoeex_tf._checks import check_integer
from mmoeex_tf.layers.assignment import check_gate_mask
from mmoeex_tf.layers.batched_ops import shared_input_dense


def masked_softmax(logits, mask):
    """Softmax over the last axis where `mask` is true; exactly 0 elsewhere.

    Written out (shift by the maximum, exponentiate, divide by the sum) rather
    than with `tf.nn.softmax`, whose CPU kernel returns 0.99999994 for a
    single open expert: here one open expert gets exactly 1, a closed one
    exactly 0 and its logit exactly zero gradient.

    Args:
        logits: `(..., experts)` gate logits.
        mask: Boolean array broadcastable to `logits`.

    Returns:
        The gate weights, shaped like `logits`.
    """
    logits = ops.where(mask, logits, float("-inf"))
    shifted = logits - ops.stop_gradient(ops.max(logits, axis=-1, keepdims=True))
    exponentials = ops.exp(shifted)
    return exponentials / ops.sum(exponentials, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class MaskedSoftmaxGate(keras.layers.Layer):
    """One softmax gate per task over the experts, some experts closed.

    Each task t computes logits `x @ W[:, t, :] + b[t]` over the E experts
    and takes their softmax over the experts open to it. With
    `projection_units=P`, the input first goes through one linear map `x @ V`
    to P features shared by all gates, and each gate's kernel is `(P, E)`:
    the logits `x @ V @ W[:, t, :] + b[t]`, a low-rank gate kernel whose size
    does not grow with tasks x features (a bias on the projection would add
    nothing the gate biases cannot). With `projection_units=0` the gates read
    nothing of the input: each task's weights are the softmax of its bias
    alone, one learned mixture per task for every example (the same for
    every row and step; no kernel). A closed expert gets
    a weight of exactly 0, and the gate weights feeding it get a gradient of
    exactly 0, because its logit is replaced by `-inf` before the softmax
    (which subtracts the largest open logit, so large logits do not overflow).

    All tasks' gates are one batched computation. When every task has
    exactly one open expert (a shared-bottom network, single-task networks)
    each weight is exactly 1 or 0 whatever the logits, so such a gate
    (`constant`) has no weights and returns the mask: no `(features, tasks,
    experts)` kernel for hundreds of single-task networks.

    Args:
        mask: 0/1 array of shape `(tasks, experts)`, or `(experts,)` for a
            single gate; 1 = open.
        use_bias: Whether the gates have a bias.
        kernel_initializer: Initializer of the gate kernels (and projection).
        projection_units: Width P of a projection of the input shared by all
            gates; `None` gives every gate its own weights on the input, 0
            gates that do not read the input (biases only).
        **kwargs: Base layer keyword arguments such as `name` and `dtype`.

    Input shape:
        `(..., features)`; for a sequence, the gate is applied at every step.

    Output shape:
        `(..., tasks, experts)`, or `(..., experts)` for a 1-D mask. Each row
        sums to 1 over the open experts.
    """

    def __init__(
        self,
        mask,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        projection_units=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        mask = np.asarray(mask)
        self.single_gate = mask.ndim == 1
        if self.single_gate:
            mask = mask[None]
        self.mask = check_gate_mask(mask, name="MaskedSoftmaxGate mask").astype(bool)
        self.num_tasks, self.num_experts = mask.shape
        self.constant = bool((self.mask.sum(axis=-1) == 1).all())
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.projection_units = check_integer(
            projection_units,
            "MaskedSoftmaxGate projection_units",
            minimum=0,
            none_means="no projection",
        )

    @property
    def task_weights(self):
        """The weights made of one slice per task, each read by its task's gate only.

        The kernels `(features, tasks, experts)` and the biases; not the
        projection, which every gate reads. Empty for a constant gate.
        """
        if self.constant:
            return []
        kernels = [] if self.projection_units == 0 else [self.kernel]
        return kernels + ([self.bias] if self.use_bias else [])

    def build(self, input_shape):
        if self.constant:
            return
        if self.projection_units != 0:
            features = input_shape[-1]
            if self.projection_units is not None:
                self.projection = self.add_weight(
                    name="projection",
                    shape=(features, self.projection_units),
                    initializer=self.kernel_initializer,
                )
                features = self.projection_units
            self.kernel = self.add_weight(
                name="kernel",
                shape=(features, self.num_tasks, self.num_experts),
                initializer=self.kernel_initializer,
            )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.num_tasks, self.num_experts),
                initializer="zeros",
            )

    def call(self, inputs):
        if self.constant:
            weights = self._for_every_row(
                ops.cast(self.mask, self.compute_dtype), inputs
            )
        elif self.projection_units == 0:
            if self.use_bias:
                logits = self.bias
            else:  # every open expert weighs the same
                logits = ops.zeros(self.mask.shape, self.compute_dtype)
            weights = self._for_every_row(masked_softmax(logits, self.mask), inputs)
        else:
            if self.projection_units is not None:
                inputs = ops.matmul(inputs, self.projection)
            logits = shared_input_dense(inputs, self.kernel)
            if self.use_bias:
                logits = logits + self.bias
            weights = masked_softmax(logits, self.mask)
        return weights[..., 0, :] if self.single_gate else weights

    def _for_every_row(self, weights, inputs):
        """`(tasks, experts)` weights, the same for every row (and step) of `inputs`."""
        shape = (*ops.shape(inputs)[:-1], self.num_tasks, self.num_experts)
        return ops.broadcast_to(weights, shape)

    def load_own_variables(self, store):
        """Loads the weights; a constant gate skips those of older saves."""
        if self.constant:
            return
        super().load_own_variables(store)

    def compute_output_shape(self, input_shape):
        tail = (self.num_experts,)
        if not self.single_gate:
            tail = (self.num_tasks,) + tail
        return tuple(input_shape[:-1]) + tail

    def get_config(self):
        mask = self.mask.astype(int)
        config = {
            "mask": (mask[0] if self.single_gate else mask).tolist(),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "projection_units": self.projection_units,
        }
        return {**super().get_config(), **config}
