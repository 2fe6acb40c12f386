"""census3: UCI Census-Income (KDD) with three binary tasks."""

import importlib.resources

import numpy as np
import pandas as pd

from mmoeex_tf.datasets.base import (
    MultiTaskData,
    existing_path,
    read_csv,
    split_arrays,
    split_indices,
)
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.piecewise_linear import (
    bin_names,
    piecewise_linear,
    quantile_edges,
)
from mmoeex_tf.tasks import Task

COLUMNS = (
    "age",
    "class of worker",
    "detailed industry recode",
    "detailed occupation recode",
    "education",
    "wage per hour",
    "enroll in edu inst last wk",
    "marital stat",
    "major industry code",
    "major occupation code",
    "race",
    "hispanic origin",
    "sex",
    "member of a labor union",
    "reason for unemployment",
    "full or part time employment stat",
    "capital gains",
    "capital losses",
    "dividends from stocks",
    "tax filer stat",
    "region of previous residence",
    "state of previous residence",
    "detailed household and family stat",
    "detailed household summary in household",
    "instance weight",
    "migration code-change in msa",
    "migration code-change in reg",
    "migration code-move within reg",
    "live in this house 1 year ago",
    "migration prev res in sunbelt",
    "num persons worked for employer",
    "family members under 18",
    "country of birth father",
    "country of birth mother",
    "country of birth self",
    "citizenship",
    "own business or self employed",
    "fill inc questionnaire for veteran's admin",
    "veterans benefits",
    "weeks worked in year",
    "year",
    "income label",
)
NUMERIC_COLUMNS = (0, 5, 16, 17, 18, 30, 39)
EDUCATION, MARITAL, WEIGHT, INCOME = 4, 7, 24, 41
INCOME_VALUES = ("- 50000.", "50000+.")
HIGHER_EDUCATION = (
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Doctorate degree(PhD EdD)",
    "Prof school degree (MD DDS DVM LLB JD)",
)
TASKS = (
    Task("income", "binary"),
    Task("marital", "binary"),
    Task("education", "binary"),
)
BUNDLED_FILE = "census-income.test.gz"


def load_census3(path=None):
    """Loads census3: UCI Census-Income (KDD) with three binary tasks.

    Tasks: `income` (income label is `50000+.`), `marital` (never married)
    and `education` (a bachelor's, master's, doctorate or professional
    degree). Features: every column but education, marital status, the
    instance weight and the income label; each numeric column min-max
    scaled and followed by its piecewise-linear encoding on 128 quantile
    bins (`layers.piecewise_linear`), the others one-hot, all with
    train-split statistics only (categories absent from train get all
    zeros). Rows are split 60/20/20 by
    `numpy.random.default_rng(2021).permutation`; `info["rows"]` holds each
    split's row numbers in the file.

    Args:
        path: A UCI `census-income.data` or `census-income.test` file, plain
            or gzipped. `None` loads the copy of the 99,762-row test file
            bundled with the package (UCI, CC BY 4.0).

    Returns:
        A `MultiTaskData` named `"census3"`.

    Raises:
        MMoEExError: if the file is missing, unreadable or not in the UCI
            census-income format.
    """
    if path is None:
        resource = importlib.resources.files(__package__) / "data" / BUNDLED_FILE
        with importlib.resources.as_file(resource) as bundled:
            frame = _read(bundled)
    else:
        frame = _read(existing_path(path, "census3 data file"))
    rows = split_indices(len(frame), (60, 20))
    labels = {
        "income": frame[INCOME] == INCOME_VALUES[1],
        "marital": frame[MARITAL] == "Never married",
        "education": frame[EDUCATION].isin(HIGHER_EDUCATION),
    }
    features, names = _features(frame, rows["train"])
    x, y = split_arrays(features, {k: v.to_numpy() for k, v in labels.items()}, rows)
    return MultiTaskData("census3", TASKS, x, y, names, info={"rows": rows})


def _read(path):
    what = f"census3 data file {str(path)!r}"
    frame = read_csv(
        path,
        what,
        header=None,
        sep=",",
        skipinitialspace=True,
        dtype=str,
        na_filter=False,
    )
    if frame.shape[1] != len(COLUMNS):
        raise MMoEExError(
            f"{what} has {frame.shape[1]} comma-separated "
            f"columns; the UCI census-income format has {len(COLUMNS)}."
        )
    for column in (EDUCATION, MARITAL, INCOME):
        frame[column] = frame[column].str.strip()
    bad = ~frame[INCOME].isin(INCOME_VALUES)
    if bad.any():
        raise MMoEExError(
            f"{what} is not in the census-income format: the "
            f"last column ({COLUMNS[INCOME]}) must be {INCOME_VALUES[0]!r} or "
            f"{INCOME_VALUES[1]!r}, found {frame[INCOME][bad].iloc[0]!r} on "
            f"line {bad.to_numpy().argmax() + 1}."
        )
    for column in NUMERIC_COLUMNS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna()
        if bad.any():
            raise MMoEExError(
                f"{what}: column {column} ({COLUMNS[column]}) "
                f"must be numeric, found {frame[column][bad].iloc[0]!r} on line "
                f"{bad.to_numpy().argmax() + 1}."
            )
        frame[column] = numbers
    return frame


def _features(frame, train_rows):
    blocks, names = [], []
    for column, name in enumerate(COLUMNS):
        if column in (EDUCATION, MARITAL, WEIGHT, INCOME):
            continue
        values = frame[column].to_numpy()
        if column in NUMERIC_COLUMNS:
            values = values.astype(np.float32)
            low, high = values[train_rows].min(), values[train_rows].max()
            scaled = (
                (values - low) / (high - low) if high > low else np.zeros_like(values)
            )
            edges = quantile_edges(values[train_rows])
            blocks.extend([scaled[:, None], piecewise_linear(values, edges).numpy()])
            names.extend([name, *bin_names(name, edges)])
        else:
            categories = sorted(pd.unique(values[train_rows]))
            codes = pd.Categorical(values, categories=categories).codes
            one_hot = np.zeros((len(values), len(categories)), np.float32)
            seen = np.flatnonzero(codes >= 0)
            one_hot[seen, codes[seen]] = 1.0
            blocks.append(one_hot)
            names.extend(f"{name}={c.strip()}" for c in categories)
    return np.concatenate(blocks, axis=1), names
