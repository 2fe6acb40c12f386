"""Time series from a long table: one row per id, time, variable and value.

`from_long_table` turns such a table (ICU charts, sensor logs, any event
stream) into fixed-length sequences on a regular time grid, with statistics
of the train split only that can encode another table the same way.
"""

import warnings

import numpy as np
import pandas as pd

from mmoeex_tf.datasets.base import (
    SPLIT_SEED,
    MultiTaskData,
    split_arrays,
    split_indices,
)
from mmoeex_tf.datasets.time_grid import (
    carry_forward,
    label_step,
    last_per_step,
    seconds_since_start,
    step_seconds,
)
from mmoeex_tf.errors import MMoEExError

# Fields of `info["statistics"]`, all JSON-serialisable.
STATISTICS = ("features", "series_means", "static_means", "categories", "mean", "std")


def from_long_table(
    frame,
    *,
    id,
    time,
    variable,
    value,
    targets,
    series=None,
    static=(),
    categorical=None,
    outcomes=None,
    na_values=(),
    steps=48,
    step="1h",
    split=(70, 15),
    seed=SPLIT_SEED,
    statistics=None,
    name="long_table",
):
    """Builds fixed-length sequences per id from a long table.

    Times count from the start of each id's sequence: `timedelta`s, strings
    `"HH:MM"` or `"HH:MM:SS"` (hours may exceed 23) or any string that
    `pandas.to_timedelta` reads, or numbers of hours. Step `i` of the grid
    covers `[i * step, (i + 1) * step)`, the last step also the grid's end
    `steps * step`; rows outside the grid, and values that are `NaN` or in
    `na_values`, are left out.

    Inputs, `(ids, steps, features)`: per series variable its last value in
    the step, carried forward (before its first value: the train mean), then
    per series variable whether it was observed in the step (0/1), then the
    static descriptors, repeated on every step. A static descriptor is the
    variable's first row if that row is at time 0 (later rows of a variable
    that is also a series are series values); unknown ones are imputed with
    the train mean, categorical ones one-hot encoded (unknown or another value: all
    zeros).
    Every feature is then standardised with the train mean and standard
    deviation (a constant feature only centred).

    Labels: a per-step task (`Task(..., per_step=True)`) takes the rows of
    the variable named like the task; a value at time `t` labels the step
    whose data end at or after `t` (step `ceil(t / step) - 1`, the first
    step for `t = 0`), so the model has seen the data up to `t`; steps
    without a value have a missing (`NaN`) label. Any other task takes the
    `outcomes` column named like it.

    Args:
        frame: The long table, a `pandas.DataFrame`.
        id: Column of the sequence ids (any sortable type).
        time: Column of the times since the start of the sequence.
        variable: Column of the variable names.
        value: Column of the numeric values.
        targets: The `Task` of every label.
        series: Variables of the time series, in feature order (default:
            every variable that is neither static nor a per-step target, in
            sorted order). Rows of other variables are left out, with a
            warning that counts them.
        static: Variables giving static descriptors, in feature order.
        categorical: Static variable -> its categories (`None`: those seen
            in the train split), one-hot encoded.
        outcomes: The per-sequence labels, a `DataFrame` with one row per
            id, keyed by its `id` column or else its index.
        na_values: Values meaning unknown, in the value column and in the
            outcomes (e.g. `(-1,)`).
        steps: Number of steps per sequence.
        step: Length of a step: a `pandas.Timedelta` string such as `"1h"`
            or `"30min"`, a `timedelta`, or a number of hours.
        split: Train and val shares of the ids in percent; test takes the
            rest (see `mmoeex_tf.datasets.base.split_indices`).
        seed: Seed of the split.
        statistics: `info["statistics"]` of an earlier call: impute and
            standardise with these instead of this table's train split.
        name: Name of the data set, in messages and the result.

    Returns:
        A `MultiTaskData` with `info["ids"]` (split -> the ids of its rows,
        sorted) and `info["statistics"]` (the `features` names, the
        `series_means` and `static_means` imputed for unknown values, the
        `categories` of each categorical descriptor, and the per-feature
        `mean` and `std` of the standardisation).

    Raises:
        MMoEExError: if a column is missing or malformed (ids of different
            kinds, values that are not numbers), a time cannot be
            read, a target has no labels, an id has no outcome row, or
            `statistics` are for other features.
    """
    per_step = [t.name for t in targets if t.per_step]
    static = list(static)
    categorical = dict(categorical or {})
    _check_columns(frame, (id, time, variable, value), f"{name}: the long table")
    step_length = step_seconds(step, name)
    try:
        ids = np.unique(frame[id].dropna().to_numpy())
    except TypeError as err:  # e.g. numbers and strings
        raise MMoEExError(f"{name}: column {id!r} mixes kinds of ids: {err}") from err
    if series is None:
        names = set(frame[variable].dropna().unique())
        series = sorted(names - set(static) - set(per_step), key=str)
    series = list(series)
    _warn_unknown_variables(frame[variable], [*series, *static, *per_step], name)
    events = _events(frame, (id, time, variable, value), ids, na_values, name)
    end = steps * step_length
    events = events[(events["seconds"] >= 0) & (events["seconds"] <= end)]
    rows = split_indices(len(ids), split, seed)
    train = rows["train"]

    first = ~events.duplicated(["row", "variable"])
    is_static = events["variable"].isin(static) & (events["seconds"] == 0) & first
    values = last_per_step(
        events[~is_static], series, len(ids), np.floor, step_length, steps
    )
    descriptors = _pivot(events[is_static], static, len(ids))
    numeric = [static.index(v) for v in static if v not in categorical]
    if statistics is None:
        never = [v for i, v in enumerate(series) if np.isnan(values[train, :, i]).all()]
        never += [
            v for i, v in enumerate(static) if np.isnan(descriptors[train, i]).all()
        ]
        _warn_never_observed(never, name)
        fitted = {
            "series_means": _known_means(values[train]),
            "static_means": _known_means(descriptors[:, numeric][train]),
            "categories": {
                v: _categories(descriptors[train, static.index(v)], given)
                for v, given in categorical.items()
            },
        }
    else:
        fitted = _checked(statistics, name)
    filled, observed = carry_forward(values, np.asarray(fitted["series_means"]))
    static_columns, static_names = _static_features(descriptors, static, fitted)
    feature_names = [*series, *(f"{v}_observed" for v in series), *static_names]
    inputs = np.concatenate(
        [
            filled,
            observed.astype(float),
            np.repeat(static_columns[:, None, :], steps, axis=1),
        ],
        axis=-1,
    )
    if statistics is None:
        flat = inputs[train].reshape(-1, inputs.shape[-1])
        fitted.update(features=feature_names, mean=flat.mean(0), std=flat.std(0))
    elif list(fitted["features"]) != feature_names:
        raise MMoEExError(
            f"{name}: the given statistics are for the features "
            f"{list(fitted['features'])}, this table gives {feature_names}."
        )
    std = np.asarray(fitted["std"])
    inputs = (inputs - np.asarray(fitted["mean"])) / np.where(std > 0, std, 1.0)
    per_sequence = [t.name for t in targets if not t.per_step]
    labels = _outcome_labels(outcomes, per_sequence, id, ids, na_values, name)
    for task in per_step:
        labels[task] = last_per_step(
            events, [task], len(ids), label_step, step_length, steps
        )[..., 0]
        if np.isnan(labels[task]).all():
            raise MMoEExError(
                f"{name}: per-step target {task!r} has no value in the grid "
                f"(rows with {variable} == {task!r})."
            )
    labels = {t.name: labels[t.name] for t in targets}
    x, y = split_arrays(inputs, labels, rows)
    info = {
        "ids": {s: ids[r] for s, r in rows.items()},
        "statistics": {key: _plain(fitted[key]) for key in STATISTICS},
    }
    return MultiTaskData(name, tuple(targets), x, y, feature_names, info=info)


def _check_columns(frame, columns, what):
    """Raises unless every one of `columns` is in `frame`."""
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise MMoEExError(
            f"{what} lacks the columns {absent}; found {list(frame.columns)}."
        )


def _events(frame, columns, ids, na_values, name):
    """The known values: id row, seconds, variable and value, in time order.

    Sorted by id row and time, ties in table order.
    """
    id_column, time, variable, value = columns
    values = pd.to_numeric(frame[value], errors="coerce")
    bad = values.isna() & frame[value].notna()
    if bad.any():
        raise MMoEExError(
            f"{name}: column {value!r} must hold numbers, found "
            f"{frame[value][bad].iloc[0]!r} in {int(bad.sum()):,} row(s)."
        )
    events = pd.DataFrame(
        {
            "row": np.searchsorted(ids, frame[id_column].to_numpy()),
            "seconds": seconds_since_start(frame[time], time, name),
            "variable": frame[variable].to_numpy(),
            "value": values.to_numpy(dtype=float),
        }
    )
    keep = frame[id_column].notna().to_numpy() & events["value"].notna().to_numpy()
    keep &= ~events["value"].isin(na_values).to_numpy()
    return events[keep].sort_values(["row", "seconds"], kind="stable")


def _warn_unknown_variables(variables, known, name):
    """Warns about the rows of variables that are not used, with counts."""
    unknown = ~variables.isin(known)
    if unknown.any():
        counts = variables[unknown].value_counts(dropna=False)
        listed = ", ".join(f"{v} ({count:,})" for v, count in counts.items())
        warnings.warn(
            f"{name}: ignoring {int(unknown.sum()):,} rows of "
            f"{len(counts)} unknown variable(s): {listed}.",
            stacklevel=4,  # the caller of a loader that calls from_long_table
        )


def _warn_never_observed(variables, name):
    """Warns about variables without any value in the train split."""
    if variables:
        warnings.warn(
            f"{name}: {variables} never observed in the train split; imputed "
            "as 0 (a constant feature).",
            stacklevel=4,
        )


def _pivot(events, variables, num_ids):
    """The `(ids, variables)` value of each static variable, else NaN."""
    values = np.full((num_ids, len(variables)), np.nan)
    columns = pd.Categorical(events["variable"], categories=variables).codes
    values[events["row"].to_numpy(), columns] = events["value"].to_numpy()
    return values


def _known_means(values):
    """Per-variable (last axis) means of the known values; 0 if none."""
    flat = values.reshape(int(np.prod(values.shape[:-1])), values.shape[-1])
    known = ~np.isnan(flat)
    return np.where(known, flat, 0.0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)


def _checked(statistics, name):
    """The given statistics, if they have every field."""
    absent = [key for key in STATISTICS if key not in statistics]
    if absent:
        raise MMoEExError(f"{name}: the given statistics lack {absent}.")
    return dict(statistics)


def _static_features(descriptors, static, fitted):
    """The `(ids, features)` static features and their names.

    Unknown numbers become their mean; categories are one-hot.
    """
    columns, names = [], []
    means = iter(fitted["static_means"])
    for i, v in enumerate(static):
        if v in fitted["categories"]:
            categories = fitted["categories"][v]
            columns.append(descriptors[:, [i]] == np.asarray(categories))
            names += [f"static_{v}_{_label(c)}" for c in categories]
        else:
            column = descriptors[:, [i]]
            columns.append(np.where(np.isnan(column), next(means), column))
            names.append(f"static_{v}")
    return np.hstack(columns) if columns else descriptors, names


def _categories(train_values, given):
    """The given categories, else the sorted values seen in the train split."""
    if given is not None:
        return list(given)
    return np.unique(train_values[~np.isnan(train_values)]).tolist()


def _label(category):
    """A category as text for a feature name: `1.0` -> `"1"`."""
    if isinstance(category, float) and category.is_integer():
        return str(int(category))
    return str(category)


def _outcome_labels(outcomes, tasks, id_column, ids, na_values, name):
    """Task name -> the `(ids,)` labels from the outcomes' columns."""
    if not tasks:
        return {}
    if outcomes is None:
        raise MMoEExError(f"{name}: targets {tasks} need an outcomes frame.")
    if id_column in outcomes.columns:
        outcomes = outcomes.set_index(id_column)
    _check_columns(outcomes, tasks, f"{name}: the outcomes")
    outcomes = outcomes[~outcomes.index.duplicated()]
    absent = np.setdiff1d(ids, outcomes.index.to_numpy())
    if absent.size:
        raise MMoEExError(
            f"{name}: the outcomes have no row for {absent.size} {id_column}(s) "
            f"with data, e.g. {absent[:5].tolist()}."
        )
    labels = {}
    for task in tasks:
        column = pd.to_numeric(outcomes[task], errors="coerce")
        bad = column.isna() & outcomes[task].notna()
        if bad.any():
            raise MMoEExError(
                f"{name}: outcome column {task!r} must hold numbers, found "
                f"{outcomes[task][bad].iloc[0]!r} for {id_column} {bad.idxmax()!r}."
            )
        labels[task] = column.mask(column.isin(na_values)).loc[ids].to_numpy(float)
    return labels


def _plain(value):
    """Arrays to lists of floats, for JSON."""
    return value.tolist() if isinstance(value, np.ndarray) else value
