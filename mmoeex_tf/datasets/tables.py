"""Your own table as a `MultiTaskData`: `from_dataframe`.

Every column that is not a target, an id or the split column is a feature.
Column kinds are inferred (numbers, booleans as 0/1, strings and categories)
and `categorical` makes a column of numbers a string column. The features are
encoded by a `TableEncoder` adapted on the train split only; the targets keep
`NaN` for a missing label. `mmoeex_tf.datasets.from_file` reads CSV, Parquet
and Feather files into `from_dataframe`.
"""

import dataclasses
import difflib
import re
import warnings

import numpy as np
import pandas as pd
import tensorflow as tf

from mmoeex_tf.datasets.base import SPLIT_SEED, SPLITS, MultiTaskData, split_indices
from mmoeex_tf.datasets.table_encoder import MISSING, NUMBER, STRING, TableEncoder
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import KINDS, Task

#: Separator of the labels of a multilabel cell, e.g. `"red|blue"`.
LABEL_SEPARATOR = "|"
_BOOLEAN_WORDS = {"true": 1.0, "false": 0.0}


@dataclasses.dataclass
class TableData(MultiTaskData):
    """A `MultiTaskData` made from a table, with its raw columns.

    Attributes:
        encoder: The `TableEncoder` turning `raw` into `x`.
        targets: Task name -> labels, as for `TableModel` (`positive`,
            `classes`), plus `chosen` for a binary positive value picked as
            the less frequent one.
        raw: Split name -> column name -> raw values (numbers float32 with
            `NaN`, strings with `""` for missing).
    """

    encoder: TableEncoder = None
    targets: dict = dataclasses.field(default_factory=dict)
    raw: dict = dataclasses.field(default_factory=dict)

    def raw_dataset(self, split, batch_size=512, shuffle=False, seed=0):
        """One split's raw columns as `(x, y)` batches, encoded in the pipeline.

        The same batches as `tf_dataset`, but the `TableEncoder` runs in a
        `tf.data` map on each batch of raw columns (gathered by row number)
        instead of once on the arrays beforehand.
        """
        raw = {c: tf.constant(v) for c, v in self.raw[split].items()}
        labels = {t: tf.constant(v) for t, v in self.y[split].items()}
        rows = len(self.x[split])
        order = tf.data.Dataset.range(rows)
        if shuffle:
            order = order.shuffle(rows, seed=seed, reshuffle_each_iteration=True)

        def encoded_batch(index):
            def take(values):
                return {name: tf.gather(v, index) for name, v in values.items()}

            return self.encoder(take(raw)), take(labels)

        dataset = order.batch(batch_size).map(
            encoded_batch, num_parallel_calls=tf.data.AUTOTUNE
        )
        return dataset.prefetch(tf.data.AUTOTUNE)

    def summary(self):
        lines = [super().summary()]
        for name, labels in self.targets.items():
            if "positive" in labels:
                how = " (the less frequent value)" if labels.get("chosen") else ""
                lines.append(f"  {name}: positive value {labels['positive']!r}{how}")
        return "\n".join(lines)


def from_dataframe(
    frame,
    targets,
    features=None,
    categorical=None,
    id_columns=(),
    split=(0.7, 0.15, 0.15),
    seed=SPLIT_SEED,
    na_values=(),
    encoder=None,
    name="table",
):
    """Makes a multi-task data set from a `pandas.DataFrame`.

    Args:
        frame: The table, one row per example.
        targets: Column -> kind (`"binary"`, `"multiclass"`, `"multilabel"`
            or `"regression"`), or `"binary:<positive value>"`. A binary
            target has two values (numbers, booleans or strings); without a
            positive value, `1`/`True` or else the less frequent value is
            positive. A multiclass target's classes are its sorted values; a
            multilabel cell lists labels separated by `|`.
        features: Feature columns; `None` takes every other column.
        categorical: Columns of numbers to treat as categories.
        id_columns: Columns of row ids, left out of the features (kept in
            `info["ids"]`).
        split: Train, val and test fractions (whole percents), or the name
            of a column holding `train`, `val` or `test` per row.
        seed: Seed of the random split.
        na_values: Further string cells that mean missing (e.g. `"?"`).
        encoder: A `TableEncoder` to use (e.g. a trained model's) instead of
            one adapted on this table's train split; string cells it has
            not seen are counted in `info["unseen"]` and warned about.
        name: Name of the data set.

    Returns:
        A `TableData` whose tasks are named after the target columns (other
        characters than letters, digits and `_` replaced by `_`).

    Raises:
        MMoEExError: naming the column, for a missing column (with the
            closest name), a target kind that does not fit its values, a
            column mixing numbers and text, a table without rows, or a bad
            split.
    """
    if len(frame) == 0:
        raise MMoEExError(f"Table {name!r} has no rows.")
    na_values = [str(value) for value in na_values]
    frame = _cleaned(frame, na_values)
    specs = {column: _target_kind(column, kind) for column, kind in targets.items()}
    split_column = split if isinstance(split, str) else None
    used = [*specs, *id_columns, *([split_column] if split_column else [])]
    for column in [*used, *(features or ()), *(categorical or ())]:
        _check_column(frame, column)
    if features is None:
        features = [c for c in frame.columns if c not in used]
    if not features:
        raise MMoEExError(f"Table {name!r} has no feature column left.")
    rows = _split_rows(frame, split, seed)
    raw, kinds = _feature_columns(frame, features, set(categorical or ()))
    inputs = dict(zip(features, _input_names(features)))
    raw = {inputs[c]: values for c, values in raw.items()}
    kinds = {inputs[c]: kind for c, kind in kinds.items()}
    given = encoder is not None
    if given:
        raw = {c: raw[c] for c in _matching_inputs(encoder, raw, name)}
    else:
        train = {c: values[rows["train"]] for c, values in raw.items()}
        encoder = TableEncoder.adapt_columns(train, kinds, na_values, name="encoder")
    unseen = _unseen(encoder, raw, name, warn=given)
    tasks, labels, decoding = [], {}, {}
    for column, (kind, positive) in specs.items():
        task_name = _input_names([column])[0]
        task, labels[task_name], decoding[task_name] = _target(
            frame[column], task_name, column, kind, positive
        )
        tasks.append(task)
    x = {split: _encode(encoder, raw, r) for split, r in rows.items()}
    y = {
        split: {task: values[r] for task, values in labels.items()}
        for split, r in rows.items()
    }
    ids = {split: frame.loc[:, list(id_columns)].iloc[r] for split, r in rows.items()}
    return TableData(
        name,
        tuple(tasks),
        x,
        y,
        encoder.feature_names(),
        label_columns={_input_names([c])[0]: c for c in specs},
        info={"rows": rows, "ids": ids, "unseen": unseen},
        encoder=encoder,
        targets=decoding,
        raw={s: {c: v[r] for c, v in raw.items()} for s, r in rows.items()},
    )


def _cleaned(frame, na_values):
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            text = values.map(lambda v: v.strip() if isinstance(v, str) else v)
            frame[column] = text.mask(text.isin(na_values))
    return frame


def _check_column(frame, column):
    if column not in frame.columns:
        names = [str(c) for c in frame.columns]
        close = difflib.get_close_matches(str(column), names, n=1, cutoff=0.0)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise MMoEExError(f"The table has no column {column!r}{hint}")


def _target_kind(column, kind):
    kind, _, positive = str(kind).partition(":")
    if kind not in KINDS:
        raise MMoEExError(
            f"Target {column!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}."
        )
    if positive and kind != "binary":
        raise MMoEExError(
            f"Target {column!r}: only a binary target takes a positive value."
        )
    return kind, positive or None


def _input_names(columns):
    names = []
    for column in columns:
        name = re.sub(r"\W+", "_", str(column)).strip("_") or "column"
        names.append(name if name[0].isalpha() else f"c_{name}")
    if len(set(names)) < len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise MMoEExError(
            f"Columns {list(columns)} give repeated input names {repeated}; "
            "rename them so that they differ in letters or digits."
        )
    return names


def _split_rows(frame, split, seed):
    if not isinstance(split, str):
        fractions = [round(100 * share) for share in split]
        if len(fractions) != 3 or sum(fractions) != 100 or min(fractions) < 0:
            raise MMoEExError(
                f"split must be three fractions adding up to 1 or a column name, "
                f"got {split!r}."
            )
        return split_indices(len(frame), fractions[:2], seed)
    values = frame[split].astype(str).str.strip().str.lower()
    bad = ~values.isin(SPLITS)
    if bad.any():
        raise MMoEExError(
            f"Split column {split!r} must hold {', '.join(SPLITS)}; row "
            f"{int(np.argmax(bad.to_numpy()))} has {frame[split][bad].iloc[0]!r}."
        )
    rows = {s: np.flatnonzero(values.to_numpy() == s) for s in SPLITS}
    if not len(rows["train"]):
        raise MMoEExError(f"Split column {split!r} marks no row as train.")
    return rows


def _as_numbers(values, column):
    """Numbers (booleans as 0/1) of a column, or `None` if it holds text."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64").to_numpy()
    present = values.dropna()
    words = present.map(lambda v: _BOOLEAN_WORDS.get(str(v).lower(), np.nan))
    if len(present) and words.notna().all():
        return values.map(lambda v: _BOOLEAN_WORDS.get(str(v).lower(), np.nan))
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


def _feature_columns(frame, features, categorical):
    raw, kinds = {}, {}
    for column in features:
        values = frame[column]
        numbers = None if column in categorical else _as_numbers(values, column)
        if numbers is None:
            text = values.map(lambda v: MISSING if pd.isna(v) else str(v))
            raw[column], kinds[column] = text.to_numpy(dtype=str), STRING
            if text.nunique() == len(text) > 10:
                warnings.warn(
                    f"Column {column!r} has a different value on every row; if "
                    "it is an id, pass it in id_columns.",
                    stacklevel=3,
                )
        else:
            raw[column] = np.asarray(numbers, dtype=np.float32)
            kinds[column] = NUMBER
            if np.isnan(raw[column]).all():
                raise MMoEExError(f"Column {column!r} has no value; leave it out.")
    return raw, kinds


def _matching_inputs(encoder, raw, name):
    missing = [c for c in encoder.input_names if c not in raw]
    if missing:
        raise MMoEExError(f"Table {name!r} lacks the model's input columns {missing}.")
    return encoder.input_names


def _unseen(encoder, raw, name, warn):
    """Counts the string cells outside the encoder's vocabularies.

    With `warn`, each column with such cells is named in a warning.
    """
    counts = {}
    for column in encoder.columns:
        if column["kind"] != STRING:
            continue
        known = set(column["vocabulary"]) | {MISSING, *encoder.na_values}
        values = pd.Series(raw[column["name"]])
        unseen = ~values.isin(known)
        if unseen.any():
            counts[column["name"]] = int(unseen.sum())
        if unseen.any() and warn:
            warnings.warn(
                f"Table {name!r}, column {column['name']!r}: {int(unseen.sum())} "
                f"value(s) not seen in training (e.g. {values[unseen].iloc[0]!r}) "
                "go to the out-of-vocabulary bucket.",
                stacklevel=3,
            )
    return counts


def _target(values, task_name, column, kind, positive):
    """The `Task`, float labels (`NaN` = missing) and labels of a target."""
    present = values.dropna()
    try:
        distinct = sorted(present.unique())
    except TypeError:  # numbers and text: compare as text
        distinct = sorted(present.unique(), key=str)
    if len(distinct) < 2 and kind != "regression":
        raise MMoEExError(
            f"Target {column!r} ({kind}) has {len(distinct)} distinct value(s): "
            f"{distinct}; it needs two or more."
        )
    if kind == "regression":
        numbers = _as_numbers(values, column)
        if numbers is None or len(pd.unique(numbers[~np.isnan(numbers)])) < 2:
            raise MMoEExError(
                f"Target {column!r} is declared regression but does not hold "
                f"varying numbers (e.g. {present.iloc[0]!r})."
            )
        return Task(task_name, kind), numbers.astype(np.float32), {}
    if kind == "multilabel":
        sets = present.astype(str).str.split(LABEL_SEPARATOR, regex=False)
        classes = sorted({label.strip() for labels in sets for label in labels} - {""})
        labels = np.full((len(values), len(classes)), np.nan, np.float32)
        for row, cell in zip(np.flatnonzero(values.notna()), sets):
            labels[row] = [c in {label.strip() for label in cell} for c in classes]
        task = Task(task_name, kind, output_size=len(classes))
        return task, labels, {"classes": classes}
    if kind == "multiclass":
        classes = [_plain(v) for v in distinct]
        codes = {value: index for index, value in enumerate(distinct)}
        labels = values.map(codes).to_numpy(dtype=np.float32)
        task = Task(task_name, kind, output_size=len(classes))
        return task, labels, {"classes": classes}
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
    labels = (values == positive).astype(np.float32).mask(values.isna())
    return (
        Task(task_name, kind),
        labels.to_numpy(dtype=np.float32),
        {"positive": _plain(positive), "chosen": chosen},
    )


def _plain(value):
    """A numpy scalar as the Python value (for configs and JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _encode(encoder, raw, rows, batch_size=4096):
    columns = {c: values[rows] for c, values in raw.items()}
    dataset = tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
    parts = [np.asarray(encoder(batch)) for batch in dataset]
    if not parts:
        return np.zeros((0, len(encoder.feature_names())), np.float32)
    return np.concatenate(parts).astype(np.float32)
