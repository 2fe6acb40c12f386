"""Value checks of `RunConfig` fields: each returns the value or raises `Invalid`.

`Invalid`'s message says what was expected; `RunConfig` names the field.
"""

import difflib
import functools
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


def task_experts(value):
    """`value` as a dict task name -> sorted list of distinct expert indices.

    The mapping of `RunConfig.gate_mask`: every key a task name, every value
    a non-empty list of integers >= 0. `RunConfig` checks the indices against
    `experts`, `runs.factory` the names against the data set's tasks.
    """
    expected = "a mapping of task name to a list of expert indices (integers >= 0)"
    if not isinstance(value, dict):
        raise Invalid(expected)
    checked = {}
    for task, experts in value.items():
        if not isinstance(task, str) or not isinstance(experts, (list, tuple)):
            raise Invalid(expected)
        if not experts:
            raise Invalid(f"{expected}; task {task!r} has no expert")
        checked[task] = sorted({natural_int(expert) for expert in experts})
    return checked


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


def field_checks(fields):
    """The check of every `RunConfig` field, by name.

    A field whose metadata lists its `choices` is checked against them, a
    `bool` field by `boolean`; the others have their own rule here.

    Args:
        fields: The `dataclasses.fields` of `RunConfig`.

    Returns:
        Dict field name -> function of the value that returns it checked (or
        converted) or raises `Invalid`.
    """
    return {
        **{f.name: boolean for f in fields if f.type is bool},
        **{
            f.name: functools.partial(choice, choices=f.metadata["choices"])
            for f in fields
            if "choices" in f.metadata
        },
        "data_path": lambda v: optional(v, string),
        "data_options": mapping,
        "numeric_bins": lambda v: or_auto(v, natural_int),
        "limit_rows": lambda v: optional(v, positive_int),
        "experts": positive_int,
        "expert_units": units,
        "expert_bins": positive_int,
        "expert_dropout": rate,
        "input_dropout": rate,
        "alpha": lambda v: number(v, "a number in [0, 1]", lambda x: 0 <= x <= 1),
        "gate_units": lambda v: optional(v, natural_int),
        "outcomes": lambda v: optional(v, string),
        "tower_units": lambda v: units(v, allow_empty=True),
        "tower_dropout": rate,
        "maml": mapping,
        "learning_rate": lambda v: number(v, "a positive number", lambda x: x > 0),
        "warmup_epochs": natural_int,
        "early_stopping": lambda v: optional(v, positive_int),
        "weight_decay": lambda v: number(v, "a number >= 0", lambda x: x >= 0),
        "batch_size": positive_int,
        "epochs": positive_int,
        "seed": natural_int,
        "steps_per_execution": lambda v: or_auto(v, positive_int),
        "output": lambda v: optional(v, string),
        "gate_mask": task_experts,
    }
