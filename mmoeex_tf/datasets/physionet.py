"""physio4: PhysioNet/CinC Challenge 2012 ICU stays with four kinds of task."""

import functools
import io

import numpy as np
import pandas as pd

from mmoeex_tf.datasets.base import existing_path, read_csv
from mmoeex_tf.datasets.long_tables import from_long_table
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
# ICUType: coronary care, cardiac surgery recovery, medical, surgical.
ICU_TYPES = (1, 2, 3, 4)
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
    Task("ihm", "binary", pooling="summary"),
    Task("los", "multiclass", output_size=len(LOS_EDGES) + 1, per_step=True),
    Task("decomp", "binary", per_step=True),
    Task("sofa", "regression", pooling="summary"),
)
DATA_URL = "https://physionet.org/content/challenge-2012/1.0.0/"
# Outcome column -> the per-stay task it labels.
SEQUENCE_LABELS = {"In-hospital_death": "ihm", "SOFA": "sofa"}
# How `from_long_table` reads the events (and the per-step label rows).
LONG_TABLE = {
    "id": "RecordID",
    "time": "Time",
    "variable": "Parameter",
    "value": "Value",
    "targets": TASKS,
    "series": TIME_SERIES,
    "static": STATIC,
    "categorical": {"ICUType": ICU_TYPES},
    "na_values": (-1.0,),
    "steps": NUM_STEPS,
    "step": "1h",
    "split": (70, 15),
    "name": "physio4",
}


def load_physio4(path=None, outcomes=None, statistics=None):
    """Loads physio4: the first 48 h of PhysioNet 2012 ICU stays, four tasks.

    The stays' events become sequences with `from_long_table`. Inputs,
    `(stays, 48, 82)`: per hour the last value of each of the 37
    time-varying variables (carried forward, else the train mean), an
    observed-this-hour mask per variable, and the static descriptors Age,
    Gender, Height and Weight (the values at 00:00, -1 = unknown, imputed
    with the train mean) and ICUType one-hot (coronary care, cardiac surgery
    recovery, medical, surgical; unknown: all zeros) on every step; all
    standardised with train-split statistics. A value of -1 counts as
    unknown everywhere. Step `i` covers hour `[i, i + 1)` (the last one also
    48:00), and its per-step labels are those at `t = i + 1` hours after
    admission, when the step's data are complete.

    Tasks: `ihm` in-hospital death; `los` per step, the remaining stay
    `24 * Length_of_stay - t` hours in the MIMIC-III benchmark's 10 classes
    (< 1 day, each whole day 1-7, 8-14 days, > 14 days; `NaN` where the
    length of stay is unknown); `decomp` per step, death within 24 h
    (`Survival >= 0` and `24 * Survival - t <= 24`); `sofa` the SOFA score
    (`NaN` where it is -1). Stays are split 70/15/15 by
    `numpy.random.default_rng(2021).permutation` of the sorted RecordIDs;
    `info["record_ids"]` holds each split's RecordIDs, `info["statistics"]`
    the train statistics of the inputs.

    Args:
        path: A folder holding the data of PhysioNet/CinC Challenge 2012,
            either the raw layout (one `RECORDID.txt` per stay with a
            `Time,Parameter,Value` header) or a packed long table
            (`*.long*.csv[.gz]` files with columns
            `RecordID,Time,Parameter,Value`).
        outcomes: The outcomes file of the stays (columns `RecordID`,
            `SOFA`, `Length_of_stay`, `Survival`, `In-hospital_death`);
            default: the `Outcomes*.txt` in the folder or, for the raw
            layout, beside it (`Outcomes-a.txt` for `set-a`).
        statistics: `info["statistics"]` of the data a model was trained
            on: encode these stays with them (e.g. to score that model on
            another set) instead of with this set's train split.

    Returns:
        A `MultiTaskData` named `"physio4"`.

    Raises:
        MMoEExError: if `path` is `None` or does not hold the data in either
            layout, a file is unreadable, or `statistics` are not physio4's.
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
    events, default_outcomes = _read_events(folder)
    events = events[events["Parameter"] != "RecordID"]
    record_ids = np.unique(events["RecordID"].to_numpy())
    if outcomes is None:
        outcomes = default_outcomes()
    outcome_rows = _read_outcomes(
        existing_path(outcomes, "physio4 outcomes file"), record_ids
    )
    data = from_long_table(
        pd.concat([events, _step_labels(outcome_rows)], ignore_index=True),
        outcomes=outcome_rows.rename(columns=SEQUENCE_LABELS),
        statistics=statistics,
        **LONG_TABLE,
    )
    data.info["record_ids"] = data.info.pop("ids")
    return data


def _read_events(folder):
    """Reads every stay's events as one table RecordID,Time,Parameter,Value.

    Returns:
        The events and a function that finds the default outcomes file.
    """
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
        events = pd.concat(frames, ignore_index=True)
        return events, functools.partial(_outcomes_file, [folder], set_name)
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
    return events, functools.partial(
        _outcomes_file, [folder, folder.parent], folder.name
    )


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
    """Returns the outcome rows of `record_ids`, indexed by RecordID."""
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


def _step_labels(outcomes):
    """The per-step labels `los` and `decomp` as rows of the long table.

    Each stay gets one row per task at `t` = 01:00, ..., 48:00, the end of
    step `t - 1`; an unknown `los` is `NaN`.
    """
    hours = np.arange(1, NUM_STEPS + 1, dtype=float)
    remaining = 24.0 * outcomes["Length_of_stay"].replace(-1.0, np.nan).to_numpy()
    remaining = remaining[:, None] - hours
    los = np.searchsorted(LOS_EDGES, remaining, side="right").astype(float)
    los[np.isnan(remaining)] = np.nan
    survival = outcomes["Survival"].to_numpy()[:, None]
    decomp = ((survival >= 0) & (24.0 * survival - hours <= 24.0)).astype(float)
    times = [f"{hour:02d}:00" for hour in range(1, NUM_STEPS + 1)]
    return pd.concat(
        pd.DataFrame(
            {
                "RecordID": np.repeat(outcomes.index.to_numpy(), NUM_STEPS),
                "Time": np.tile(times, len(outcomes)),
                "Parameter": task,
                "Value": labels.ravel(),
            }
        )
        for task, labels in (("los", los), ("decomp", decomp))
    )
