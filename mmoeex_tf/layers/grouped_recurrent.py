"""Recurrent experts: their Keras layers, and one recurrence for all of them.

E Keras `LSTM`, `GRU` (`reset_after=True`) or `SimpleRNN` layers of the same
width that read the same input run together. Their weights become one
block-diagonal matrix per kernel, columns ordered gate by gate and, within a
gate, expert by expert; the input projections of all experts and steps are
one matmul before the loop over the steps, and every step does one matmul
of the `(batch, experts * units)` state with the block-diagonal recurrent
kernel. The maths are those of the Keras cells, step for step; the weights
stay the variables of the E Keras layers (so files saved with separate
layers load unchanged). The loop is a `tf.scan`, which TensorFlow
differentiates to any order.
"""

import keras
import tensorflow as tf
from keras import ops

from mmoeex_tf.errors import MMoEExError

RECURRENT_CELLS = {
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
    "simple_rnn": keras.layers.SimpleRNN,
}
#: Gate blocks of a cell's kernels, per cell class.
_GATES = {"LSTMCell": 4, "GRUCell": 3, "SimpleRNNCell": 1}


def expert_layers(owner):
    """The Keras layers of recurrent experts, one chain per expert.

    Args:
        owner: The `RecurrentExperts`; its `num_experts`, `units`, `cell`,
            `dropout`, `seed`, `use_cudnn` and dtype policy shape the layers.

    Returns:
        `num_experts` lists of `len(units)` layers returning sequences.
    """
    options = {} if owner.cell == "simple_rnn" else {"use_cudnn": owner.use_cudnn}
    return [
        [
            RECURRENT_CELLS[owner.cell](
                width,
                return_sequences=True,
                dropout=owner.dropout,
                seed=owner.seed,
                dtype=owner.dtype_policy,
                name=f"expert_{expert}_{owner.cell}_{depth}",
                **options,
            )
            for depth, width in enumerate(owner.units)
        ]
        for expert in range(owner.num_experts)
    ]


def _stacked(cells, name):
    """Weight `name` of every cell, stacked on a leading expert axis."""
    return ops.stack([getattr(cell, name).value for cell in cells])


def _gate_major(weights, gates):
    """`(experts, ..., gates * units)` -> `(..., gates * experts * units)`."""
    experts, units = weights.shape[0], weights.shape[-1] // gates
    split = ops.reshape(weights, (experts, -1, gates, units))
    columns = ops.transpose(split, (1, 2, 0, 3))
    return ops.reshape(columns, (*weights.shape[1:-1], gates * experts * units))


def _block_diagonal(kernels, gates):
    """`(experts, in, gates * units)` -> `(experts * in, gates * experts * units)`.

    Expert e's rows meet only expert e's columns of every gate.
    """
    experts, width, units = kernels.shape[0], kernels.shape[1], kernels.shape[-1]
    split = ops.reshape(kernels, (experts, width, gates, units // gates))
    spread = ops.einsum("eiga,ef->eigfa", split, ops.eye(experts, dtype=split.dtype))
    return ops.reshape(spread, (experts * width, gates * experts * units // gates))


def _step_function(cell, recurrent, recurrent_bias):
    """`step(states, projected) -> states` of one cell class, all experts.

    States are `(h,)` or, for an LSTM, `(h, c)`, each `(batch, experts *
    units)`; `projected` is the step's input projection, bias included.
    """
    activation = cell.activation
    gate = getattr(cell, "recurrent_activation", None)  # none in a SimpleRNN
    units = recurrent.shape[0]  # experts * units: one gate's columns
    kind = type(cell).__name__
    if kind == "LSTMCell":

        def step(states, projected):
            h, c = states
            z = projected + ops.matmul(h, recurrent)
            i, f, g, o = ops.split(z, 4, axis=-1)
            c = gate(f) * c + gate(i) * activation(g)
            return gate(o) * activation(c), c

    elif kind == "GRUCell":

        def step(states, projected):
            (h,) = states
            inner = ops.matmul(h, recurrent)
            if recurrent_bias is not None:
                inner = inner + recurrent_bias
            # Both gates in one op: columns [update | reset | candidate].
            x_zr, x_h = ops.split(projected, [2 * units], axis=-1)
            r_zr, r_h = ops.split(inner, [2 * units], axis=-1)
            z, r = ops.split(gate(x_zr + r_zr), 2, axis=-1)
            candidate = activation(x_h + r * r_h)
            return (candidate + z * (h - candidate),)  # z h + (1 - z) candidate

    else:

        def step(states, projected):
            (h,) = states
            return (activation(projected + ops.matmul(h, recurrent)),)

    return step


def _recurrence(inputs, layers, keep, shared_input):
    """One depth: time-major inputs in, `(steps, batch, experts * units)` out."""
    cells = [layer.cell for layer in layers]
    kind = type(cells[0]).__name__
    if kind == "GRUCell" and not cells[0].reset_after:
        raise MMoEExError("Grouped GRU experts need reset_after=True.")
    gates = _GATES[kind]
    kernels = _stacked(cells, "kernel")
    if shared_input:
        kernel = _gate_major(kernels, gates)
    else:
        kernel = _block_diagonal(kernels, gates)
    projected = ops.matmul(inputs, kernel)
    recurrent_bias = None
    if cells[0].use_bias:
        biases = _stacked(cells, "bias")
        if kind == "GRUCell":  # the (input, recurrent) bias pair
            recurrent_bias = _gate_major(biases[:, 1], gates)
            biases = biases[:, 0]
        projected = projected + _gate_major(biases, gates)
    recurrent = _block_diagonal(_stacked(cells, "recurrent_kernel"), gates)
    step = _step_function(cells[0], recurrent, recurrent_bias)
    zeros = ops.zeros_like(projected[0, :, : recurrent.shape[0]])
    initial = (zeros, zeros) if kind == "LSTMCell" else (zeros,)
    if keep is None:
        return tf.scan(step, projected, initializer=initial)[0]

    def masked_step(previous, elements):
        new = step(previous, elements[0])
        return tuple(ops.where(elements[1], n, p) for n, p in zip(new, previous))

    return tf.scan(masked_step, (projected, keep), initializer=initial)[0]


def grouped_recurrent_stack(inputs, depths, mask=None, dropout=None):
    """Runs E chains of Keras recurrent layers as one recurrence per depth.

    Equal to stacking, on axis -2, the outputs of E chains of layers with
    `return_sequences=True`, each chain called on `inputs` with `mask`, up
    to the dropout masks drawn: masked steps keep the previous state and
    repeat the previous output, as Keras' `RNN` does.

    Args:
        inputs: `(batch, steps, features)`.
        depths: One sequence per depth of the E built layers at that depth
            (`LSTM`, `GRU` with `reset_after=True` or `SimpleRNN`; one class
            and width per depth).
        mask: `None`, or a boolean `(batch, steps)`: which steps to read.
        dropout: `None`, or a dropout layer: each depth's inputs are then
            multiplied by its output on ones (called with `training=True`),
            one mask per example, expert and feature for all steps, as the
            input dropout of Keras' layers (each expert its own mask).

    Returns:
        `(batch, steps, experts, units)`: every step's hidden state of the
        last depth.
    """
    hidden = ops.transpose(inputs, (1, 0, 2))
    keep = None if mask is None else ops.transpose(ops.cast(mask, "bool"))[..., None]
    experts = len(depths[0])
    for index, layers in enumerate(depths):
        shared_input = index == 0
        if dropout is not None:
            if shared_input:
                steps, batch, width = ops.shape(hidden)
                spread = ops.broadcast_to(
                    hidden[:, :, None], (steps, batch, experts, width)
                )
                hidden = ops.reshape(spread, (steps, batch, experts * width))
                shared_input = False
            hidden = hidden * dropout(ops.ones_like(hidden[:1]), training=True)
        hidden = _recurrence(hidden, layers, keep, shared_input)
    steps, batch = ops.shape(hidden)[0], ops.shape(hidden)[1]
    units = hidden.shape[-1] // experts
    hidden = ops.reshape(hidden, (steps, batch, experts, units))
    return ops.transpose(hidden, (1, 0, 2, 3))
