import numpy as np
import pytest

from mmoeex_tf import MMoEExError, expert_assignment


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
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(MMoEExError, match=message):
        expert_assignment(2, 6, **kwargs)


def test_task_without_open_expert_is_an_error():
    with pytest.raises(MMoEExError, match="no open expert"):
        expert_assignment(3, 2, alpha=1.0)
    with pytest.raises(MMoEExError, match="no open expert"):
        expert_assignment(1, 3, alpha=1.0, mode="exclusion")
