import numpy as np
import pytest

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError
from mmoeex_tf._checks import (
    ArgumentError,
    check_choice,
    check_integer,
    check_number,
    check_positive_integer,
    check_positive_number,
    check_rate,
    check_seed,
    check_units,
    is_integer,
)
from mmoeex_tf.integrations.callbacks import DiversityCallback
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.training.maml import MAMLMTL


@pytest.mark.parametrize(
    "value, expected",
    [
        (2, True),
        (0, True),
        (-1, True),
        (np.int64(2), True),
        (np.int8(2), True),
        (True, False),
        (np.bool_(True), False),
        (2.0, False),
        (np.float64(2.0), False),
        ("2", False),
        (None, False),
    ],
)
def test_what_an_integer_is(value, expected):
    assert is_integer(value) is expected


def test_errors_name_the_argument_and_the_value():
    with pytest.raises(ArgumentError) as raised:
        check_integer(2.0, "MAMLMTL tasks_per_step", minimum=1)
    error = raised.value
    assert isinstance(error, MMoEExError) and isinstance(error, ValueError)
    assert str(error) == "MAMLMTL tasks_per_step must be an integer >= 1, got 2.0."
    assert (error.name, error.value, error.expected) == (
        "MAMLMTL tasks_per_step",
        2.0,
        "an integer >= 1",
    )


@pytest.mark.parametrize(
    "value, minimum, maximum, message",
    [
        (True, None, None, "n must be an integer, got True."),
        (2.0, None, None, "n must be an integer, got 2.0."),
        (-1, 0, None, "n must be an integer >= 0, got -1."),
        (7, None, 6, "n must be an integer <= 6, got 7."),
        (7, 0, 6, r"n must be an integer in \[0, 6\], got 7."),
        (None, 0, 6, r"n must be an integer in \[0, 6\], got None."),
    ],
)
def test_check_integer_rejects(value, minimum, maximum, message):
    with pytest.raises(ArgumentError, match=message):
        check_integer(value, "n", minimum, maximum)


def test_check_integer_accepts_and_returns_python_ints():
    assert check_integer(np.int64(2), "n", 0, 6) == 2
    assert type(check_integer(np.int64(2), "n", 0, 6)) is int
    assert check_integer(-5, "n") == -5
    assert check_integer(0, "n", minimum=0) == 0
    assert check_integer(6, "n", maximum=6) == 6


def test_none_is_accepted_only_with_a_meaning():
    assert check_integer(None, "n", minimum=1, none_means="all tasks") is None
    with pytest.raises(
        ArgumentError, match=r"n must be None \(all tasks\) or an integer >= 1, got 0."
    ):
        check_integer(0, "n", minimum=1, none_means="all tasks")
    assert check_positive_integer(None, "n", none_means="all steps") is None
    assert check_seed(None, "seed", none_means="unseeded") is None
    assert check_number(None, "x", none_means="default") is None
    with pytest.raises(ArgumentError, match="got None"):
        check_positive_integer(None, "n")


@pytest.mark.parametrize("value", [True, 2.0, -1, 0, "3", None, [3]])
def test_check_positive_integer_rejects(value):
    with pytest.raises(ArgumentError, match=r"n must be a positive integer, got "):
        check_positive_integer(value, "n")


@pytest.mark.parametrize("value", [1, np.int64(2), 10**12])
def test_check_positive_integer_accepts(value):
    assert check_positive_integer(value, "n") == int(value)


@pytest.mark.parametrize("value", [True, 2.0, -1, 2**63, None])
def test_check_seed_rejects(value):
    with pytest.raises(
        ArgumentError, match=r"seed must be an integer in \[0, 2\*\*63\)"
    ):
        check_seed(value, "seed")


@pytest.mark.parametrize("value", [0, np.int64(2), 2**63 - 1])
def test_check_seed_accepts(value):
    assert check_seed(value, "seed") == int(value)


@pytest.mark.parametrize(
    "value, minimum, maximum, message",
    [
        (True, 0, 1, r"x must be a number in \[0, 1\], got True."),
        (1.5, 0, 1, r"x must be a number in \[0, 1\], got 1.5."),
        (-1, 0, None, "x must be a finite number >= 0, got -1."),
        (float("inf"), 0, None, "x must be a finite number >= 0, got inf."),
        (float("nan"), None, None, "x must be a finite number, got nan."),
        ("0.5", None, None, "x must be a finite number, got '0.5'."),
    ],
)
def test_check_number_rejects(value, minimum, maximum, message):
    with pytest.raises(ArgumentError, match=message):
        check_number(value, "x", minimum, maximum)


@pytest.mark.parametrize("value", [0, 1, 0.5, np.float32(0.25), np.int64(1)])
def test_check_number_accepts(value):
    assert check_number(value, "x", 0, 1) == float(value)


@pytest.mark.parametrize(
    "value", [True, 0, -1.5, float("inf"), float("nan"), "1", None]
)
def test_check_positive_number_rejects(value):
    with pytest.raises(
        ArgumentError, match=r"^x must be a positive finite number, got "
    ):
        check_positive_number(value, "x")


def test_check_positive_number_accepts_and_returns_python_floats():
    assert check_positive_number(np.int64(2), "x") == 2.0
    assert type(check_positive_number(np.float32(0.5), "x")) is float
    assert check_positive_number(None, "x", none_means="default") is None
    with pytest.raises(
        ArgumentError,
        match=r"^x must be None \(default\) or a positive finite number, got 0\.$",
    ):
        check_positive_number(0, "x", none_means="default")


@pytest.mark.parametrize("value", [True, 1.0, -0.1, 2, float("nan"), None, "0.1"])
def test_check_rate_rejects(value):
    with pytest.raises(ArgumentError, match=r"dropout must be a rate in \[0, 1\)"):
        check_rate(value, "dropout")


@pytest.mark.parametrize("value", [0, 0.0, 0.5, np.float64(0.99)])
def test_check_rate_accepts(value):
    assert check_rate(value, "dropout") == float(value)


@pytest.mark.parametrize(
    "value, choices",
    [
        ("valid", ("same", "causal")),
        (2.0, (1, 2)),
        (True, (1, 2)),
        (1, ("auto", True, False)),
        (np.array([1, 2]), (1, 2)),
        (-1, (1, 2)),
    ],
)
def test_check_choice_rejects(value, choices):
    with pytest.raises(ArgumentError, match=r"c must be one of \("):
        check_choice(value, "c", choices)


@pytest.mark.parametrize(
    "value, choices",
    [("same", ["same", "causal"]), (np.int64(2), (1, 2)), (True, ("auto", True))],
)
def test_check_choice_accepts(value, choices):
    assert check_choice(value, "c", choices) is value


@pytest.mark.parametrize(
    "units", [[], 0, -1, True, 2.0, [4, 2.0], [4, True], [4, 0], "4", None, {4: 1}]
)
def test_check_units_rejects(units):
    with pytest.raises(
        ArgumentError, match="units must be a positive integer or a list of positive"
    ):
        check_units(units, "units")


def test_check_units_accepts():
    assert check_units(4, "units") == [4]
    assert check_units((4, np.int64(2)), "units") == [4, 2]
    assert check_units([], "units", allow_empty=True) == []
    with pytest.raises(ArgumentError, match=r"\(may be empty\), got \[0\]"):
        check_units([0], "units", allow_empty=True)


def _callers(value):
    """Every argument of the package that must be an integer, set to `value`."""
    return {
        "DenseExperts num_experts": lambda: mt.DenseExperts(value, 4),
        "DenseExperts units": lambda: mt.DenseExperts(2, [4, value]),
        "RecurrentExperts units": lambda: mt.RecurrentExperts(2, value),
        "Conv1DExperts kernel_size": lambda: mt.Conv1DExperts(2, 3, kernel_size=value),
        "TaskTowers num_tasks": lambda: mt.TaskTowers(value, [3]),
        "MMoEEx num_tasks": lambda: mt.MMoEEx(mt.DenseExperts(2, 3), value),
        "num_exclusive": lambda: mt.expert_assignment(2, 4, num_exclusive=value),
        "output_size": lambda: mt.Task("t", "multilabel", output_size=value),
        "pooling_steps": lambda: mt.Task("b", "binary", pooling_steps=value),
        "MAMLMTL order": lambda: MAMLMTL(order=value),
        "MAMLMTL tasks_per_step": lambda: MAMLMTL(tasks_per_step=value),
        "MAMLMTL seed": lambda: MAMLMTL(seed=value),
        "DiversityCallback every_n_epochs": lambda: DiversityCallback(
            [[0.0]], "logs", every_n_epochs=value
        ),
        "DiversityCallback batch_size": lambda: DiversityCallback(
            [[0.0]], "logs", batch_size=value
        ),
        "Invalid epochs": lambda: RunConfig(epochs=value),
        "Invalid expert_units": lambda: RunConfig(expert_units=[value]),
    }


@pytest.mark.parametrize("value", [2.0, True, np.float32(2.0)], ids=repr)
@pytest.mark.parametrize("caller", sorted(_callers(2)))
def test_every_integer_argument_follows_the_one_rule(caller, value):
    with pytest.raises(MMoEExError, match=caller):
        _callers(value)[caller]()
    _callers(np.int64(2))[caller]()  # NumPy integers are integers
