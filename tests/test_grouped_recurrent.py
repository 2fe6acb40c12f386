"""Grouped recurrent experts: one recurrence computing E Keras cells exactly.

The fixtures `recurrent_experts_{gru,lstm}_v0.keras` are MMoEEx models with
`RecurrentExperts(3, [4, 2])` (GRU and LSTM, perturbed weights) saved before
experts were grouped, when every expert ran as its own Keras layer;
`recurrent_experts_v0.npz` holds their inputs and predictions.
"""

import pathlib
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError, RecurrentExperts
from mmoeex_tf.layers.grouped_recurrent import grouped_recurrent_stack

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
RNG = np.random.default_rng(0)
SEQUENCE = RNG.normal(size=(3, 7, 4)).astype("float32")
MASK = np.arange(7)[None, :] < np.array([[7], [4], [1]])  # lengths 7, 4, 1
LAYERS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
CELLS = ["gru", "lstm", "simple_rnn"]


def perturb(layer, scale=0.3, seed=1):
    """Adds noise to every weight, so that zero biases hide nothing."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            w + rng.normal(scale=scale, size=w.shape).astype(w.dtype)
            for w in layer.get_weights()
        ]
    )


def separate(layers_per_expert, inputs, mask=None):
    """Fresh Keras layers with the same weights, run one expert at a time."""
    outputs = []
    for chain in layers_per_expert:
        hidden = inputs
        for layer in chain:
            twin = layer.__class__.from_config(layer.get_config())
            twin.build(hidden.shape)
            twin.set_weights(layer.get_weights())
            hidden = twin(hidden, mask=mask)
        outputs.append(np.asarray(hidden))
    return np.stack(outputs, axis=-2)


@pytest.mark.filterwarnings("ignore:Layer 'recurrent_experts")  # mask not passed on
@pytest.mark.parametrize("cell", CELLS)
def test_grouped_equals_separate_keras_layers(cell):
    experts = RecurrentExperts(2, [5, 2], cell=cell)
    experts.build(SEQUENCE.shape)
    perturb(experts)
    for mask in (None, MASK):
        outputs = np.asarray(experts(SEQUENCE, mask=mask))
        assert outputs.shape == (3, 7, 2, 2)
        expected = separate(experts.experts, SEQUENCE, mask)
        np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    # A masked step repeats the output of the last step read.
    np.testing.assert_array_equal(outputs[2, 1:], np.repeat(outputs[2, :1], 6, 0))


@pytest.mark.filterwarnings("ignore:Layer 'recurrent_experts")  # mask not passed on
def test_a_keras_mask_reaches_either_recurrence():
    experts = RecurrentExperts(2, 3, cell="gru")
    padded = np.where(MASK[..., None], SEQUENCE, 0.0).astype("float32")
    outputs = experts(keras.layers.Masking()(padded))
    np.testing.assert_allclose(outputs, experts(padded, mask=MASK), rtol=0, atol=0)
    ungrouped = RecurrentExperts(2, 3, cell="gru", grouped=False)
    ungrouped.build(SEQUENCE.shape)
    ungrouped.set_weights(experts.get_weights())
    masked = ungrouped(keras.layers.Masking()(padded))
    np.testing.assert_allclose(masked, outputs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_stack_of_layers_without_bias(kind):
    depths = [
        [LAYERS[kind](4, return_sequences=True, use_bias=False) for _ in range(2)],
        [LAYERS[kind](3, return_sequences=True, use_bias=False) for _ in range(2)],
    ]
    widths = [SEQUENCE.shape[-1], 4]
    for layers, width in zip(depths, widths):
        for layer in layers:
            layer.build((None, None, width))
    outputs = np.asarray(grouped_recurrent_stack(SEQUENCE, depths))
    chains = [list(chain) for chain in zip(*depths)]
    np.testing.assert_allclose(
        outputs, separate(chains, SEQUENCE), rtol=1e-5, atol=1e-6
    )


def test_gru_with_reset_before_is_refused():
    layers = [keras.layers.GRU(3, return_sequences=True, reset_after=False)]
    layers[0].build(SEQUENCE.shape)
    with pytest.raises(MMoEExError, match="reset_after=True"):
        grouped_recurrent_stack(SEQUENCE, [layers])


class FixedMask(keras.layers.Layer):
    """Stands in for the dropout layer: multiplies by given masks in turn."""

    def __init__(self, masks):
        super().__init__()
        self.masks = list(masks)

    def call(self, ones, training=None):
        return ones * self.masks.pop(0)


def test_dropout_multiplies_each_experts_input_by_one_mask_for_all_steps():
    experts = RecurrentExperts(2, [3, 2], cell="gru")
    experts.build(SEQUENCE.shape)
    perturb(experts)
    rng = np.random.default_rng(2)
    masks = [rng.choice([0.0, 2.0], size=(2, 3, w)).astype("float32") for w in (4, 3)]
    # Time-major masks `(1, batch, experts * width)` as the recurrence draws them.
    fake = FixedMask([m.transpose(1, 0, 2).reshape(1, 3, -1) for m in masks])
    depths = list(zip(*experts.experts))
    outputs = np.asarray(grouped_recurrent_stack(SEQUENCE, depths, dropout=fake))
    for e, chain in enumerate(experts.experts):
        hidden = SEQUENCE * masks[0][e][:, None]
        hidden = separate([chain[:1]], hidden)[:, :, 0] * masks[1][e][:, None]
        hidden = separate([chain[1:]], hidden)[:, :, 0]
        np.testing.assert_allclose(outputs[:, :, e], hidden, rtol=1e-5, atol=1e-6)


def test_real_dropout_masks_hold_for_all_steps_and_differ_by_expert():
    # Identity kernel, no recurrence, no bias: h_t = tanh(mask * x_t).
    experts = RecurrentExperts(4, 4, cell="simple_rnn", dropout=0.5, seed=3)
    experts.build(SEQUENCE.shape)
    eye = np.eye(4, dtype="float32")
    experts.set_weights([eye, np.zeros((4, 4), "float32"), np.zeros(4, "float32")] * 4)
    trained = np.asarray(experts(SEQUENCE, training=True))
    masks = np.arctanh(trained) / SEQUENCE[:, :, None, :]
    np.testing.assert_allclose(masks, np.repeat(masks[:, :1], 7, axis=1), atol=1e-4)
    kept = np.isclose(masks, 2.0, atol=1e-3)  # 1 / (1 - rate)
    assert np.all(kept | np.isclose(masks, 0.0, atol=1e-3)) and 0 < kept.mean() < 1
    assert not np.array_equal(masks[:, 0, 0], masks[:, 0, 1])
    inferred = np.broadcast_to(np.tanh(SEQUENCE)[:, :, None], trained.shape)
    np.testing.assert_allclose(experts(SEQUENCE), inferred, atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_hessian_vector_product_matches_finite_differences(cell):
    x = RNG.normal(size=(2, 4, 3))
    experts = RecurrentExperts(2, 3, cell=cell, dtype="float64")
    experts.build(x.shape)
    perturb(experts)
    weights = experts.trainable_variables
    rng = np.random.default_rng(4)
    direction = [tf.constant(rng.normal(size=w.shape)) for w in weights]

    def gradient():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(experts(x)))
        return tape.gradient(loss, weights)

    with tf.GradientTape() as outer:
        projected = tf.add_n(
            [tf.reduce_sum(g * d) for g, d in zip(gradient(), direction)]
        )
    analytic = np.concatenate([np.ravel(h) for h in outer.gradient(projected, weights)])
    values = [w.numpy() for w in weights]

    def gradient_at(step):
        for w, v, d in zip(weights, values, direction):
            w.assign(v + step * d.numpy())
        return np.concatenate([np.ravel(g) for g in gradient()])

    step = 1e-4
    numeric = (gradient_at(step) - gradient_at(-step)) / (2 * step)
    np.testing.assert_allclose(numeric, analytic, rtol=1e-5, atol=1e-7)


def test_config_and_file_round_trip(tmp_path):
    experts = RecurrentExperts(2, [3, 2], cell="lstm", dropout=0.25, seed=5)
    assert experts.grouped is True
    config = experts.get_config()
    assert config["grouped"] is True and config["dropout"] == 0.25
    clone = RecurrentExperts.from_config({**config, "grouped": False})
    assert clone.grouped is False and clone.get_config()["grouped"] is False
    inputs = keras.Input((7, 4))
    model = keras.Model(inputs, experts(inputs))
    path = tmp_path / "experts.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded(SEQUENCE), model(SEQUENCE))
    assert loaded.layers[1].get_config() == config


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_file_saved_with_separate_layers_loads_and_predicts_the_same(cell):
    saved = np.load(FIXTURES / "recurrent_experts_v0.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a weight left unloaded only warns
        model = keras.saving.load_model(FIXTURES / f"recurrent_experts_{cell}_v0.keras")
    experts = model.mixture.experts
    assert isinstance(experts, mt.RecurrentExperts) and experts.grouped is True
    assert experts.units == [4, 2] and experts.cell == cell
    outputs = model.predict(saved["x"], verbose=0)
    for name, values in outputs.items():
        np.testing.assert_allclose(
            values, saved[f"{cell}_{name}"], rtol=1e-5, atol=1e-6
        )
