import keras
import numpy as np
import pytest

import mmoeex_tf as mt
from mmoeex_tf import MMoEExModel, Task
from mmoeex_tf.analysis.diversity import (
    diversity_score,
    expert_distance_matrix,
    gate_usage,
    plot_heatmap,
)

RNG = np.random.default_rng(3)
TASKS = [Task("a", "binary"), Task("b", "regression"), Task("c", "binary")]
X = RNG.normal(size=(50, 4)).astype("float32")


def linear_model(num_experts=3, units=2, alpha=0.0, input_shape=(None, 4)):
    """A model whose experts are plain linear maps `x @ W_e + b_e`."""
    experts = mt.LayerExperts(keras.layers.Dense(units), num_experts)
    model = MMoEExModel(TASKS, experts, alpha=alpha, seed=1)
    model.build(input_shape)
    return model


def set_expert_weights(model, kernels, biases):
    for expert, kernel, bias in zip(model.mixture.experts.experts, kernels, biases):
        expert.set_weights([kernel, bias])


def expected_distances(outputs):
    """The paper's formula, written out: outputs is (samples, experts, units)."""
    num_experts = outputs.shape[1]
    distances = np.zeros((num_experts, num_experts))
    for i in range(num_experts):
        for j in range(num_experts):
            distances[i, j] = np.linalg.norm(outputs[:, i] - outputs[:, j], "fro")
    return distances / distances.max()


def test_identical_experts_give_zero_distances_and_score():
    model = linear_model(num_experts=4)
    kernel = RNG.normal(size=(4, 2)).astype("float32")
    bias = RNG.normal(size=2).astype("float32")
    set_expert_weights(model, [kernel] * 4, [bias] * 4)
    matrix = expert_distance_matrix(model, X, batch_size=16)
    np.testing.assert_array_equal(matrix, np.zeros((4, 4)))
    assert diversity_score(matrix) == 0.0


def test_distance_matrix_matches_the_formula_for_known_experts():
    model = linear_model(num_experts=3, units=2)
    kernels = RNG.normal(size=(3, 4, 2)).astype("float32")
    biases = RNG.normal(size=(3, 2)).astype("float32")
    set_expert_weights(model, kernels, biases)
    outputs = np.einsum("nf,efu->neu", X, kernels) + biases
    matrix = expert_distance_matrix(model, X, batch_size=7)
    expected = expected_distances(outputs)
    np.testing.assert_allclose(matrix, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)
    np.testing.assert_allclose(matrix, matrix.T)
    assert matrix.max() == pytest.approx(1.0)
    assert diversity_score(matrix) == pytest.approx(expected.mean())


def test_sequence_outputs_count_every_step_as_a_sample():
    sequence = RNG.normal(size=(6, 5, 4)).astype("float32")
    model = linear_model(num_experts=3, units=2, input_shape=(None, 5, 4))
    kernels = RNG.normal(size=(3, 4, 2)).astype("float32")
    biases = np.zeros((3, 2), "float32")
    set_expert_weights(model, kernels, biases)
    outputs = np.einsum("nsf,efu->nseu", sequence, kernels).reshape(-1, 3, 2)
    np.testing.assert_allclose(
        expert_distance_matrix(model, sequence, batch_size=4),
        expected_distances(outputs),
        rtol=1e-5,
        atol=1e-6,
    )


def test_diversity_score_includes_the_diagonal():
    assert diversity_score(np.array([[0.0, 1.0], [1.0, 0.0]])) == 0.5


def test_gate_usage_rows_sum_to_one_and_closed_experts_are_zero():
    model = linear_model(num_experts=6, alpha=0.5)
    usage = gate_usage(model, X, batch_size=16)
    assert list(usage.index) == ["a", "b", "c"]
    assert list(usage.columns) == [f"expert_{e}" for e in range(6)]
    np.testing.assert_allclose(usage.sum(axis=1), 1.0, rtol=1e-6)
    closed = np.asarray(model.gate_mask) == 0
    assert closed.any()
    assert (usage.to_numpy()[closed] == 0.0).all()
    assert (usage.to_numpy()[~closed] > 0.0).all()


def test_heatmap_is_written_as_png(tmp_path):
    path = tmp_path / "heatmap.png"
    plot_heatmap(np.array([[0.0, 0.4], [0.4, 0.0]]), path, title="distances")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
