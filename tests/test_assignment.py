import numpy as np
import pytest

from mmoeex_tf import MMoEExError, expert_assignment
from mmoeex_tf.layers.assignment import check_gate_mask


def test_alpha_zero_opens_everything():
    np.testing.assert_array_equal(expert_assignment(3, 6, alpha=0.0), np.ones((3, 6)))


@pytest.mark.parametrize("alpha, count", [(0.5, 6), (0.75, 9), (1.0, 12)])
def test_exclusivity_ties_each_special_expert_to_one_task(alpha, count):
    mask = expert_assignment(3, 12, alpha=alpha, seed=7)
    open_per_expert = mask.sum(axis=0)
    assert (open_per_expert == 1).sum() == count
    assert (open_per_expert == 3).sum() == 12 - count
    exclusive_per_task = mask[:, open_per_expert == 1].sum(axis=1)
    assert exclusive_per_task.max() - exclusive_per_task.min() <= 1


def test_exclusion_closes_each_special_expert_to_one_task():
    mask = expert_assignment(4, 8, alpha=0.5, mode="exclusion", seed=3)
    closed_per_expert = (mask == 0).sum(axis=0)
    assert sorted(closed_per_expert.tolist()) == [0] * 4 + [1] * 4


def test_same_seed_same_mask_other_seed_other_mask():
    first = expert_assignment(3, 12, alpha=0.5, seed=1)
    np.testing.assert_array_equal(first, expert_assignment(3, 12, alpha=0.5, seed=1))
    others = [expert_assignment(3, 12, alpha=0.5, seed=s) for s in range(2, 6)]
    assert any((other != first).any() for other in others)


def test_num_exclusive_is_an_alternative_to_alpha():
    mask = expert_assignment(2, 5, num_exclusive=2, seed=0)
    assert (mask.sum(axis=0) == 1).sum() == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 1.5}, r"alpha must be a number in \[0, 1\]"),
        ({"alpha": -0.1}, r"alpha must be a number in \[0, 1\]"),
        ({"num_exclusive": 7}, r"num_exclusive must be an integer in \[0, 6\]"),
        ({"alpha": 0.5, "num_exclusive": 2}, "exactly one"),
        ({"alpha": 0.5, "mode": "exclusive"}, "mode must be one of"),
        ({"alpha": True}, r"alpha must be a number in \[0, 1\], got True"),
        ({"num_exclusive": 2.0}, r"num_exclusive must be .*, got 2\.0"),
        ({"num_exclusive": True}, "num_exclusive must be .*, got True"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(MMoEExError, match=message):
        expert_assignment(2, 6, **kwargs)


def test_num_exclusive_may_be_a_numpy_integer():
    mask = expert_assignment(2, 5, num_exclusive=np.int64(2), seed=0)
    assert (mask.sum(axis=0) == 1).sum() == 2


@pytest.mark.parametrize(
    "num_tasks, num_experts, message",
    [
        (0, 4, "num_tasks must be a positive integer, got 0"),
        (2.0, 4, r"num_tasks must be a positive integer, got 2\.0"),
        (2, 0, "num_experts must be a positive integer, got 0"),
    ],
)
def test_bad_sizes(num_tasks, num_experts, message):
    with pytest.raises(MMoEExError, match=message):
        expert_assignment(num_tasks, num_experts, alpha=0.0)


def test_one_mask_check_for_drawn_and_given_masks():
    with pytest.raises(MMoEExError, match=r"gate_mask must have shape .* = \(2, 3\)"):
        check_gate_mask(np.ones((3, 2)), 2, 3)
    with pytest.raises(MMoEExError, match=r"entries must be 0 \(closed\) or 1"):
        check_gate_mask([[1, 0.5]], 1, 2)
    mask = check_gate_mask([[True, False]], 1, 2)
    assert mask.dtype == np.int32 and mask.tolist() == [[1, 0]]


def test_task_without_open_expert_is_an_error():
    with pytest.raises(MMoEExError, match="no open expert"):
        expert_assignment(3, 2, alpha=1.0)
    with pytest.raises(MMoEExError, match="no open expert"):
        expert_assignment(1, 3, alpha=1.0, mode="exclusion")
