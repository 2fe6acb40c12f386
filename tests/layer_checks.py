"""The checks every layer of the package passes, after keras' `run_layer_test`.

One call checks a layer class on one input: config round trip (and JSON),
weight counts, output shape and dtype, symbolic call and
`compute_output_shape`, a rebuilt copy with the same weights giving the same
outputs, a training step that changes every trainable weight, and a saved and
reloaded model predicting the same.
"""

import json

import keras
import numpy as np
import tensorflow as tf


def check_layer(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights,
    expected_num_non_trainable_weights=0,
    expected_num_params=None,
    tmp_path=None,
):
    """Runs the checklist; returns the built layer.

    Args:
        layer_cls: The layer class.
        init_kwargs: Its constructor arguments.
        input_data: A float32 array to call it on.
        expected_output_shape: Shape of the output on `input_data`.
        expected_num_trainable_weights: Number of trainable weights once built.
        expected_num_non_trainable_weights: Number of non-trainable weights.
        expected_num_params: Number of parameters (`count_params`), if given.
        tmp_path: A folder to save a model in; the save check is skipped
            without it.
    """
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    for key, value in init_kwargs.items():
        if key in config and not isinstance(value, (dict, keras.layers.Layer)):
            assert config[key] == _plain(value), key
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert keras.saving.deserialize_keras_object(serialized).get_config() == config

    symbolic = layer(keras.KerasTensor((None,) + input_data.shape[1:]))
    assert tuple(symbolic.shape) == (None,) + tuple(expected_output_shape[1:])
    assert tuple(layer.compute_output_shape(input_data.shape)) == tuple(
        expected_output_shape
    )

    outputs = layer(input_data)
    assert tuple(outputs.shape) == tuple(expected_output_shape)
    assert outputs.dtype == layer.compute_dtype
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    if expected_num_params is not None:
        assert layer.count_params() == expected_num_params
    assert all(w.dtype == layer.variable_dtype for w in layer.weights)

    clone(input_data)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(input_data)), np.asarray(outputs))

    _check_training_step(layer, input_data)
    if tmp_path is not None:
        _check_save_and_load(layer, input_data, tmp_path)
    return layer


def _plain(value):
    """A constructor value as it appears in a JSON config."""
    if isinstance(value, tuple):
        return list(value)
    return value


def _check_training_step(layer, input_data):
    before = [np.array(w) for w in layer.trainable_weights]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(input_data, training=True)))
    gradients = tape.gradient(loss, layer.trainable_weights)
    keras.optimizers.SGD(0.01).apply(gradients, layer.trainable_weights)
    for old, new in zip(before, layer.trainable_weights):
        assert not np.array_equal(old, np.asarray(new))


def _check_save_and_load(layer, input_data, tmp_path):
    inputs = keras.Input(input_data.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    expected = model.predict(input_data, verbose=0)
    path = tmp_path / f"{layer.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(input_data, verbose=0), expected)
    assert loaded.layers[-1].get_config() == layer.get_config()
