"""Reading a table's columns: numbers, text and the targets' labels.

`from_dataframe` reads its feature columns with `as_numbers` and
`as_text`, and each target with `read_target`: from the column's own values
when a table is first read, or with the labels a trained model saved
(`TableModel.targets`) when a new table is scored with that model.
"""

import numpy as np
import pandas as pd

from mmoeex_tf.datasets.table_encoder import MISSING
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import KINDS, REGRESSION_LOSSES, Task

#: Separator of the labels of a multilabel cell, e.g. `"red|blue"`.
LABEL_SEPARATOR = "|"
_BOOLEAN_WORDS = {"true": 1.0, "false": 0.0}


def as_numbers(values, column):
    """Numbers (booleans as 0/1) of a column, or `None` if it holds text.

    Args:
        values: The column, a `pandas.Series`.
        column: Its name, for errors.

    Returns:
        A float array with `NaN` for missing cells, or `None`.

    Raises:
        MMoEExError: if most cells are numbers but some are text.
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64").to_numpy()
    present = values.dropna()
    words = present.map(lambda v: _BOOLEAN_WORDS.get(str(v).lower(), np.nan))
    if len(present) and words.notna().all():
        return values.map(
            lambda v: _BOOLEAN_WORDS.get(str(v).lower(), np.nan)
        ).to_numpy(dtype=np.float64)
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().all():
        return None
    if numbers.notna().mean() > 0.5 and numbers.isna().any():
        bad = present[numbers.isna()]
        raise MMoEExError(
            f"Column {column!r} mixes numbers and text (e.g. {bad.iloc[0]!r} at "
            f"row {bad.index[0]}); mark it missing with na_values, or pass the "
            "column in categorical."
        )
    return (
        pd.to_numeric(values, errors="coerce").to_numpy()
        if numbers.notna().all()
        else None
    )


def as_text(values):
    """The cells of a column as strings, `MISSING` for a missing one."""
    return values.map(lambda v: MISSING if pd.isna(v) else str(v)).to_numpy(dtype=str)


def plain(value):
    """A numpy scalar as the Python value (for configs and JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def target_kind(column, kind):
    """A target's kind as `KIND`, `binary:POSITIVE` or `regression:LOSS`.

    Returns:
        `(kind, option)`: the positive value (binary) or the loss
        (regression, one of `REGRESSION_LOSSES`) given, else `None`.
    """
    kind, _, option = str(kind).partition(":")
    if kind not in KINDS:
        raise MMoEExError(
            f"Target {column!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}."
        )
    if option and kind == "regression" and option not in REGRESSION_LOSSES:
        raise MMoEExError(
            f"Target {column!r}: a regression target's loss must be one of "
            f"{', '.join(REGRESSION_LOSSES)}, got {option!r}."
        )
    if option and kind not in ("binary", "regression"):
        raise MMoEExError(
            f"Target {column!r}: only a binary target takes a positive value "
            "(and a regression target a loss)."
        )
    return kind, option or None


def read_target(values, task_name, column, kind, option=None, saved=None):
    """The `Task`, float labels (`NaN` = missing) and labels of a target column.

    Args:
        values: The column, a `pandas.Series`.
        task_name: The task's name.
        column: The column's name, for errors and the saved labels.
        kind: The task kind.
        option: A binary target's positive value as text, a regression
            target's loss, or `None` (`target_kind`).
        saved: The labels a trained model keeps for this target (an entry
            of `TableModel.targets`): the classes, or the positive value, are
            taken from it instead of from this column, which may then hold
            a single class (a small split) but no value the model lacks.

    Returns:
        `(task, labels, decoding)`: `decoding` holds `column`, and `classes`
        (multiclass, multilabel) or `positive`, `negative` and `chosen`
        (binary; `chosen`: the positive value was picked as the less frequent
        one).

    Raises:
        MMoEExError: naming the column, if its values do not fit the kind or
            the saved labels.
    """
    present = values.dropna()
    if kind == "regression":
        numbers = as_numbers(values, column)
        varying = numbers is not None and (
            saved is not None or len(pd.unique(numbers[~np.isnan(numbers)])) > 1
        )
        if not varying:
            raise MMoEExError(
                f"Target {column!r} is declared regression but does not hold "
                f"varying numbers (e.g. {present.iloc[0]!r})."
            )
        task = Task(task_name, kind, regression_loss=option or "squared_error")
        return task, numbers.astype(np.float32), {"column": column}
    try:
        distinct = sorted(present.unique())
    except TypeError:  # numbers and text: compare as text
        distinct = sorted(present.unique(), key=str)
    distinct = [plain(value) for value in distinct]
    if saved is None and len(distinct) < 2:
        raise MMoEExError(
            f"Target {column!r} ({kind}) has {len(distinct)} distinct value(s): "
            f"{distinct}; it needs two or more."
        )
    if kind == "multilabel":
        sets = present.astype(str).str.split(LABEL_SEPARATOR, regex=False)
        found = sorted({label.strip() for labels in sets for label in labels} - {""})
        classes = _known(column, found, saved, "classes")
        labels = np.full((len(values), len(classes)), np.nan, np.float32)
        for row, cell in zip(np.flatnonzero(values.notna()), sets):
            labels[row] = [c in {label.strip() for label in cell} for c in classes]
        task = Task(task_name, kind, output_size=len(classes))
        return task, labels, {"column": column, "classes": classes}
    if kind == "multiclass":
        classes = _known(column, distinct, saved, "classes")
        codes = {value: index for index, value in enumerate(classes)}
        labels = values.map(codes).to_numpy(dtype=np.float32)
        task = Task(task_name, kind, output_size=len(classes))
        return task, labels, {"column": column, "classes": classes}
    positive, negative, chosen = _binary_values(
        column, distinct, present, option, saved
    )
    labels = (values == positive).astype(np.float32).mask(values.isna())
    decoding = {"column": column, "positive": positive, "negative": negative}
    return (
        Task(task_name, kind),
        labels.to_numpy(dtype=np.float32),
        {**decoding, "chosen": chosen},
    )


def _known(column, found, saved, key):
    """The saved labels under `key` if any, checked to cover `found`."""
    if saved is None:
        return found
    known = list(saved[key])
    unknown = [value for value in found if value not in known]
    if unknown:
        raise MMoEExError(
            f"Target {column!r} has values the model does not know: {unknown[:3]} "
            f"(its classes: {known[:10]})."
        )
    return known


def _binary_values(column, distinct, present, positive, saved):
    """`(positive, negative, chosen)` of a binary target."""
    if saved is not None:
        known = [saved["positive"], saved.get("negative")]
        if saved.get("negative") is None:  # saved without it: any one other value
            known[1:] = [v for v in distinct if v != saved["positive"]][:1]
        unknown = [value for value in distinct if value not in known]
        if unknown:
            raise MMoEExError(
                f"Target {column!r} has values the model does not know: "
                f"{unknown[:3]} (its values: {known})."
            )
        return saved["positive"], known[1] if len(known) > 1 else None, False
    if len(distinct) != 2:
        raise MMoEExError(
            f"Target {column!r} is declared binary but has {len(distinct)} "
            f"distinct values (e.g. {distinct[:3]}); a binary target has two."
        )
    chosen = positive is None
    if chosen:
        usual = [v for v in distinct if str(v).lower() in ("1", "1.0", "true")]
        counts = present.value_counts()
        positive = usual[0] if usual else min(distinct, key=lambda v: counts[v])
    else:
        matches = [v for v in distinct if str(v) == positive]
        if not matches:
            raise MMoEExError(
                f"Target {column!r}: positive value {positive!r} is not one of "
                f"its values {distinct}."
            )
        positive = matches[0]
    negative = next(v for v in distinct if v != positive)
    return positive, negative, chosen
