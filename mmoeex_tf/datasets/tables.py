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

from mmoeex_tf.choices import AUTO
from mmoeex_tf.datasets import base
from mmoeex_tf.datasets.base import SPLIT_SEED, SPLITS, MultiTaskData, split_indices
from mmoeex_tf.datasets.table_columns import (
    as_numbers,
    as_text,
    read_target,
    target_kind,
)
from mmoeex_tf.datasets.table_encoder import (
    INTEGER,
    LOOKUPS,
    MISSING,
    MISSING_INTEGER,
    NUMBER,
    STRING,
    TableEncoder,
)
from mmoeex_tf.errors import MMoEExError

#: Rows `TableData.raw_dataset` encodes at a time before caching them.
ENCODE_ROWS = 4096


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

    def raw_dataset(self, split, batch_size=512, shuffle=False, seed=0, cache=True):
        """One split's raw columns as `(x, y)` batches, encoded in the pipeline.

        The `TableEncoder` runs in a `tf.data` map on blocks of raw columns
        gathered by row number. With `cache` it runs once: the first pass
        encodes the rows in order, `ENCODE_ROWS` at a time, and caches them;
        every pass then shuffles and batches the cached rows as `tf_dataset`
        does (the same batches for the same seed). Without it each batch of
        raw rows is encoded on every pass, and no encoded copy is kept.
        """
        raw = {c: tf.constant(v) for c, v in self.raw[split].items()}
        labels = {t: tf.constant(v) for t, v in self.y[split].items()}
        rows = len(self.x[split])

        def encoded(index):
            def take(values):
                return {name: tf.gather(v, index) for name, v in values.items()}

            return self.encoder(take(raw)), take(labels)

        if not cache:
            batches = base.index_batches(rows, batch_size, shuffle, seed)
            dataset = batches.map(encoded, num_parallel_calls=tf.data.AUTOTUNE)
            return dataset.prefetch(tf.data.AUTOTUNE)
        blocks = base.index_batches(rows, ENCODE_ROWS)
        dataset = blocks.map(encoded, num_parallel_calls=tf.data.AUTOTUNE)
        # Unbatching hides the row count, which Keras needs for its epochs.
        dataset = dataset.unbatch().apply(tf.data.experimental.assert_cardinality(rows))
        dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

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
    numeric_bins=AUTO,
    encoder=None,
    target_labels=None,
    name="table",
):
    """Makes a multi-task data set from a `pandas.DataFrame`.

    Args:
        frame: The table, one row per example.
        targets: Column -> kind (`"binary"`, `"multiclass"`, `"multilabel"`
            or `"regression"`), `"binary:<positive value>"` or
            `"regression:absolute_error"` (`Task.regression_loss`). A binary
            target has two values (numbers, booleans or strings); without a
            positive value, `1`/`True` or else the less frequent value is
            positive. A multiclass target's classes are its sorted values; a
            multilabel cell lists labels separated by `|`.
        features: Feature columns; `None` takes every other column.
        categorical: Columns to treat as categories: strings, or whole
            numbers (an `IntegerLookup` when the column has no gap).
        id_columns: Columns of row ids, left out of the features (kept in
            `info["ids"]`).
        split: Train, val and test fractions (whole percents), or the name
            of a column holding `train`, `val` or `test` per row.
        seed: Seed of the random split.
        na_values: Further string cells that mean missing (e.g. `"?"`).
        numeric_bins: Train-quantile bins of the piecewise-linear encoding
            that follows each number column, 0 for the standardised value
            alone, or `"auto"` (see `TableEncoder.adapt_columns`).
        encoder: A `TableEncoder` to use (e.g. a trained model's) instead of
            one adapted on this table's train split: it picks the feature
            columns (`features`, `categorical` and `numeric_bins` are then
            ignored) and how
            each is read; categories it has not seen are counted in
            `info["unseen"]` and warned about.
        target_labels: Task name -> the labels a trained model saved for it
            (`TableModel.targets`), to read the targets with (the same class
            codes, the same positive value) instead of this table's values.
        name: Name of the data set.

    Returns:
        A `TableData` whose tasks are named after the target columns (other
        characters than letters, digits and `_` replaced by `_`).

    Raises:
        MMoEExError: naming the column, for a missing column (with the
            closest name), a target kind that does not fit its values (or
            the saved labels), a column mixing numbers and text, a table
            without rows, or a bad split.
    """
    if len(frame) == 0:
        raise MMoEExError(f"Table {name!r} has no rows.")
    na_values = [str(value) for value in na_values]
    frame = _cleaned(frame, na_values)
    specs = {column: target_kind(column, kind) for column, kind in targets.items()}
    split_column = split if isinstance(split, str) else None
    used = [*specs, *id_columns, *([split_column] if split_column else [])]
    given = encoder is not None
    checked = used if given else [*used, *(features or ()), *(categorical or ())]
    for column in checked:
        _check_column(frame, column)
    rows = _split_rows(frame, split, seed)
    if given:
        raw = _encoder_columns(frame, encoder, name)
    else:
        raw, kinds = _feature_columns(frame, features, categorical, used, name)
        train = {c: values[rows["train"]] for c, values in raw.items()}
        encoder = TableEncoder.adapt_columns(
            train, kinds, na_values, numeric_bins, name="encoder"
        )
    unseen = _unseen(encoder, raw, name, warn=given)
    tasks, labels, decoding = [], {}, {}
    for column, (kind, option) in specs.items():
        task_name = _input_names([column])[0]
        saved = (target_labels or {}).get(task_name)
        task, labels[task_name], decoding[task_name] = read_target(
            frame[column], task_name, column, kind, option, saved
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


def encode_rows(frame, encoder, id_columns=(), na_values=(), name="table"):
    """Encodes every row of a new table with a trained encoder.

    Nothing is learnt from the new rows: each input of the encoder is read
    from the column of the same input name as the encoder's column kind,
    and categories it has not seen go to its out-of-vocabulary bucket
    (counted in a warning). No target column is needed.

    Args:
        frame: The table, e.g. new rows to predict.
        encoder: The `TableEncoder` (of a `TableModel`).
        id_columns: Columns of row ids to return beside the features.
        na_values: Further string cells that mean missing.
        name: The table's name, for errors and warnings.

    Returns:
        `(x, ids)`: the float32 features, one row per table row, and the
        id columns as a `DataFrame`.

    Raises:
        MMoEExError: naming the file's missing columns, or a column of text
            where the encoder reads numbers.
    """
    if len(frame) == 0:
        raise MMoEExError(f"Table {name!r} has no rows.")
    for column in id_columns:
        _check_column(frame, column)
    frame = _cleaned(frame, [str(value) for value in na_values])
    raw = _encoder_columns(frame, encoder, name)
    _unseen(encoder, raw, name, warn=True)
    x = _encode(encoder, raw, np.arange(len(frame)))
    return x, frame.loc[:, list(id_columns)].reset_index(drop=True)


def _encoder_columns(frame, encoder, name):
    """A table's raw columns by input name, read as the encoder's kinds."""
    columns = dict(zip(_input_names(list(frame.columns)), frame.columns))
    missing = [c for c in encoder.input_names if c not in columns]
    if missing:
        raise MMoEExError(f"Table {name!r} lacks the model's input columns {missing}.")
    raw = {}
    for spec in encoder.columns:
        column = columns[spec["name"]]
        if spec["kind"] == STRING:
            raw[spec["name"]] = as_text(frame[column])
            continue
        numbers = as_numbers(frame[column], column)
        if numbers is None:
            raise MMoEExError(
                f"Table {name!r}, column {column!r} holds text, but the model "
                f"reads numbers from it (e.g. {frame[column].dropna().iloc[0]!r})."
            )
        raw[spec["name"]] = _read_as(numbers, spec["kind"])
    return raw


def _read_as(numbers, kind):
    """Float numbers as a number (float32) or integer column (int64)."""
    if kind == NUMBER:
        return numbers.astype(np.float32)
    whole = ~np.isnan(numbers) & (numbers == np.round(numbers))
    return np.where(whole, np.nan_to_num(numbers), MISSING_INTEGER).astype(np.int64)


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


def _feature_columns(frame, features, categorical, used, name):
    """The raw feature columns by input name, and their kinds."""
    if features is None:
        features = [c for c in frame.columns if c not in used]
    if not features:
        raise MMoEExError(f"Table {name!r} has no feature column left.")
    categorical = set(categorical or ())
    raw, kinds = {}, {}
    for column, input_name in zip(features, _input_names(features)):
        values = frame[column]
        numbers = as_numbers(values, column)
        if numbers is not None and column in categorical:
            whole = not np.isnan(numbers).any() and (numbers == np.round(numbers)).all()
            numbers = _read_as(numbers, INTEGER) if whole else None
        if numbers is None:
            raw[input_name], kinds[input_name] = as_text(values), STRING
            if pd.Series(raw[input_name]).nunique() == len(values) > 10:
                warnings.warn(
                    f"Column {column!r} has a different value on every row; if "
                    "it is an id, pass it in id_columns.",
                    stacklevel=3,
                )
            continue
        if column in categorical:  # whole numbers without a gap
            raw[input_name], kinds[input_name] = numbers, INTEGER
            continue
        raw[input_name], kinds[input_name] = numbers.astype(np.float32), NUMBER
        if np.isnan(raw[input_name]).all():
            raise MMoEExError(f"Column {column!r} has no value; leave it out.")
    return raw, kinds


def _unseen(encoder, raw, name, warn):
    """Counts the category cells outside the encoder's vocabularies.

    A missing cell of an integer column counts too; all go to the
    out-of-vocabulary bucket. With `warn`, each column with such cells is
    named in a warning.
    """
    counts = {}
    for column in encoder.columns:
        if column["kind"] not in LOOKUPS:
            continue
        known = set(column["vocabulary"])
        if column["kind"] == STRING:
            known |= {MISSING, *encoder.na_values}
        values = pd.Series(raw[column["name"]])
        unseen = ~values.isin(known)
        if unseen.any():
            counts[column["name"]] = int(unseen.sum())
        if unseen.any() and warn:
            example = values[unseen].iloc[0]
            example = "a missing cell" if example == MISSING_INTEGER else repr(example)
            warnings.warn(
                f"Table {name!r}, column {column['name']!r}: {int(unseen.sum())} "
                f"value(s) not seen in training (e.g. {example}) go to the "
                "out-of-vocabulary bucket.",
                stacklevel=3,
            )
    return counts


def _encode(encoder, raw, rows, batch_size=ENCODE_ROWS):
    columns = {c: values[rows] for c, values in raw.items()}
    dataset = tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)
    parts = [np.asarray(encoder(batch)) for batch in dataset]
    if not parts:
        return np.zeros((0, len(encoder.feature_names())), np.float32)
    return np.concatenate(parts).astype(np.float32)
