"""Value checks of `RunConfig` fields: each returns the value or raises `Invalid`.

`Invalid`'s message says what was expected; `RunConfig` names the field.
"""

import difflib
import math

from mmoeex_tf._checks import (
    ArgumentError,
    check_integer,
    check_positive_integer,
    check_units,
)
from mmoeex_tf.choices import AUTO


class Invalid(Exception):
    """A value failed a check; the message says what was expected."""


def optional(value, check):
    """`None`, or `value` checked by `check`."""
    return None if value is None else check(value)


def boolean(value):
    """`value` if it is `True` or `False`."""
    if not isinstance(value, bool):
        raise Invalid("true or false")
    return value


def string(value):
    """`value` if it is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise Invalid("a non-empty string")
    return value


def choice(value, choices):
    """`value` if it is one of `choices`; else says the closest."""
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise Invalid(f"one of {', '.join(choices)}{hint}")
    return value


def mapping(value):
    """A copy of `value` if it is a mapping."""
    if not isinstance(value, dict):
        raise Invalid("a mapping of keyword arguments")
    return dict(value)


def from_checks(check, value, **options):
    """Runs a rule of `mmoeex_tf._checks`, failing with what it expected."""
    try:
        return check(value, "value", **options)
    except ArgumentError as error:
        raise Invalid(error.expected) from None


def positive_int(value):
    """`value` if it is an integer >= 1."""
    return from_checks(check_positive_integer, value)


def natural_int(value):
    """`value` if it is an integer >= 0."""
    return from_checks(check_integer, value, minimum=0)


def number(value, expected, accept):
    """`value` as a finite float that `accept` accepts; numeric strings count."""
    # YAML 1.1 reads `1e-3` (no dot) as a string, so numeric strings count.
    try:
        if isinstance(value, bool):
            raise ValueError
        parsed = float(value)
    except (TypeError, ValueError):
        raise Invalid(expected) from None
    if not (math.isfinite(parsed) and accept(parsed)):
        raise Invalid(expected)
    return parsed


def rate(value):
    """`value` as a float in [0, 1)."""
    return number(value, "a rate in [0, 1)", lambda x: 0 <= x < 1)


def units(value, allow_empty=False):
    """`value` as a tuple of layer widths (`mmoeex_tf._checks.check_units`)."""
    return tuple(from_checks(check_units, value, allow_empty=allow_empty))


def or_auto(value, check):
    """`"auto"`, or `value` checked by `check` (integer strings count)."""
    if value == AUTO:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    try:
        return check(value)
    except Invalid as invalid:
        raise Invalid(f"{invalid} or {AUTO!r}") from None
