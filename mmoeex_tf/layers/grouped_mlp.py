"""A stack of grouped dense layers: the MLP of `DenseExperts` and `TaskTowers`.

G small MLPs (one per expert or per task) of the same widths run as one
batched matmul per layer, each followed by the activation and the dropout.
The weights belong to the layer that calls `add_grouped_mlp_weights`, in the
order `kernel_0, bias_0, kernel_1, bias_1, ...`.
"""

import keras

from mmoeex_tf.layers.batched_ops import grouped_dense, shared_input_dense


def dropout_layer(owner, rate, seed):
    """The dropout applied after every layer of `owner`, `None` at rate 0.

    Args:
        owner: The layer that calls the dropout; it passes on its dtype policy.
        rate: The dropout rate.
        seed: Seed of the dropout.
    """
    if not rate:
        return None
    return keras.layers.Dropout(rate, seed=seed, dtype=owner.dtype_policy)


def add_grouped_mlp_weights(
    layer,
    input_width,
    groups,
    units,
    kernel_initializer,
    use_bias=True,
    shared_input=False,
):
    """Creates the kernels and biases of G MLPs as weights of `layer`.

    Args:
        layer: The Keras layer that owns the weights (`add_weight` is called
            on it, so they take its dtype policy).
        input_width: Size of the input features.
        groups: Number of MLPs G.
        units: Width of each layer, a list (may be empty: no weights).
        kernel_initializer: Initializer of the kernels.
        use_bias: Whether the layers have biases (initialised to zeros).
        shared_input: Whether the first layer reads one input shared by all
            groups, `(..., features)`, rather than one input per group,
            `(..., groups, features)`.

    Returns:
        `(kernels, biases)`: lists of one weight per layer (`biases` empty
        without biases). Kernels are `(groups, in, out)`, except a shared
        input's first kernel, `(in, groups, out)`; biases are `(groups, out)`.
    """
    kernels, biases = [], []
    width = input_width
    for index, size in enumerate(units):
        shape = (groups, width, size)
        if shared_input and index == 0:
            shape = (width, groups, size)
        kernels.append(
            layer.add_weight(
                name=f"kernel_{index}", shape=shape, initializer=kernel_initializer
            )
        )
        if use_bias:
            biases.append(
                layer.add_weight(
                    name=f"bias_{index}", shape=(groups, size), initializer="zeros"
                )
            )
        width = size
    return kernels, biases


def grouped_mlp(
    inputs,
    kernels,
    biases,
    activation,
    dropout=None,
    training=None,
    shared_input=False,
):
    """Applies the MLPs made by `add_grouped_mlp_weights`.

    Args:
        inputs: `(..., features)` for a shared input, else
            `(..., groups, features)`.
        kernels: The kernels, one per layer.
        biases: The biases, one per layer, or an empty list.
        activation: Activation after every layer.
        dropout: A dropout layer applied after every activation, or `None`.
        training: Passed to the dropout layer.
        shared_input: As given to `add_grouped_mlp_weights`.

    Returns:
        `(..., groups, units[-1])`; the inputs unchanged if there are no
        layers.
    """
    hidden = inputs
    for index, kernel in enumerate(kernels):
        if shared_input and index == 0:
            hidden = shared_input_dense(hidden, kernel)
        else:
            hidden = grouped_dense(hidden, kernel)
        if biases:
            hidden = hidden + biases[index]
        hidden = activation(hidden)
        if dropout is not None:
            hidden = dropout(hidden, training=training)
    return hidden
