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
