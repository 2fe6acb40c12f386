"""Argument checks shared by the whole package, one function per rule.

Every check returns the value in a normal form (a Python `int`, `float` or
`list`) or raises `ArgumentError`, a `MMoEExError` whose message always reads
`"<name> must be <expected>, got <value>."`.

What counts as an integer is decided here, once: a Python `int` or a NumPy
integer (`np.int64(2)`). A `bool` is not an integer (`True` is a flag, not a
count) and neither is a float, even a whole one: `2.0` is rejected, because a
count written as `2.0` is more often a mistake (a rate or a weight in the
wrong place) than a count. Numbers read from YAML or JSON files are real
integers when written without a decimal point.

Numbers are Python or NumPy reals other than `bool`, and must be finite.
"""

import math
import numbers

import numpy as np

from mmoeex_tf.errors import MMoEExError

#: Seeds must fit a non-negative 64-bit integer (NumPy and TensorFlow seeds).
SEED_LIMIT = 2**63


class ArgumentError(MMoEExError):
    """An argument broke one of the rules of this module.

    Attributes:
        name: The argument as the message names it.
        value: The value given.
        expected: What was expected, e.g. `"a positive integer"`.
    """

    def __init__(self, name, value, expected):
        super().__init__(f"{name} must be {expected}, got {value!r}.")
        self.name, self.value, self.expected = name, value, expected


def is_integer(value):
    """Whether `value` is an integer: an `int` or NumPy integer, not a `bool`."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_number(value):
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
    )


def _range(kind, minimum, maximum):
    """Describes a closed range: `"an integer in [0, 6]"`, `"... >= 1"`."""
    if minimum is not None and maximum is not None:
        return f"{kind} in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def _within(value, minimum, maximum):
    """Whether `value` lies in `[minimum, maximum]` (each bound optional)."""
    return (minimum is None or value >= minimum) and (
        maximum is None or value <= maximum
    )


def _checked(value, name, valid, expected, convert, none_means=None):
    """Applies one rule: what every public check of this module does.

    Args:
        value: The value to check.
        name: The argument's name in the message.
        valid: Whether a value other than an accepted `None` follows the rule.
        expected: What the rule expects, for the message.
        convert: Turns a valid value into its normal form (`int`, `float`).
        none_means: If given, `None` is accepted too and this text says what
            it means in the message: `"None (all tasks) or an integer >= 1"`.

    Returns:
        `convert(value)`, or `None` for an accepted `None`.

    Raises:
        ArgumentError: if the value breaks the rule.
    """
    if value is None and none_means is not None:
        return None
    if not valid(value):
        if none_means is not None:
            expected = f"None ({none_means}) or {expected}"
        raise ArgumentError(name, value, expected)
    return convert(value)


def check_integer(value, name, minimum=None, maximum=None, none_means=None):
    """Checks an integer in `[minimum, maximum]` (each bound optional).

    Args:
        value: The value to check.
        name: The argument's name in the message, e.g. `"num_experts"`.
        minimum: Smallest value allowed, or `None`.
        maximum: Largest value allowed, or `None`.
        none_means: If given, `None` is accepted too and this text says what
            it means in the message: `"None (all tasks) or an integer >= 1"`.

    Returns:
        The value as a Python `int` (or `None`).

    Raises:
        ArgumentError: if the value is not such an integer.
    """
    return _checked(
        value,
        name,
        lambda v: is_integer(v) and _within(v, minimum, maximum),
        _range("an integer", minimum, maximum),
        int,
        none_means,
    )


def check_positive_integer(value, name, none_means=None):
    """Checks an integer >= 1 (a count or a size).

    Args:
        value: The value to check.
        name: The argument's name in the message.
        none_means: If given, `None` is accepted too, meaning this.

    Returns:
        The value as a Python `int` (or `None`).

    Raises:
        ArgumentError: if the value is not a positive integer.
    """
    return _checked(
        value,
        name,
        lambda v: is_integer(v) and v >= 1,
        "a positive integer",
        int,
        none_means,
    )


def check_seed(value, name, none_means=None):
    """Checks a random seed: an integer in `[0, 2**63)`.

    Args:
        value: The value to check.
        name: The argument's name in the message.
        none_means: If given, `None` is accepted too, meaning this.

    Returns:
        The seed as a Python `int` (or `None`).

    Raises:
        ArgumentError: if the value is not such an integer.
    """
    return _checked(
        value,
        name,
        lambda v: is_integer(v) and 0 <= v < SEED_LIMIT,
        "an integer in [0, 2**63)",
        int,
        none_means,
    )


def check_number(value, name, minimum=None, maximum=None, none_means=None):
    """Checks a finite number in `[minimum, maximum]` (each bound optional).

    Args:
        value: The value to check: any real number but a `bool`.
        name: The argument's name in the message.
        minimum: Smallest value allowed, or `None`.
        maximum: Largest value allowed, or `None`.
        none_means: If given, `None` is accepted too, meaning this.

    Returns:
        The value as a Python `float` (or `None`).

    Raises:
        ArgumentError: if the value is not such a number.
    """
    kind = "a number" if maximum is not None else "a finite number"
    return _checked(
        value,
        name,
        lambda v: _is_number(v) and _within(v, minimum, maximum),
        _range(kind, minimum, maximum),
        float,
        none_means,
    )


def check_positive_number(value, name, none_means=None):
    """Checks a finite number > 0 (a scale, a temperature, a step size).

    Args:
        value: The value to check.
        name: The argument's name in the message.
        none_means: If given, `None` is accepted too, meaning this.

    Returns:
        The value as a Python `float` (or `None`).

    Raises:
        ArgumentError: if the value is not a positive finite number.
    """
    return _checked(
        value,
        name,
        lambda v: _is_number(v) and v > 0,
        "a positive finite number",
        float,
        none_means,
    )


def check_rate(value, name):
    """Checks a dropout rate: a number in `[0, 1)`.

    Args:
        value: The value to check.
        name: The argument's name in the message.

    Returns:
        The rate as a Python `float`.

    Raises:
        ArgumentError: if the value is not a number in `[0, 1)`.
    """
    return _checked(
        value, name, lambda v: _is_number(v) and 0 <= v < 1, "a rate in [0, 1)", float
    )


def _same_choice(value, choice):
    if is_integer(choice) and not is_integer(value):
        return False  # 2.0 and True are not the choice 2
    if isinstance(choice, (bool, np.bool_)) != isinstance(value, (bool, np.bool_)):
        return False  # 1 is not the choice True
    try:
        return bool(value == choice)
    except (TypeError, ValueError):
        return False


def check_choice(value, name, choices):
    """Checks that a value is one of `choices`.

    Integer choices follow the integer rule: `2.0` and `True` are not `2`
    and `1`.

    Args:
        value: The value to check.
        name: The argument's name in the message.
        choices: The allowed values.

    Returns:
        The value.

    Raises:
        ArgumentError: if the value is none of the choices.
    """
    choices = tuple(choices)
    return _checked(
        value,
        name,
        lambda v: any(_same_choice(v, choice) for choice in choices),
        f"one of {choices}",
        lambda v: v,
    )


def check_units(units, name, allow_empty=False):
    """Checks layer widths: a positive integer or a list of them.

    Args:
        units: An integer (one layer) or a list or tuple of integers.
        name: The argument's name in the message.
        allow_empty: Whether an empty list (no layer) is allowed.

    Returns:
        The widths as a list of Python `int`.

    Raises:
        ArgumentError: if `units` is not such a list.
    """
    values = [units] if is_integer(units) else units
    if (
        not isinstance(values, (list, tuple))
        or (not values and not allow_empty)
        or not all(is_integer(v) and v >= 1 for v in values)
    ):
        expected = "a positive integer or a list of positive integers"
        if allow_empty:
            expected += " (may be empty)"
        raise ArgumentError(name, units, expected)
    return [int(v) for v in values]
