"""A non-default dtype policy reaches every sub-layer and weight."""

import keras
import numpy as np
import pytest

import mmoeex_tf as mt

RNG = np.random.default_rng(0)
TASKS = [mt.Task("flag", "binary"), mt.Task("value", "regression")]


@pytest.fixture
def mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")


def _data(shape):
    x = RNG.normal(size=shape).astype("float32")
    flat = x.reshape(len(x), -1)
    y = {"flag": (flat[:, 0] > 0).astype("float32"), "value": flat[:, 1]}
    return x, y


def _is_seed_state(variable):
    # Keras' recurrent dropout keeps an integer random state; it is not a weight.
    return "seed_generator_state" in variable.path


@pytest.mark.parametrize(
    "make_experts, shape",
    [
        (lambda: mt.DenseExperts(4, [8, 4], dropout=0.1, seed=1), (128, 6)),
        (lambda: mt.RecurrentExperts(2, 4, cell="gru", use_cudnn=False), (64, 5, 3)),
    ],
    ids=["dense", "gru"],
)
def test_mixed_bfloat16_model_trains(mixed_bfloat16, make_experts, shape):
    x, y = _data(shape)
    model = mt.MMoEExModel(TASKS, make_experts(), alpha=0.5, tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)

    weights = [v for v in model.variables if not _is_seed_state(v)]
    assert weights and all(v.dtype == "float32" for v in weights)
    layers = list(model._flatten_layers(include_self=True))
    assert len(layers) > 5
    for layer in layers:
        assert layer.dtype_policy.name == "mixed_bfloat16", layer.name
        assert layer.compute_dtype == "bfloat16", layer.name
    mixtures, gates = model.mixture(x[:4])
    assert mixtures.dtype == gates.dtype == "bfloat16"

    losses = history.history["loss"]
    assert losses[1] < losses[0]
    outputs = model.predict(x, verbose=0)
    for name, values in outputs.items():
        assert values.dtype == np.float32, name
        assert np.isfinite(values).all(), name


@pytest.mark.parametrize(
    "layer, x",
    [
        (mt.DenseExperts(2, 3, dropout=0.5, seed=1), np.ones((2, 4), "float32")),
        (mt.RecurrentExperts(2, [3, 2], cell="lstm"), np.ones((2, 5, 4), "float32")),
        (mt.Conv1DExperts(2, [3, 2], dropout=0.5), np.ones((2, 5, 4), "float32")),
        (mt.LayerExperts(keras.layers.Dense(3), 2), np.ones((2, 4), "float32")),
        (mt.TaskTowers(2, [3], dropout=0.5), np.ones((2, 2, 4), "float32")),
    ],
    ids=["dense", "lstm", "conv1d", "layer", "towers"],
)
def test_a_layer_policy_reaches_its_sub_layers(layer, x):
    # Built under the default float32 policy, given mixed_bfloat16 by config.
    config = {**layer.get_config(), "dtype": "mixed_bfloat16"}
    layer = layer.__class__.from_config(config)
    outputs = layer(x)
    assert outputs.dtype == "bfloat16"
    for sub_layer in layer._flatten_layers(include_self=False):
        assert sub_layer.dtype_policy.name == "mixed_bfloat16", sub_layer.name
    assert all(v.dtype == "float32" for v in layer.weights if not _is_seed_state(v))


def test_a_model_dtype_reaches_the_layers_it_creates():
    # The global policy stays float32; only the model is given bfloat16.
    model = mt.MMoEExModel(
        [mt.Task("a", "binary"), mt.Task("b", "regression")], dtype="mixed_bfloat16"
    )
    x = np.ones((3, 4), "float32")
    _, gates = model(x, return_gates=True)
    for layer in (model.mixture, model.mixture.experts, model.towers, model.heads):
        assert layer.dtype_policy.name == "mixed_bfloat16", layer.name
        assert layer.compute_dtype == "bfloat16", layer.name
    assert gates.dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"
