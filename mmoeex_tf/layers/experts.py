"""Expert stacks: E experts applied to the same input, outputs stacked.

Every stack maps `(..., features)` to `(..., experts, output_units)`, so the
mixture layer can weight experts of any kind the same way.
"""

import keras
from keras import ops

from mmoeex_tf._checks import (
    check_choice,
    check_positive_integer,
    check_rate,
    check_seed,
    check_units,
)
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.grouped_mlp import (
    add_grouped_mlp_weights,
    dropout_layer,
    grouped_mlp,
)
from mmoeex_tf.layers.grouped_recurrent import (
    RECURRENT_CELLS,
    expert_layers,
    grouped_recurrent_stack,
)

#: What a `None` seed means, in error messages.
_UNSEEDED = "unseeded"


def _build_in_sequence(layers, input_shape):
    """Builds layers that are applied one after the other to `input_shape`."""
    shape = tuple(input_shape)
    for layer in layers:
        if not layer.built:
            layer.build(shape)
        shape = layer.compute_output_shape(shape)


class ExpertStack(keras.layers.Layer):
    """Base class of the expert stacks.

    Subclasses set `output_units` (the size of one expert's output, at the
    latest in `build`) and return `(..., num_experts, output_units)` from
    `call`. Sub-layers they create take the stack's dtype policy.

    Args:
        num_experts: Number of experts.
        **kwargs: Base layer keyword arguments.
    """

    #: Whether the stack needs `(batch, steps, features)` inputs.
    requires_sequence = False

    def __init__(self, num_experts, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.num_experts = check_positive_integer(num_experts, f"{owner} num_experts")
        self.output_units = None

    def adapt(self, inputs):
        """Learns statistics of the train inputs, for stacks that have some.

        `MMoEExModel.adapt(..., x=inputs)` calls it; this base stack learns
        nothing (`SummaryExperts` places its bins).

        Args:
            inputs: The train inputs.
        """

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_experts, self.output_units)

    def get_config(self):
        return {**super().get_config(), "num_experts": self.num_experts}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class DenseExperts(ExpertStack):
    """E multi-layer perceptrons evaluated as one batched computation.

    The first layer holds all experts' kernels in one `(features, experts,
    units)` tensor and runs as one matmul; later layers hold `(experts, in,
    out)` kernels and run as one batched matmul: no Python loop over experts.
    Works on `(batch, features)` and on sequences `(batch, steps, features)`
    (applied at every step).

    Args:
        num_experts: Number of experts.
        units: Width of each expert layer, an int or a list (one per layer).
        activation: Activation after every layer.
        dropout: Dropout rate after every layer, in [0, 1).
        use_bias: Whether the layers have biases.
        kernel_initializer: Initializer of the kernels.
        seed: Seed of the dropout.
        **kwargs: Base layer keyword arguments.

    Output shape:
        `(..., experts, units[-1])`.
    """

    def __init__(
        self,
        num_experts,
        units,
        activation="relu",
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        seed=None,
        **kwargs,
    ):
        super().__init__(num_experts, **kwargs)
        owner = type(self).__name__
        self.units = check_units(units, f"{owner} units")
        self.output_units = self.units[-1]
        self.activation = keras.activations.get(activation)
        self.dropout = check_rate(dropout, f"{owner} dropout")
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = check_seed(seed, f"{owner} seed", none_means=_UNSEEDED)
        self._dropout_layer = dropout_layer(self, self.dropout, self.seed)

    def build(self, input_shape):
        self.kernels, self.biases = add_grouped_mlp_weights(
            self,
            input_shape[-1],
            self.num_experts,
            self.units,
            self.kernel_initializer,
            use_bias=self.use_bias,
            shared_input=True,
        )

    def call(self, inputs, training=None):
        return grouped_mlp(
            inputs,
            self.kernels,
            self.biases,
            self.activation,
            dropout=self._dropout_layer,
            training=training,
            shared_input=True,
        )

    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class RecurrentExperts(ExpertStack):
    """E recurrent networks (LSTM, GRU or SimpleRNN), sequences in and out.

    Args:
        num_experts: Number of experts.
        units: Hidden size of each expert's recurrent layer(s), an int or a
            list (stacked layers).
        cell: `"lstm"`, `"gru"` or `"simple_rnn"`.
        dropout: Input dropout of the recurrent layers, in [0, 1).
        use_cudnn: Passed to Keras' LSTM/GRU, used with `grouped=False`:
            `"auto"` uses the fused cuDNN kernel on GPU when it can, `False`
            never does. cuDNN kernels have no second derivative, so
            second-order MAML-MTL needs `False` on GPU.
        seed: Seed of the dropout.
        grouped: `True` runs the E experts of each depth as one recurrence
            (`grouped_recurrent`), `False` as E Keras layers (cuDNN-eligible),
            with the same maths and weights.
        **kwargs: Base layer keyword arguments.

    Attributes:
        experts: The recurrent layers, one list (of `len(units)` stacked
            layers) per expert; they hold the weights in either mode.

    Input shape:
        `(batch, steps, features)`.

    Output shape:
        `(batch, steps, experts, units[-1])`: every step's hidden state.
    """

    requires_sequence = True

    def __init__(
        self,
        num_experts,
        units,
        cell="lstm",
        dropout=0.0,
        use_cudnn="auto",
        seed=None,
        grouped=True,
        **kwargs,
    ):
        super().__init__(num_experts, **kwargs)
        owner = type(self).__name__
        self.cell = check_choice(cell, f"{owner} cell", RECURRENT_CELLS)
        self.grouped = check_choice(grouped, f"{owner} grouped", (True, False))
        self.units = check_units(units, f"{owner} units")
        self.output_units = self.units[-1]
        self.dropout = check_rate(dropout, f"{owner} dropout")
        self.use_cudnn = check_choice(
            use_cudnn, f"{owner} use_cudnn", ("auto", True, False)
        )
        self.seed = check_seed(seed, f"{owner} seed", none_means=_UNSEEDED)
        # The attribute name `experts` is where saved weights are found.
        self.experts = expert_layers(self)
        self._dropout_layer = dropout_layer(self, self.dropout, self.seed)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise MMoEExError(
                "RecurrentExperts needs inputs shaped (batch, steps, features), "
                f"got {tuple(input_shape)}."
            )
        for expert in self.experts:
            _build_in_sequence(expert, input_shape)

    def call(self, inputs, training=None, mask=None):
        if self.grouped:
            dropout = self._dropout_layer if training else None
            depths = list(zip(*self.experts))
            return grouped_recurrent_stack(inputs, depths, mask, dropout)
        outputs = []
        for expert in self.experts:
            hidden = inputs
            for layer in expert:
                hidden = layer(hidden, mask=mask, training=training)
            outputs.append(hidden)
        return ops.stack(outputs, axis=-2)

    def get_config(self):
        config = {
            "units": self.units,
            "cell": self.cell,
            "dropout": self.dropout,
            "use_cudnn": self.use_cudnn,
            "seed": self.seed,
            "grouped": self.grouped,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class Conv1DExperts(ExpertStack):
    """E one-dimensional convolutional networks as grouped convolutions.

    The first layer is one convolution with `experts * filters` output
    channels; later layers are grouped convolutions (`groups=experts`), so
    each expert only sees its own channels. All experts run in one op per
    layer.

    Args:
        num_experts: Number of experts.
        filters: Channels per expert, an int or a list (one per layer).
        kernel_size: Width of the convolution windows.
        activation: Activation after every layer.
        padding: `"same"` keeps the number of steps; `"causal"` also does,
            without looking ahead.
        dropout: Dropout rate after every layer, in [0, 1).
        seed: Seed of the dropout.
        **kwargs: Base layer keyword arguments.

    Attributes:
        convolutions: The `Conv1D` layers, one per entry of `filters`.

    Input shape:
        `(batch, steps, channels)`, for example one-hot DNA.

    Output shape:
        `(batch, steps, experts, filters[-1])`.
    """

    requires_sequence = True

    def __init__(
        self,
        num_experts,
        filters,
        kernel_size=3,
        activation="relu",
        padding="same",
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(num_experts, **kwargs)
        owner = type(self).__name__
        self.filters = check_units(filters, f"{owner} filters")
        self.output_units = self.filters[-1]
        self.kernel_size = check_positive_integer(kernel_size, f"{owner} kernel_size")
        self.activation = keras.activations.get(activation)
        self.padding = check_choice(padding, f"{owner} padding", ("same", "causal"))
        self.dropout = check_rate(dropout, f"{owner} dropout")
        self.seed = check_seed(seed, f"{owner} seed", none_means=_UNSEEDED)
        # The attribute name `convolutions` is where saved weights are found.
        self.convolutions = [
            keras.layers.Conv1D(
                self.num_experts * width,
                self.kernel_size,
                padding=self.padding,
                activation=self.activation,
                groups=1 if index == 0 else self.num_experts,
                dtype=self.dtype_policy,
                name=f"conv_{index}",
            )
            for index, width in enumerate(self.filters)
        ]
        self._dropout_layer = dropout_layer(self, self.dropout, self.seed)

    def build(self, input_shape):
        _build_in_sequence(self.convolutions, input_shape)

    def call(self, inputs, training=None):
        hidden = inputs
        for convolution in self.convolutions:
            hidden = convolution(hidden)
            if self._dropout_layer is not None:
                hidden = self._dropout_layer(hidden, training=training)
        batch, steps = ops.shape(hidden)[0], ops.shape(hidden)[1]
        return ops.reshape(hidden, (batch, steps, self.num_experts, self.output_units))

    def get_config(self):
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": keras.activations.serialize(self.activation),
            "padding": self.padding,
            "dropout": self.dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class LayerExperts(ExpertStack):
    """E independent copies of any Keras layer, used as experts.

    The template is cloned from its config, so every expert has its own
    weights; the clones take the stack's dtype policy. To reload a model whose
    experts are a custom layer class, register that class with
    `keras.saving.register_keras_serializable`.

    Args:
        expert: The template: a Keras layer (only its config is used), a
            serialized layer config, or a callable with no arguments that
            returns a layer.
        num_experts: Number of experts.
        **kwargs: Base layer keyword arguments.

    Attributes:
        template: The template's serialized config.
        experts: The copies, one layer per expert.

    Output shape:
        `(..., experts, units)` where the template maps `(..., features)` to
        `(..., units)`.
    """

    def __init__(self, expert, num_experts, **kwargs):
        super().__init__(num_experts, **kwargs)
        if callable(expert) and not isinstance(expert, keras.layers.Layer):
            expert = expert()
        if isinstance(expert, dict):
            expert = keras.saving.deserialize_keras_object(expert)
        if not isinstance(expert, keras.layers.Layer):
            raise MMoEExError(
                "LayerExperts expert must be a Keras layer, a layer config or "
                f"a function returning a layer, got {type(expert).__name__}."
            )
        self.template = keras.saving.serialize_keras_object(expert)
        config = {**expert.get_config(), "dtype": self.dtype_policy}
        self.experts = [
            expert.__class__.from_config({**config, "name": f"expert_{index}"})
            for index in range(self.num_experts)
        ]

    def build(self, input_shape):
        for expert in self.experts:
            if not expert.built:
                expert.build(tuple(input_shape))
        shape = self.experts[0].compute_output_shape(tuple(input_shape))
        self.output_units = shape[-1]

    def call(self, inputs, training=None):
        outputs = [expert(inputs, training=training) for expert in self.experts]
        return ops.stack(outputs, axis=-2)

    def get_config(self):
        return {**super().get_config(), "expert": self.template}
