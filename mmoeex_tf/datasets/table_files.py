"""Reading a table file (CSV, Parquet, Feather) into `from_dataframe`."""

import csv
import gzip
import pathlib

import pandas as pd

from mmoeex_tf.datasets.base import SPLIT_SEED, existing_path, read_csv
from mmoeex_tf.datasets.tables import from_dataframe
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import KINDS

#: Delimiters `from_file` recognises in a CSV file.
DELIMITERS = ",;\t|"
_SAMPLE_BYTES = 65536


def read_table(path, na_values=()):
    """Reads a CSV (any of `DELIMITERS`, plain or gzipped), Parquet or Feather file.

    Args:
        path: The file; `.parquet`/`.pq` and `.feather` by suffix, anything
            else is CSV with a header row.
        na_values: Further cell values that mean missing.

    Returns:
        The `DataFrame`.

    Raises:
        MMoEExError: naming the file if it is missing, unreadable or empty.
    """
    path = existing_path(path, "Table file")
    what = f"Table file {str(path)!r}"
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".feather"):
        reader = pd.read_feather if suffix == ".feather" else pd.read_parquet
        try:
            frame = reader(path)
        except ImportError as err:
            raise MMoEExError(f"{what}: reading {suffix} files needs pyarrow.") from err
        except (OSError, ValueError) as err:
            raise MMoEExError(f"{what} could not be read: {err}") from err
        return frame.replace({str(v): None for v in na_values})
    frame = read_csv(
        path,
        what,
        sep=_delimiter(path, what),
        na_values=list(na_values),
        skipinitialspace=True,
    )
    if len(frame) == 0:
        raise MMoEExError(f"{what} has no rows.")
    return frame


def _delimiter(path, what):
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as file:
            sample = file.read(_SAMPLE_BYTES)
    except (OSError, EOFError) as err:
        raise MMoEExError(f"{what} could not be read: {err}") from err
    if not sample.strip():
        raise MMoEExError(f"{what} is empty.")
    try:
        return csv.Sniffer().sniff(sample.split("\n", 1)[0], DELIMITERS).delimiter
    except csv.Error:
        return ","  # one column


def from_file(path, targets, na_values=(), **kwargs):
    """Reads a table file and makes a multi-task data set of it.

    Args:
        path: A CSV, Parquet or Feather file (see `read_table`).
        targets: As for `from_dataframe`.
        na_values: Further cell values that mean missing (e.g. `"?"`).
        **kwargs: Further `from_dataframe` arguments; `name` defaults to
            the file's name without suffixes.

    Returns:
        A `TableData`.
    """
    frame = read_table(path, na_values)
    kwargs.setdefault("name", pathlib.Path(path).name.split(".")[0] or "table")
    return from_dataframe(frame, targets, na_values=na_values, **kwargs)


def load_table(
    path=None,
    targets=(),
    id_column=None,
    split_column=None,
    na_values=(),
    seed=SPLIT_SEED,
    **kwargs,
):
    """The `table` data set of `mmoeex train --data table`.

    Args:
        path: The table file.
        targets: Targets as `COLUMN:KIND` or `COLUMN:binary:POSITIVE`
            strings, or a dict as for `from_dataframe`.
        id_column: A column of row ids, left out of the features.
        split_column: A column holding each row's split; by default rows are
            split 70/15/15 at random.
        na_values: Further cell values that mean missing.
        seed: Seed of the random split.
        **kwargs: Further `from_dataframe` arguments (`features`,
            `categorical`, `split`, ...).

    Returns:
        A `TableData`.

    Raises:
        MMoEExError: without a file or a target, or for a bad one.
    """
    if path is None:
        raise MMoEExError("The table data set needs data_path (--data-path FILE).")
    if not targets:
        raise MMoEExError(
            "The table data set needs targets (--target COLUMN:KIND, repeated)."
        )
    if isinstance(targets, str):
        targets = [targets]
    if isinstance(na_values, str):
        na_values = [na_values]
    if not isinstance(targets, dict):
        targets = dict(parse_target(spec) for spec in targets)
    if split_column is not None:
        kwargs["split"] = split_column
    return from_file(
        path,
        targets,
        na_values=na_values,
        id_columns=() if id_column is None else (id_column,),
        seed=seed,
        **kwargs,
    )


def parse_target(spec):
    """Splits a target given as `COLUMN:KIND[:POSITIVE]` (command line, YAML).

    Returns:
        `(column, kind)`, the kind with `:POSITIVE` if given.

    Raises:
        MMoEExError: if no part is a task kind.
    """
    parts = str(spec).split(":")
    for index, part in enumerate(parts[1:], start=1):
        if part in KINDS:
            return ":".join(parts[:index]), ":".join(parts[index:])
    raise MMoEExError(
        f"Target {spec!r} must be COLUMN:KIND or COLUMN:binary:POSITIVE, KIND "
        f"one of {', '.join(KINDS)}."
    )
