"""The regular time grid of `from_long_table`: times, steps, carrying forward."""

import numpy as np
import pandas as pd

from mmoeex_tf.errors import MMoEExError


def step_seconds(step, name):
    """The length of a step in seconds; numbers are hours."""
    try:
        seconds = (
            3600.0 * float(step)
            if isinstance(step, (int, float, np.number))
            else pd.Timedelta(step).total_seconds()
        )
    except (ValueError, TypeError) as err:
        raise MMoEExError(f"{name}: step {step!r} is not a duration.") from err
    if not seconds > 0:
        raise MMoEExError(f"{name}: step must be positive, not {step!r}.")
    return seconds


def seconds_since_start(times, column, name):
    """Converts the time column to seconds since the start of the sequence."""
    if pd.api.types.is_timedelta64_dtype(times):
        seconds = times.dt.total_seconds().to_numpy()
    elif pd.api.types.is_numeric_dtype(times) and not pd.api.types.is_bool_dtype(times):
        seconds = 3600.0 * times.to_numpy(dtype=float)
    else:
        codes, unique = pd.factorize(times)
        text = pd.Series(unique, dtype=str)
        parts = text.str.extract(r"^\s*(\d+):(\d\d)(?::(\d\d))?\s*$").astype(float)
        clock = parts[0] * 3600 + parts[1] * 60 + parts[2].fillna(0)
        other = pd.to_timedelta(text.where(clock.isna()), errors="coerce")
        unique_seconds = clock.fillna(other.dt.total_seconds()).to_numpy()
        seconds = np.where(codes >= 0, unique_seconds[codes], np.nan)
    bad = np.isnan(seconds)
    if bad.any():
        example = times.to_numpy()[bad][0]
        raise MMoEExError(
            f"{name}: column {column!r} must hold times since the start "
            f"(HH:MM, a timedelta or hours), found {example!r} "
            f"in {int(bad.sum()):,} row(s)."
        )
    return seconds


def label_step(steps):
    """Step of a label at `steps` grid units: the step that ends at or after it."""
    return np.maximum(np.ceil(steps) - 1, 0)


def last_per_step(events, variables, num_ids, to_step, step_length, steps):
    """The `(ids, steps, variables)` last value of each variable per step, else NaN.

    Args:
        events: Rows with the columns `row` (the id's number), `seconds`,
            `variable` and `value`, in time order.
        variables: The variables, in the order of the last axis.
        num_ids: Number of ids.
        to_step: Maps times in steps (floats) to step numbers.
        step_length: Length of a step in seconds.
        steps: Number of steps; later times go to the last step.
    """
    chosen = events[events["variable"].isin(variables)]
    step_of = to_step(chosen["seconds"].to_numpy() / step_length)
    chosen = chosen.assign(
        step=np.minimum(step_of, steps - 1).astype(int),
        column=pd.Categorical(chosen["variable"], categories=variables).codes,
    ).drop_duplicates(["row", "step", "column"], keep="last")
    values = np.full((num_ids, steps, len(variables)), np.nan)
    cells = tuple(chosen[c].to_numpy() for c in ("row", "step", "column"))
    values[cells] = chosen["value"].to_numpy()
    return values


def carry_forward(values, means):
    """Fills each gap with the last value seen, before any with `means`.

    Returns:
        The filled values and the observed-this-step mask, both shaped like
        `values`.
    """
    observed = ~np.isnan(values)
    last_seen = np.maximum.accumulate(
        np.where(observed, np.arange(values.shape[1])[:, None], -1), axis=1
    )
    carried = np.take_along_axis(values, np.maximum(last_seen, 0), axis=1)
    return np.where(last_seen >= 0, carried, means), observed
