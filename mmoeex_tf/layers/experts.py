"""Expert stacks: E experts applied to the same input, outputs stacked.

Every stack maps `(..., features)` to `(..., experts, units)`, so the mixture
layer can weight experts of any kind the same way.
"""

import keras
from keras import ops

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.batched_ops import grouped_dense, shared_input_dense

RECURRENT_CELLS = {
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
    "simple_rnn": keras.layers.SimpleRNN,
}


def _as_units(units, argument="units"):
    units = [units] if isinstance(units, int) else list(units)
    if not units or any(int(u) != u or u < 1 for u in units):
        raise MMoEExError(
            f"{argument} must be a positive integer or a non-empty list of "
            f"them, got {units!r}."
        )
    return [int(u) for u in units]


def _check_num_experts(num_experts):
    if int(num_experts) != num_experts or num_experts < 1:
        raise MMoEExError(
            f"num_experts must be a positive integer, got {num_experts!r}."
        )
    return int(num_experts)


class ExpertStack(keras.layers.Layer):
    """Base class of the expert stacks.

    Subclasses set `num_experts` and `units` (the size of one expert's
    output) and return `(..., num_experts, units)` from `call`.

    Args:
        num_experts: Number of experts.
        **kwargs: Base layer keyword arguments.
    """

    #: Whether the stack needs `(batch, steps, features)` inputs.
    requires_sequence = False

    def __init__(self, num_experts, **kwargs):
        super().__init__(**kwargs)
        self.num_experts = _check_num_experts(num_experts)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_experts, self.units)

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
        self.layer_units = _as_units(units)
        self.units = self.layer_units[-1]
        self.activation = keras.activations.get(activation)
        if not 0.0 <= dropout < 1.0:
            raise MMoEExError(f"dropout must be in [0, 1), got {dropout!r}.")
        self.dropout_rate = dropout
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.dropout = keras.layers.Dropout(dropout, seed=seed) if dropout else None

    def build(self, input_shape):
        width = input_shape[-1]
        self.kernels, self.biases = [], []
        for index, units in enumerate(self.layer_units):
            shape = (width, self.num_experts, units)
            if index:
                shape = (self.num_experts, width, units)
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{index}",
                    shape=shape,
                    initializer=self.kernel_initializer,
                )
            )
            if self.use_bias:
                self.biases.append(
                    self.add_weight(
                        name=f"bias_{index}",
                        shape=(self.num_experts, units),
                        initializer="zeros",
                    )
                )
            width = units

    def call(self, inputs, training=None):
        hidden = shared_input_dense(inputs, self.kernels[0])
        for index, kernel in enumerate(self.kernels):
            if index:
                hidden = grouped_dense(hidden, kernel)
            if self.use_bias:
                hidden = hidden + self.biases[index]
            hidden = self.activation(hidden)
            if self.dropout is not None:
                hidden = self.dropout(hidden, training=training)
        return hidden

    def get_config(self):
        config = {
            "units": self.layer_units,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout_rate,
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
        dropout: Input dropout of the recurrent layers.
        use_cudnn: Passed to Keras' LSTM/GRU: `"auto"` uses the fused cuDNN
            kernel on GPU when it can, `False` never does. cuDNN kernels have
            no second derivative, so second-order MAML-MTL needs `False` on
            GPU.
        seed: Seed of the dropout.
        **kwargs: Base layer keyword arguments.

    Input shape:
        `(batch, steps, features)`.

    Output shape:
        `(batch, steps, experts, units)`: every step's hidden state.
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
        **kwargs,
    ):
        super().__init__(num_experts, **kwargs)
        if cell not in RECURRENT_CELLS:
            raise MMoEExError(
                f"cell must be one of {sorted(RECURRENT_CELLS)}, got {cell!r}."
            )
        self.layer_units = _as_units(units)
        self.units = self.layer_units[-1]
        self.cell = cell
        self.dropout = dropout
        self.use_cudnn = use_cudnn
        self.seed = seed
        self.experts = [
            [
                self._recurrent_layer(units, e, i)
                for i, units in enumerate(self.layer_units)
            ]
            for e in range(self.num_experts)
        ]

    def _recurrent_layer(self, units, expert, depth):
        options = {"return_sequences": True, "dropout": self.dropout, "seed": self.seed}
        if self.cell != "simple_rnn":
            options["use_cudnn"] = self.use_cudnn
        return RECURRENT_CELLS[self.cell](
            units, name=f"expert_{expert}_{self.cell}_{depth}", **options
        )

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise MMoEExError(
                "RecurrentExperts needs inputs shaped (batch, steps, features), "
                f"got {tuple(input_shape)}."
            )
        for expert in self.experts:
            shape = tuple(input_shape)
            for layer in expert:
                if not layer.built:
                    layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        outputs = []
        for expert in self.experts:
            hidden = inputs
            for layer in expert:
                hidden = layer(hidden, training=training)
            outputs.append(hidden)
        return ops.stack(outputs, axis=-2)

    def get_config(self):
        config = {
            "units": self.layer_units,
            "cell": self.cell,
            "dropout": self.dropout,
            "use_cudnn": self.use_cudnn,
            "seed": self.seed,
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
        dropout: Dropout rate after every layer.
        seed: Seed of the dropout.
        **kwargs: Base layer keyword arguments.

    Input shape:
        `(batch, steps, channels)`, for example one-hot DNA.

    Output shape:
        `(batch, steps, experts, filters)`.
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
        if padding not in ("same", "causal"):
            raise MMoEExError(f"padding must be 'same' or 'causal', got {padding!r}.")
        self.layer_filters = _as_units(filters, "filters")
        self.units = self.layer_filters[-1]
        self.kernel_size = kernel_size
        self.activation = activation
        self.padding = padding
        self.dropout_rate = dropout
        self.seed = seed
        self.convolutions = [
            keras.layers.Conv1D(
                self.num_experts * width,
                kernel_size,
                padding=padding,
                activation=activation,
                groups=1 if index == 0 else self.num_experts,
                name=f"conv_{index}",
            )
            for index, width in enumerate(self.layer_filters)
        ]
        self.dropout = keras.layers.Dropout(dropout, seed=seed) if dropout else None

    def build(self, input_shape):
        shape = tuple(input_shape)
        for convolution in self.convolutions:
            if not convolution.built:
                convolution.build(shape)
            shape = convolution.compute_output_shape(shape)

    def call(self, inputs, training=None):
        hidden = inputs
        for convolution in self.convolutions:
            hidden = convolution(hidden)
            if self.dropout is not None:
                hidden = self.dropout(hidden, training=training)
        batch, steps = ops.shape(hidden)[0], ops.shape(hidden)[1]
        return ops.reshape(hidden, (batch, steps, self.num_experts, self.units))

    def get_config(self):
        config = {
            "filters": self.layer_filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "padding": self.padding,
            "dropout": self.dropout_rate,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class LayerExperts(ExpertStack):
    """E independent copies of any Keras layer, used as experts.

    The template is cloned from its config, so every expert has its own
    weights. To reload a model whose experts are a custom layer class,
    register that class with `keras.saving.register_keras_serializable`.

    Args:
        expert: The template: a Keras layer (only its config is used), a
            serialized layer config, or a callable with no arguments that
            returns a layer.
        num_experts: Number of experts.
        **kwargs: Base layer keyword arguments.

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
        config = expert.get_config()
        self.experts = []
        for index in range(self.num_experts):
            clone = expert.__class__.from_config({**config, "name": f"expert_{index}"})
            self.experts.append(clone)
        self.units = None

    def build(self, input_shape):
        for expert in self.experts:
            if not expert.built:
                expert.build(tuple(input_shape))
        self.units = self.experts[0].compute_output_shape(tuple(input_shape))[-1]

    def call(self, inputs, training=None):
        outputs = [expert(inputs, training=training) for expert in self.experts]
        return ops.stack(outputs, axis=-2)

    def get_config(self):
        return {**super().get_config(), "expert": self.template}
