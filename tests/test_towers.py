import numpy as np
import pytest

from mmoeex_tf import MMoEExError, Task, TaskHeads, TaskTowers
from mmoeex_tf.layers.towers import pool_steps
from tests.layer_checks import check_layer

MIXTURES = np.random.default_rng(0).normal(size=(6, 3, 5)).astype("float32")


@pytest.mark.parametrize(
    "init_kwargs, output_shape, num_weights, num_params",
    [
        # kernels (3, 5, 4) and (3, 4, 2), biases (3, 4) and (3, 2)
        ({"num_tasks": 3, "units": [4, 2]}, (6, 3, 2), 4, 60 + 24 + 12 + 6),
        ({"num_tasks": 3, "units": [4], "dropout": 0.5, "seed": 2}, (6, 3, 4), 2, 72),
    ],
    ids=["two-layers", "dropout"],
)
def test_layer_checklist(init_kwargs, output_shape, num_weights, num_params, tmp_path):
    check_layer(
        TaskTowers,
        {**init_kwargs, "activation": "tanh"},
        MIXTURES,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=num_weights,
        expected_num_params=num_params,
        tmp_path=tmp_path,
    )


def test_towers_by_hand_with_ones():
    # Task t's units sum task t's features only: 1 + 2 = 3 and 3 + 4 = 7,
    # then 3 * 3 = 9 and 3 * 7 = 21.
    towers = TaskTowers(2, [3, 1], kernel_initializer="ones")
    outputs = towers(np.array([[[1.0, 2.0], [3.0, 4.0]]], "float32")).numpy()
    np.testing.assert_array_equal(outputs, [[[9.0], [21.0]]])
    negative = towers(np.array([[[1.0, -2.0], [3.0, 4.0]]], "float32")).numpy()
    np.testing.assert_array_equal(negative, [[[0.0], [21.0]]])  # relu


def test_towers_equal_separate_mlps():
    towers = TaskTowers(3, [4, 2], activation="tanh")
    outputs = towers(MIXTURES).numpy()
    kernel_0, bias_0, kernel_1, bias_1 = towers.get_weights()
    for t in range(3):
        hidden = np.tanh(MIXTURES[:, t] @ kernel_0[t] + bias_0[t])
        expected = np.tanh(hidden @ kernel_1[t] + bias_1[t])
        np.testing.assert_allclose(outputs[:, t], expected, rtol=1e-5, atol=1e-6)


def test_no_units_is_the_identity_without_weights():
    towers = TaskTowers(3, [])
    np.testing.assert_array_equal(towers(MIXTURES).numpy(), MIXTURES)
    assert towers.weights == []
    assert towers.compute_output_shape(MIXTURES.shape) == MIXTURES.shape


def test_public_attributes_hold_constructor_values():
    towers = TaskTowers(3, 4, activation="tanh", dropout=0.25, seed=5)
    assert towers.num_tasks == 3 and towers.units == [4]
    assert towers.dropout == 0.25 and towers.seed == 5
    assert towers.get_config()["activation"] == "tanh"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"num_tasks": 2.0},
            r"TaskTowers num_tasks must be a positive integer, got 2\.0",
        ),
        ({"num_tasks": 0}, "TaskTowers num_tasks must be a positive integer"),
        ({"units": [4, 0]}, r"TaskTowers units must be .* \(may be empty\)"),
        ({"units": [True]}, "TaskTowers units must be"),
        ({"dropout": -0.1}, r"TaskTowers dropout must be a rate in \[0, 1\)"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(MMoEExError, match=message):
        TaskTowers(**{"num_tasks": 2, "units": [3], **kwargs})


def test_pooling_of_sequence_level_tasks_by_hand():
    steps = np.array([[[1.0, -4.0], [3.0, 2.0], [2.0, 0.0]]], "float32")  # (1, 3, 2)
    expected = {
        "last": [[2.0, 0.0]],
        "mean": [[2.0, -2 / 3]],
        "max": [[3.0, 2.0]],
        "summary": [[2.0, 0.0, 2.0, -2 / 3, 3.0, 2.0]],
    }
    for pooling, values in expected.items():
        pooled = pool_steps(steps, pooling)
        np.testing.assert_allclose(np.asarray(pooled), values, rtol=1e-6)
    first_two = pool_steps(steps, "summary", steps=2)
    np.testing.assert_allclose(np.asarray(first_two), [[3.0, 2.0, 2.0, -1.0, 3.0, 2.0]])


def test_heads_pool_each_sequence_task_its_own_way():
    tasks = [
        Task("worst", "regression", pooling="summary"),
        Task("end", "binary", pooling="last"),
        Task("each", "binary", per_step=True),
    ]
    heads = TaskHeads(tasks)
    hidden = np.random.default_rng(1).normal(size=(4, 5, 3, 2)).astype("float32")
    worst, end, each = (np.asarray(z) for z in heads(hidden))
    assert [k.shape for k in heads.kernels] == [(1, 6, 1), (1, 2, 1), (1, 2, 1)]
    kernels = [np.asarray(k) for k in heads.kernels]
    summary = np.asarray(pool_steps(hidden[:, :, 0], "summary"))
    np.testing.assert_allclose(worst, summary @ kernels[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(end, hidden[:, -1, 1] @ kernels[1][0], rtol=1e-5)
    np.testing.assert_allclose(each, hidden[:, :, 2] @ kernels[2][0], rtol=1e-5)


@pytest.mark.parametrize("steps", [None, 5], ids=["table", "sequence"])
def test_a_task_axis_of_one_is_shared_by_every_task(steps):
    # A single expert's mixture comes once, (..., 1, features): towers and
    # heads give what they give on a copy of it for every task.
    rng = np.random.default_rng(2)
    lead = (4,) if steps is None else (4, steps)
    shared = rng.normal(size=(*lead, 1, 3)).astype("float32")
    copies = np.repeat(shared, 3, axis=-2)
    towers = TaskTowers(3, [4, 2])
    np.testing.assert_allclose(towers(shared), towers(copies), rtol=1e-5, atol=1e-6)
    assert towers.compute_output_shape(shared.shape) == (*lead, 3, 2)
    identity = TaskTowers(3, [])
    np.testing.assert_array_equal(identity(shared), shared)
    tasks = [Task("a", "binary"), Task("b", "regression"), Task("c", "binary")]
    if steps is not None:
        tasks[2] = Task("c", "binary", per_step=True)
    heads = TaskHeads(tasks)
    for got, expected in zip(heads(shared), heads(copies)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
