"""Small helpers shared by the tests."""

import keras
import numpy as np


def assert_config_round_trip(layer, inputs, **call_kwargs):
    """Rebuilds `layer` from its config, copies the weights, compares outputs."""
    expected = layer(inputs, **call_kwargs)
    clone = layer.__class__.from_config(layer.get_config())
    clone(inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    actual = clone(inputs, **call_kwargs)
    for want, got in zip(keras.tree.flatten(expected), keras.tree.flatten(actual)):
        np.testing.assert_array_equal(np.asarray(want), np.asarray(got))
    assert clone.get_config() == layer.get_config()
    return clone


@keras.saving.register_keras_serializable(package="tests")
class ScaledDense(keras.layers.Layer):
    """A user's own expert layer: a dense layer times a fixed scale."""

    def __init__(self, units, scale=2.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale
        self.dense = keras.layers.Dense(units)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        return self.scale * self.dense(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}
