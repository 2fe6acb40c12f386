import keras
import numpy as np
import pytest

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError, SummaryExperts
from mmoeex_tf.layers.piecewise_linear import (
    edge_matrix,
    piecewise_linear,
    piecewise_linear_columns,
    quantile_edges,
)
from mmoeex_tf.layers.summary_experts import running_summaries
from mmoeex_tf.runs import RunConfig, build_model
from tests.layer_checks import check_layer

RNG = np.random.default_rng(0)
SEQUENCE = RNG.normal(size=(6, 7, 3)).astype("float32")


def numpy_summaries(x):
    steps = np.arange(1, x.shape[1] + 1)[None, :, None]
    position = np.broadcast_to(steps / x.shape[1], (*x.shape[:2], 1))
    return np.concatenate(
        [
            x,
            np.cumsum(x, axis=1) / steps,
            np.minimum.accumulate(x, axis=1),
            np.maximum.accumulate(x, axis=1),
            position,
        ],
        axis=2,
    )


@pytest.mark.parametrize("steps", [1, 2, 7, 48])
def test_running_summaries_equal_numpy(steps):
    x = RNG.normal(size=(4, steps, 3)).astype("float32")
    np.testing.assert_allclose(
        running_summaries(x).numpy(), numpy_summaries(x), rtol=1e-6, atol=1e-6
    )


def test_running_summaries_by_hand():
    x = np.array([[[1.0], [3.0], [2.0], [-1.0]]], "float32")
    expected = [
        [1.0, 1.0, 1.0, 1.0, 0.25],
        [3.0, 2.0, 1.0, 3.0, 0.5],
        [2.0, 2.0, 1.0, 3.0, 0.75],
        [-1.0, 1.25, -1.0, 3.0, 1.0],
    ]
    np.testing.assert_array_equal(running_summaries(x).numpy()[0], expected)


def test_edge_matrix_pads_with_the_last_edge():
    values = np.stack([np.arange(100.0), np.arange(100.0) >= 90], axis=1)
    edges = edge_matrix(values, 4)
    np.testing.assert_allclose(edges[0], quantile_edges(values[:, 0], 4))
    np.testing.assert_array_equal(edges[1], [0.0, 1.0, 1.0, 1.0, 1.0])


def test_piecewise_linear_columns_equal_the_one_column_encoding():
    values = RNG.normal(size=(50, 2)).astype("float32")
    values[:, 1] = np.round(values[:, 1])  # few distinct values: empty bins
    edges = edge_matrix(values, 6)
    encoded = piecewise_linear_columns(values, edges).numpy()
    assert encoded.shape == (50, 12)
    for column in range(2):
        distinct = quantile_edges(values[:, column], 6)
        own = piecewise_linear(values[:, column], distinct).numpy()
        bins = encoded[:, column * 6 : (column + 1) * 6]
        np.testing.assert_allclose(bins[:, : own.shape[1]], own, atol=1e-6)
        np.testing.assert_array_equal(bins[:, own.shape[1] :], 0.0)


def test_summary_experts_equal_dense_experts_on_the_encoded_summaries():
    experts = SummaryExperts(3, [5, 4], bins=4, seed=0)
    experts.adapt(SEQUENCE)
    summaries = numpy_summaries(SEQUENCE)
    edges = edge_matrix(summaries.reshape(-1, summaries.shape[-1]), 4)
    np.testing.assert_allclose(experts.edges.numpy(), edges)
    features = np.concatenate(
        [summaries, piecewise_linear_columns(summaries, edges).numpy()], axis=2
    )
    dense = mt.DenseExperts(3, [5, 4])
    dense.build(features.shape)
    dense.set_weights(experts.trainable_weights)
    np.testing.assert_allclose(
        experts(SEQUENCE).numpy(), dense(features).numpy(), rtol=1e-5, atol=1e-6
    )


def test_summary_experts_are_causal():
    experts = SummaryExperts(2, 4, bins=3, seed=0)
    experts.adapt(SEQUENCE)
    changed = SEQUENCE.copy()
    changed[:, 4:] += 10.0
    before, after = experts(SEQUENCE).numpy(), experts(changed).numpy()
    np.testing.assert_array_equal(before[:, :4], after[:, :4])
    assert not np.allclose(before[:, 4:], after[:, 4:])


def test_summary_experts_adapt_a_sample_of_many_sequences(monkeypatch):
    monkeypatch.setattr("mmoeex_tf.layers.summary_experts.ADAPT_SEQUENCES", 4)
    many = RNG.normal(size=(10, 5, 2)).astype("float32")
    experts = SummaryExperts(2, 3, bins=2)
    experts.adapt(many, seed=1)
    rows = np.sort(np.random.default_rng(1).choice(10, 4, replace=False))
    summaries = numpy_summaries(many[rows])
    expected = edge_matrix(summaries.reshape(-1, summaries.shape[-1]), 2)
    np.testing.assert_allclose(experts.edges.numpy(), expected, rtol=1e-6)


def test_summary_experts_layer_checklist(tmp_path):
    check_layer(
        SummaryExperts,
        {"num_experts": 2, "units": [4], "bins": 3, "seed": 0},
        SEQUENCE,
        expected_output_shape=(6, 7, 2, 4),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=1,
        expected_num_params=13 * 4 * 2 * 4 + 2 * 4 + 13 * 4,
        tmp_path=tmp_path,
    )


def test_model_adapt_places_the_bins_and_saves_them(tmp_path):
    tasks = [mt.Task("step", "binary", per_step=True), mt.Task("stay", "regression")]
    model = mt.MMoEExModel(tasks, SummaryExperts(3, 8, bins=4), alpha=0.5)
    model.build((None, *SEQUENCE.shape[1:]))
    even = model.mixture.experts.edges.numpy()
    np.testing.assert_allclose(even[0], [-2.0, -1.0, 0.0, 1.0, 2.0])
    labels = {
        "step": (SEQUENCE[..., 0] > 0).astype("float32"),
        "stay": SEQUENCE[:, -1, 1],
    }
    model.adapt(labels)  # without inputs the bins stay
    np.testing.assert_array_equal(model.mixture.experts.edges.numpy(), even)
    model.adapt(labels, x=SEQUENCE)
    summaries = numpy_summaries(SEQUENCE)
    expected = edge_matrix(summaries.reshape(-1, summaries.shape[-1]), 4)
    np.testing.assert_allclose(model.mixture.experts.edges.numpy(), expected)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.mixture.experts.edges.numpy(), expected)
    for name, values in model.predict(SEQUENCE, verbose=0).items():
        np.testing.assert_allclose(loaded.predict(SEQUENCE, verbose=0)[name], values)


def test_run_config_builds_summary_experts():
    tasks = [mt.Task("stay", "binary")]
    config = RunConfig(expert_kind="summary", expert_bins=5, experts=2)
    model = build_model(config, tasks, (7, 3))
    experts = model.mixture.experts
    assert isinstance(experts, SummaryExperts) and experts.bins == 5
    with pytest.raises(MMoEExError, match="expert_kind 'summary' needs sequence"):
        build_model(config, tasks, (3,))
    with pytest.raises(MMoEExError, match="Invalid expert_bins"):
        RunConfig(expert_bins=0)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: SummaryExperts(2, 3, bins=0), "SummaryExperts bins must be"),
        (lambda: SummaryExperts(2, 3).build((None, 3)), "known number of steps"),
        (lambda: SummaryExperts(2, 3).build((None, None, 3)), "known number"),
    ],
)
def test_bad_summary_experts(build, message):
    with pytest.raises(MMoEExError, match=message):
        build()
