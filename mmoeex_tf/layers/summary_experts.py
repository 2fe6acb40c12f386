"""Summary experts: dense experts on the running summaries of a sequence.

A recurrent expert has to learn what to remember of 48 hours of a stay; the
boosted trees that beat it read that directly: the last, mean, minimum and
maximum of every input. `SummaryExperts` computes those summaries at every
step over the steps so far (causal: a per-step task at step `t` sees steps
`0..t` only, and a task pooled at the last step sees the whole sequence),
adds the step's position, encodes each summary piecewise-linearly on
train-quantile bins (`adapt`; Gorishniy et al., NeurIPS 2022) so that a
layer can fit thresholds as trees do, and applies `DenseExperts` at every
step.
"""

import keras
import numpy as np
import tensorflow as tf

from mmoeex_tf._checks import check_positive_integer
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.experts import DenseExperts
from mmoeex_tf.layers.piecewise_linear import edge_matrix, piecewise_linear_columns

#: The running summaries of every input, in this order, then the position.
SUMMARIES = ("value", "mean", "min", "max")
#: Sequences `adapt` samples to place the bins.
ADAPT_SEQUENCES = 4096


def _running_max(values):
    """Maximum over steps `0..t` at every step `t`, by doubling shifts."""
    steps = values.shape[1]
    shift = 1
    while shift < steps:
        earlier = tf.concat(
            [tf.repeat(values[:, :1], shift, axis=1), values[:, :-shift]], axis=1
        )
        values = tf.maximum(values, earlier)
        shift *= 2
    return values


def running_summaries(inputs):
    """Every input's running value, mean, minimum and maximum, and the position.

    Args:
        inputs: `(batch, steps, features)` with a known number of steps.

    Returns:
        `(batch, steps, 4 * features + 1)`: at step `t`, the inputs at `t`,
        their mean, minimum and maximum over steps `0..t` (feature-major
        within each summary, in `SUMMARIES` order), then `(t + 1) / steps`.
    """
    inputs = tf.convert_to_tensor(inputs)
    steps = inputs.shape[1]
    count = tf.cast(tf.range(1, steps + 1), inputs.dtype)[:, None]
    mean = tf.cumsum(inputs, axis=1) / count
    minimum = -_running_max(-inputs)
    maximum = _running_max(inputs)
    position = tf.broadcast_to(count / steps, tf.concat([tf.shape(inputs)[:2], [1]], 0))
    return tf.concat([inputs, mean, minimum, maximum, position], axis=-1)


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class SummaryExperts(DenseExperts):
    """Dense experts on running summaries of the inputs and their bins.

    At every step the experts read `running_summaries` of the inputs (the
    step's values, their running mean, minimum and maximum, and the step's
    position) and each summary's piecewise-linear encoding on `bins`
    quantile bins. The bins' edges are a non-trainable weight: `adapt`
    places them at the train inputs' quantiles (`MMoEExModel.adapt` with
    `x=` calls it); until then they split `[-2, 2]` evenly, the bulk of
    standardised inputs.

    Args:
        num_experts: Number of experts.
        units: Width of each expert layer, an int or a list.
        bins: Quantile bins per running summary.
        **kwargs: `DenseExperts` arguments (`activation`, `dropout`,
            `use_bias`, `kernel_initializer`, `seed`) and base layer
            keyword arguments.

    Input shape:
        `(batch, steps, features)`, `steps` known.

    Output shape:
        `(batch, steps, experts, units[-1])`.
    """

    requires_sequence = True

    def __init__(self, num_experts, units, bins=8, **kwargs):
        super().__init__(num_experts, units, **kwargs)
        self.bins = check_positive_integer(bins, f"{type(self).__name__} bins")

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None:
            raise MMoEExError(
                "SummaryExperts needs inputs (batch, steps, features) with a "
                f"known number of steps, got {tuple(input_shape)}."
            )
        summaries = len(SUMMARIES) * input_shape[-1] + 1
        even = np.linspace(-2.0, 2.0, self.bins + 1, dtype=np.float32)
        self.edges = self.add_weight(
            name="edges",
            shape=(summaries, self.bins + 1),
            initializer=keras.initializers.Constant(np.tile(even, (summaries, 1))),
            trainable=False,
        )
        super().build(tuple(input_shape[:-1]) + (summaries * (1 + self.bins),))

    def adapt(self, inputs, seed=0):
        """Places the bins at the quantiles of the train inputs' summaries.

        Args:
            inputs: Train inputs `(sequences, steps, features)`; at most
                `ADAPT_SEQUENCES` of them, drawn with `seed`, are used.
            seed: Seed of that draw.
        """
        inputs = np.asarray(inputs, np.float32)
        if not self.built:
            self.build((None, *inputs.shape[1:]))
        if len(inputs) > ADAPT_SEQUENCES:
            rows = np.random.default_rng(seed).choice(
                len(inputs), ADAPT_SEQUENCES, replace=False
            )
            inputs = inputs[np.sort(rows)]
        summaries = running_summaries(inputs).numpy()
        self.edges.assign(
            edge_matrix(summaries.reshape(-1, summaries.shape[-1]), self.bins)
        )

    def call(self, inputs, training=None):
        summaries = running_summaries(inputs)
        encoded = piecewise_linear_columns(
            summaries, tf.cast(self.edges, summaries.dtype)
        )
        features = tf.concat([summaries, encoded], axis=-1)
        return super().call(features, training=training)

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}
