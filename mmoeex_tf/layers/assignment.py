"""Which experts each task's gate may use: MMoEEx exclusivity and exclusion."""

import numpy as np

from mmoeex_tf._checks import (
    check_choice,
    check_integer,
    check_number,
    check_positive_integer,
)
from mmoeex_tf.choices import MODES
from mmoeex_tf.errors import MMoEExError


def count_special_experts(num_experts, alpha=None, num_exclusive=None):
    """Returns how many experts are made exclusive (or excluded).

    Args:
        num_experts: Total number of experts E.
        alpha: Fraction of the experts in [0, 1]; rounded to the nearest
            count.
        num_exclusive: The count itself, instead of `alpha`.

    Returns:
        An integer in [0, E].

    Raises:
        MMoEExError: if both or neither argument is given, or the value is out
            of range.
    """
    if (alpha is None) == (num_exclusive is None):
        raise MMoEExError("Give exactly one of alpha and num_exclusive.")
    num_experts = check_positive_integer(num_experts, "num_experts")
    if num_exclusive is not None:
        return check_integer(num_exclusive, "num_exclusive", 0, num_experts)
    return int(round(check_number(alpha, "alpha", 0, 1) * num_experts))


def expert_assignment(
    num_tasks, num_experts, alpha=None, num_exclusive=None, mode="exclusivity", seed=0
):
    """Draws the task-by-expert gate mask of an MMoEEx layer.

    A random subset of the experts (a fraction `alpha`, or `num_exclusive` of
    them) is tied to one task each, the tasks dealt out as evenly as possible
    in random order. With `mode="exclusivity"` such an expert is open to its
    task only; with `mode="exclusion"` it is closed to its task only. All other
    experts are open to every task, so `alpha=0` is a plain MMoE.

    Args:
        num_tasks: Number of tasks T.
        num_experts: Number of experts E.
        alpha: Fraction of special experts, in [0, 1].
        num_exclusive: Number of special experts, instead of `alpha`.
        mode: `"exclusivity"` or `"exclusion"`.
        seed: Seed of the random draw; the same seed gives the same mask.

    Returns:
        A `(T, E)` int32 array of 0 (closed) and 1 (open).

    Raises:
        MMoEExError: for invalid arguments, or if a task would be left with no
            open expert.
    """
    check_choice(mode, "mode", MODES)
    num_tasks = check_positive_integer(num_tasks, "num_tasks")
    num_experts = check_positive_integer(num_experts, "num_experts")
    count = count_special_experts(num_experts, alpha, num_exclusive)
    rng = np.random.default_rng(seed)
    experts = rng.permutation(num_experts)[:count]
    owners = np.resize(rng.permutation(num_tasks), count)
    mask = np.ones((num_tasks, num_experts), dtype=np.int32)
    if mode == "exclusivity":
        mask[:, experts] = 0
        mask[owners, experts] = 1
    else:
        mask[owners, experts] = 0
    return check_gate_mask(mask, num_tasks, num_experts)


def check_gate_mask(mask, num_tasks=None, num_experts=None, name="gate_mask"):
    """Validates a task-by-expert 0/1 mask and returns it as int32.

    Args:
        mask: A `(tasks, experts)` array-like of 0 (closed) and 1 (open).
        num_tasks: The number of rows it must have (any if `None`).
        num_experts: The number of columns it must have (any if `None`).
        name: The argument's name in error messages.

    Returns:
        The mask as a `(tasks, experts)` int32 array.

    Raises:
        MMoEExError: if the shape or values are wrong or a task has no open
            expert.
    """
    mask = np.asarray(mask)
    expected = (num_tasks, num_experts)
    if mask.ndim != 2 or any(
        want is not None and size != want for size, want in zip(mask.shape, expected)
    ):
        sizes = ", ".join("any" if n is None else str(n) for n in expected)
        raise MMoEExError(
            f"{name} must have shape (tasks, experts) = ({sizes}), got {mask.shape}."
        )
    if not np.isin(mask, (0, 1)).all():
        raise MMoEExError(
            f"{name} entries must be 0 (closed) or 1 (open), got the values "
            f"{np.unique(mask).tolist()}."
        )
    closed_tasks = np.flatnonzero(mask.sum(axis=1) == 0)
    if closed_tasks.size:
        raise MMoEExError(
            f"Task(s) at index {closed_tasks.tolist()} would have no open expert "
            f"in {name}: with {mask.shape[1]} experts and {mask.shape[0]} tasks, "
            "lower alpha or add experts so every task keeps at least one."
        )
    return mask.astype(np.int32)
