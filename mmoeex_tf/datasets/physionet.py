"""physio4: PhysioNet/CinC Challenge 2012 ICU stays with four kinds of task."""

import io
import warnings

import numpy as np
import pandas as pd

from mmoeex_tf.datasets.base import (
    MultiTaskData,
    existing_path,
    read_csv,
    split_arrays,
    split_indices,
    standardize,
)
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import Task

TIME_SERIES = (
    "ALP", "ALT", "AST", "Albumin", "BUN", "Bilirubin", "Cholesterol",
    "Creatinine", "DiasABP", "FiO2", "GCS", "Glucose", "HCO3", "HCT", "HR", "K",
    "Lactate", "MAP", "MechVent", "Mg", "NIDiasABP", "NIMAP", "NISysABP", "Na",
    "PaCO2", "PaO2", "Platelets", "RespRate", "SaO2", "SysABP", "Temp",
    "TroponinI", "TroponinT", "Urine", "WBC", "Weight", "pH",
)  # fmt: skip
STATIC = ("Age", "Gender", "Height", "ICUType", "Weight")
NUM_STEPS = 48
# Upper bounds, in hours of remaining stay, of the MIMIC-III benchmark's
# length-of-stay classes: < 1 day, each whole day 1-7, 8-14 days, > 14 days.
LOS_EDGES = 24.0 * np.array([1, 2, 3, 4, 5, 6, 7, 8, 14])
OUTCOME_COLUMNS = (
    "RecordID",
    "SOFA",
    "Length_of_stay",
    "Survival",
    "In-hospital_death",
)
EVENT_COLUMNS = ("Time", "Parameter", "Value")
EVENT_TYPES = {"RecordID": np.int64, "Time": str, "Parameter": str, "Value": float}
TASKS = (
    Task("ihm", "binary", pooling="last"),
    Task("los", "multiclass", output_size=len(LOS_EDGES) + 1, per_step=True),
    Task("decomp", "binary", per_step=True),
    Task("sofa", "regression", pooling="last"),
)
DATA_URL = "https://physionet.org/content/challenge-2012/1.0.0/"


def load_physio4(path=None):
    """Loads physio4: the first 48 h of PhysioNet 2012 ICU stays, four tasks.

    Inputs, `(stays, 48, 79)`: per hour the last value of each of the 37
    time-varying variables (carried forward, else the train mean), an
    observed-this-hour mask per variable, and the static descriptors Age,
    Gender, Height, ICUType and Weight (the values at 00:00, -1 = unknown,
    imputed with the train mean) on every step; all standardised with
    train-split statistics. Step `i` covers hour `[i, i + 1)` (the last
    one also 48:00), and its per-step labels are those at `t = i + 1` hours
    after admission, when the step's data are complete.

    Tasks: `ihm` in-hospital death; `los` per step, the remaining stay
    `24 * Length_of_stay - t` hours in the MIMIC-III benchmark's 10 classes
    (< 1 day, each whole day 1-7, 8-14 days, > 14 days; `NaN` where the
    length of stay is unknown); `decomp` per step, death within 24 h
    (`Survival >= 0` and `24 * Survival - t <= 24`); `sofa` the SOFA score
    (`NaN` where it is -1). Stays are split 70/15/15 by
    `numpy.random.default_rng(2021).permutation` of the sorted RecordIDs;
    `info["record_ids"]` holds each split's RecordIDs.

    Args:
        path: A folder holding the data of PhysioNet/CinC Challenge 2012,
            either the raw layout (one `RECORDID.txt` per stay with a
            `Time,Parameter,Value` header, and `Outcomes-a.txt` in the
            folder or beside it) or a packed long table
            (`*.long*.csv[.gz]` files with columns
            `RecordID,Time,Parameter,Value`, and `Outcomes-*.txt`).

    Returns:
        A `MultiTaskData` named `"physio4"`.

    Raises:
        MMoEExError: if `path` is `None` or does not hold the data in either
            layout, or a file is unreadable.
    """
    if path is None:
        raise MMoEExError(
            "physio4 needs path=<folder>: the data are not bundled. Download "
            f"training set A of the PhysioNet/CinC Challenge 2012 ({DATA_URL}: "
            "set-a.tar.gz, unpacked, and Outcomes-a.txt) and pass the set-a "
            "folder."
        )
    folder = existing_path(path, "physio4 data folder")
    if not folder.is_dir():
        raise MMoEExError(f"physio4: {str(folder)!r} is not a folder.")
    events, outcomes_file = _read_events(folder)
    record_ids = np.unique(events["RecordID"].to_numpy())
    outcomes = _read_outcomes(outcomes_file, record_ids)
    rows = split_indices(len(record_ids), (70, 15))
    inputs, names = _inputs(events, record_ids, rows["train"])
    x, y = split_arrays(inputs, _labels(outcomes), rows)
    info = {"record_ids": {s: record_ids[r] for s, r in rows.items()}}
    return MultiTaskData("physio4", TASKS, x, y, names, info=info)


def _read_events(folder):
    """Reads every stay's events as one table RecordID,Time,Parameter,Value."""
    packed = sorted(folder.glob("*.long*.csv*"))
    if packed:
        frames = []
        for file in packed:
            what = f"physio4 table {str(file)!r}"
            frame = read_csv(file, what, dtype=EVENT_TYPES)
            if tuple(frame.columns) != ("RecordID",) + EVENT_COLUMNS:
                raise MMoEExError(
                    f"{what} has columns {list(frame.columns)}; expected "
                    f"RecordID,{','.join(EVENT_COLUMNS)}."
                )
            frames.append(frame)
        set_name = packed[0].name.split(".")[0]
        return pd.concat(frames, ignore_index=True), _outcomes_file([folder], set_name)
    records = sorted(p for p in folder.glob("*.txt") if p.stem.isdigit())
    if not records:
        raise MMoEExError(
            f"physio4: {str(folder)!r} holds neither packed tables "
            "(*.long*.csv[.gz]) nor per-stay files (RECORDID.txt)."
        )
    chunks = []
    for file in records:
        header, _, body = file.read_bytes().partition(b"\n")
        if header.strip() != b",".join(c.encode() for c in EVENT_COLUMNS):
            raise MMoEExError(
                f"physio4 record file {str(file)!r} must start with the header "
                f"{','.join(EVENT_COLUMNS)}, found {header[:60]!r}."
            )
        body = body.strip()
        if body:
            prefix = file.stem.encode() + b","
            chunks.append(prefix + body.replace(b"\n", b"\n" + prefix) + b"\n")
    what = f"physio4 record files in {str(folder)!r}"
    events = read_csv(
        io.BytesIO(b"".join(chunks)),
        what,
        names=("RecordID",) + EVENT_COLUMNS,
        dtype=EVENT_TYPES,
    )
    return events, _outcomes_file([folder, folder.parent], folder.name)


def _outcomes_file(folders, set_name):
    """Finds the outcomes file; `set-a` data prefer `Outcomes-a.txt`."""
    wanted = f"Outcomes{set_name.removeprefix('set')}.txt"
    for folder in folders:
        found = sorted(folder.glob("Outcomes*.txt"))
        preferred = [f for f in found if f.name == wanted]
        if len(found) == 1 or preferred:
            return (preferred or found)[0]
        if found:
            raise MMoEExError(
                f"physio4: several outcome files in {str(folder)!r} "
                f"({[f.name for f in found]}); keep the one of {set_name!r}."
            )
    raise MMoEExError(
        f"physio4: no Outcomes*.txt file in {' or '.join(map(str, folders))} "
        f"(it comes with the data, {DATA_URL})."
    )


def _read_outcomes(file, record_ids):
    """Returns the outcome rows of `record_ids`, in that order."""
    what = f"physio4 outcomes file {str(file)!r}"
    outcomes = read_csv(file, what, dtype=float)
    absent = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if absent:
        raise MMoEExError(
            f"{what} lacks the columns {absent}; found {list(outcomes.columns)}."
        )
    outcomes = outcomes.drop_duplicates("RecordID").set_index("RecordID")
    unknown = np.setdiff1d(record_ids, outcomes.index.to_numpy())
    if unknown.size:
        raise MMoEExError(
            f"{what} has no row for {unknown.size} stays with data, e.g. "
            f"RecordID {unknown[:5].tolist()}."
        )
    return outcomes.loc[record_ids]


def _minutes(times):
    """Converts `HH:MM` strings to minutes since admission."""
    codes, unique = pd.factorize(times)
    parts = pd.Series(unique).str.extract(r"^\s*(\d+):(\d\d)\s*$").astype(float)
    bad = parts[0].isna().to_numpy()
    if bad.any() or (codes < 0).any():
        example = unique[bad][0] if bad.any() else "an empty value"
        raise MMoEExError(
            f"physio4: times must be HH:MM since admission, found {example!r}."
        )
    return (parts[0] * 60 + parts[1]).to_numpy()[codes]


def _train_means(values, train_rows, names):
    """Per-column means of the known (not NaN) train values; 0 if none."""
    train = values[train_rows].reshape(-1, values.shape[-1])
    known = ~np.isnan(train)
    counts = known.sum(axis=0)
    never = [n for n, c in zip(names, counts) if c == 0]
    if never:
        warnings.warn(  # stacklevel: the caller of load_physio4
            f"physio4: {never} never observed in the train split; imputed as "
            "0 (a constant feature).",
            stacklevel=5,
        )
    return np.where(known, train, 0.0).sum(axis=0) / np.maximum(counts, 1)


def _inputs(events, record_ids, train_rows):
    """Builds the `(stays, 48, features)` inputs and the feature names.

    Per step: the carried-forward time series, their observed masks and the
    static descriptors, standardised with train statistics.
    """
    _warn_unknown_parameters(events)
    frame = _event_frame(events, record_ids)
    descriptor = _is_descriptor(frame)
    num_stays = len(record_ids)
    static = _static_descriptors(frame[descriptor], num_stays, train_rows)
    values = _hourly_values(frame[~descriptor], num_stays)
    filled, observed = _carry_forward(values, train_rows)
    inputs = np.concatenate(
        [
            filled,
            observed.astype(float),
            np.repeat(static[:, None, :], NUM_STEPS, axis=1),
        ],
        axis=-1,
    )
    return standardize(inputs, train_rows), _feature_names()


def _warn_unknown_parameters(events):
    """Warns about parameters that are neither time series nor descriptors.

    The warning counts the rows of each such parameter (blank: `nan`).
    """
    parameters = events["Parameter"]
    unknown = ~parameters.isin([*TIME_SERIES, *STATIC, "RecordID"])
    if unknown.any():
        counts = parameters[unknown].value_counts(dropna=False)
        listed = ", ".join(f"{name} ({count:,})" for name, count in counts.items())
        warnings.warn(  # stacklevel: the caller of load_physio4
            f"physio4: ignoring {int(unknown.sum()):,} rows of "
            f"{len(counts)} unknown parameter(s): {listed}.",
            stacklevel=4,
        )


def _event_frame(events, record_ids):
    """The known values of the first 48 h: stay row, minutes, parameter, value.

    Sorted by stay and time, ties in file order.
    """
    minutes = _minutes(events["Time"])
    frame = pd.DataFrame(
        {
            "stay": np.searchsorted(record_ids, events["RecordID"].to_numpy()),
            "minutes": minutes,
            "parameter": events["Parameter"].to_numpy(),
            "value": events["Value"].to_numpy(),
        }
    )
    frame = frame[(minutes <= 60 * NUM_STEPS) & frame["value"].notna()]
    return frame.sort_values(["stay", "minutes"], kind="stable")


def _is_descriptor(frame):
    """Rows holding a static descriptor: its first value at 00:00."""
    return (
        frame["parameter"].isin(STATIC)
        & (frame["minutes"] == 0)
        & ~frame.duplicated(["stay", "parameter"])
    )


def _static_descriptors(descriptors, num_stays, train_rows):
    """The `(stays, 5)` descriptors; unknown ones (-1 or absent) as train means."""
    static = (
        descriptors.pivot(index="stay", columns="parameter", values="value")
        .reindex(index=range(num_stays), columns=list(STATIC))
        # A copy: without reindexing, pandas may hand out a read-only view.
        .to_numpy(dtype=float, copy=True)
    )
    static[static == -1] = np.nan
    return np.where(np.isnan(static), _train_means(static, train_rows, STATIC), static)


def _hourly_values(frame, num_stays):
    """The `(stays, 48, 37)` last value of each time series per hour, else NaN.

    Step `i` holds hour `[i, i + 1)`; the last step also 48:00.
    """
    series = frame[frame["parameter"].isin(TIME_SERIES)]
    series = series.assign(
        step=np.minimum(series["minutes"].to_numpy() // 60, NUM_STEPS - 1).astype(int),
        variable=pd.Categorical(series["parameter"], categories=TIME_SERIES).codes,
    ).drop_duplicates(["stay", "step", "variable"], keep="last")
    values = np.full((num_stays, NUM_STEPS, len(TIME_SERIES)), np.nan)
    cells = tuple(series[c].to_numpy() for c in ("stay", "step", "variable"))
    values[cells] = series["value"].to_numpy()
    return values


def _carry_forward(values, train_rows):
    """Fills each gap with the last value seen, before any with the train mean.

    Returns:
        The filled values and the observed-this-step mask, both shaped like
        `values`.
    """
    observed = ~np.isnan(values)
    last_seen = np.maximum.accumulate(
        np.where(observed, np.arange(NUM_STEPS)[:, None], -1), axis=1
    )
    carried = np.take_along_axis(values, np.maximum(last_seen, 0), axis=1)
    means = _train_means(values, train_rows, TIME_SERIES)
    return np.where(last_seen >= 0, carried, means), observed


def _feature_names():
    """Names of the 79 input features, in their order."""
    return [
        *TIME_SERIES,
        *(f"{v}_observed" for v in TIME_SERIES),
        *(f"static_{s}" for s in STATIC),
    ]


def _labels(outcomes):
    """Builds the four tasks' labels from the outcome rows."""
    hours = np.arange(1, NUM_STEPS + 1, dtype=float)
    known = outcomes.replace(-1.0, np.nan)
    remaining = 24.0 * known["Length_of_stay"].to_numpy()[:, None] - hours
    los = np.searchsorted(LOS_EDGES, remaining, side="right").astype(float)
    los[np.isnan(remaining)] = np.nan
    survival = outcomes["Survival"].to_numpy()[:, None]
    decomp = (survival >= 0) & (24.0 * survival - hours <= 24.0)
    return {
        "ihm": known["In-hospital_death"].to_numpy(),
        "los": los,
        "decomp": decomp.astype(float),
        "sofa": known["SOFA"].to_numpy(),
    }
