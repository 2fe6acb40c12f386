"""MoleculeNet CSV files (Tox21, ToxCast, ESOL, ...): features, labels, splits.

Binary and regression labels, missing ones `NaN`; random or scaffold splits.
"""

import difflib
import re
import warnings

import numpy as np
import pandas as pd

from mmoeex_tf.choices import SPLIT_KINDS
from mmoeex_tf.datasets.base import (
    SPLITS,
    MultiTaskData,
    existing_path,
    read_csv,
    split_arrays,
    split_indices,
)
from mmoeex_tf.datasets.molecule_features import (
    NUM_BITS,
    cached_features,
    descriptor_columns,
    descriptor_names,
    descriptor_statistics,
    encode_descriptors,
    rdkit_modules,
)
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import Task


def load_moleculenet_csv(
    path,
    name=None,
    cache_dir=None,
    smiles_column=None,
    label_columns=None,
    split="random",
    descriptors=True,
    statistics=None,
):
    """Loads a MoleculeNet-style CSV: a SMILES column and label columns.

    Features (`mmoeex_tf.datasets.molecule_features`, cached on disk):
    Morgan fingerprints (radius 2, 1,024 bits, RDKit), then, with
    `descriptors`, RDKit's 2D descriptors (217 in RDKit 2026.09), each
    clipped to its 1st-99th train percentiles and standardised with train
    statistics (`info["statistics"]`; a missing value becomes the train
    mean). RDKit cannot run inside a saved model, so these stay the model's
    input; a model saved by `mmoeex train` keeps the statistics and encodes
    new molecules with them. Molecules RDKit cannot parse are dropped with a
    warning that counts them.

    Labels: `label_columns`, or else every column but the SMILES whose
    filled cells are mostly numbers (id and name columns such as
    DeepChem's `mol_id` are left out; they are listed in
    `info["ignored_columns"]`). A column of 0, 1 and blanks
    is a binary task, any other numeric column a regression task (ESOL,
    FreeSolv, Lipophilicity); blank = missing, `NaN` in the labels. Task
    names are the column names with other characters than letters, digits
    and underscores replaced by `_` (`label_columns` maps them back).

    Split 80/10/10: `"random"` by `numpy.random.default_rng(2021)
    .permutation` of the kept molecules; `"scaffold"` by Bemis-Murcko
    scaffold (`scaffold_split`), so that no scaffold is in two splits.
    `info["rows"]` holds each split's data-row numbers in the file (0-based,
    header excluded).

    Args:
        path: The CSV file, plain or compressed (by its suffix).
        name: Name of the data set; defaults to the file name without its
            suffixes (`esol.csv` -> `"esol"`).
        cache_dir: Folder of the fingerprint cache; defaults to
            `$MMOEEX_CACHE`, else `~/.cache/mmoeex_tf`.
        smiles_column: The column of SMILES; defaults to the column named
            `smiles` in any case.
        label_columns: The label columns; defaults to every numeric column
            but the SMILES.
        split: `"random"` or `"scaffold"`.
        descriptors: Add the RDKit descriptors to the fingerprint bits.
        statistics: `info["statistics"]` of the data a model was trained
            on: encode the descriptors with them instead of this file's
            train split.

    Returns:
        A `MultiTaskData`.

    Raises:
        MMoEExError: if the file is missing or unreadable, has no SMILES
            column or no label column, a named column is missing or a label
            column is not numeric (the column is named), `split` is
            unknown, `statistics` are given without `descriptors`, are not a
            molecule data set's or name descriptors the installed RDKit
            lacks, or RDKit is not installed.
    """
    if split not in SPLIT_KINDS:
        raise MMoEExError(f"split must be one of {SPLIT_KINDS}, not {split!r}.")
    path = existing_path(path, "MoleculeNet CSV file")
    name = name or path.name.split(".")[0]
    what = f"{name} file {str(path)!r}"
    frame = read_csv(path, what, dtype=str)
    smiles_column = _smiles_column(frame, smiles_column, what)
    columns, labels, ignored = _labels(frame, smiles_column, label_columns, what)
    smiles = frame[smiles_column].fillna("").tolist()
    if statistics is not None and not descriptors:
        raise MMoEExError(
            f"{what}: statistics of descriptors were given (a model trained on "
            "them), but descriptors=False asks for the fingerprint bits only."
        )
    # Saved statistics are checked before the features are computed.
    positions = None if statistics is None else descriptor_columns(statistics, what)
    valid, fingerprints, values = cached_features(smiles, descriptors, cache_dir)
    if not valid.all():
        dropped = np.flatnonzero(~valid)
        warnings.warn(
            f"{what}: RDKit could not parse {dropped.size} SMILES; dropped "
            f"them (file lines {', '.join(map(str, dropped[:5] + 2))}"
            f"{', ...' if dropped.size > 5 else ''}).",
            stacklevel=2,
        )
    task_names = _task_names(columns)
    kept = np.flatnonzero(valid)
    if split == "scaffold":
        rows = scaffold_split([smiles[i] for i in kept], (80, 10))
    else:
        rows = split_indices(len(kept), (80, 10))
    feature_names = [f"morgan_{i}" for i in range(NUM_BITS)]
    info = {
        "rows": {s: kept[r] for s, r in rows.items()},
        "smiles_column": smiles_column,
        "ignored_columns": ignored,
        "split": split,
    }
    features = fingerprints.astype(np.float32)
    if descriptors:
        if statistics is None:
            statistics = descriptor_statistics(
                values[rows["train"]], descriptor_names()
            )
        else:
            values = values[:, positions]
        encoded = encode_descriptors(values, statistics)
        features = np.concatenate([features, encoded], axis=1)
        feature_names += [f"rdkit_{d}" for d in statistics["descriptors"]]
        info["statistics"] = statistics
    x, y = split_arrays(features, dict(zip(task_names, labels[kept].T)), rows)
    tasks = tuple(Task(t, _kind(column)) for t, column in zip(task_names, labels.T))
    return MultiTaskData(
        name,
        tasks,
        x,
        y,
        feature_names,
        label_columns=dict(zip(task_names, columns)),
        info=info,
    )


def _smiles_column(frame, given, what):
    """The SMILES column: `given`, else the one named `smiles` in any case."""
    if given is None:
        found = [c for c in frame.columns if str(c).strip().lower() == "smiles"]
        if found:
            return found[0]
        raise MMoEExError(
            f"{what} has no SMILES column (one named 'smiles'); name it with "
            f"smiles_column (--smiles-column). Its columns: {_listed(frame.columns)}."
        )
    _check_columns(frame, [given], what, "SMILES column")
    return given


def _labels(frame, smiles_column, label_columns, what):
    """`(columns, float labels (rows, columns), ignored columns)`."""
    others = [c for c in frame.columns if c != smiles_column]
    if label_columns is None:
        numeric = {c: pd.to_numeric(frame[c], errors="coerce") for c in others}
        # A column counts as labels when most of its filled cells are
        # numbers; a stray text cell in it is then an error, not a reason
        # to drop the task.
        columns = [c for c in others if 2 * numeric[c].notna().sum() > frame[c].count()]
        ignored = [c for c in others if c not in columns]
        if not columns:
            raise MMoEExError(
                f"{what} has no numeric label column besides the SMILES column "
                f"{smiles_column!r}; not numeric: {_listed(ignored)}."
            )
    else:
        columns = list(label_columns)
        _check_columns(frame, columns, what, "label column")
        if smiles_column in columns:
            raise MMoEExError(
                f"{what}: {smiles_column!r} is the SMILES column, not a label."
            )
        ignored = [c for c in others if c not in columns]
    values = []
    for column in columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna()
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0])
            raise MMoEExError(
                f"{what}: label column {column!r} must hold numbers or blanks; "
                f"it has {frame[column].iloc[line]!r} on line {line + 2} "
                f"({int(bad.sum())} such cells)."
            )
        values.append(numbers.to_numpy(dtype=float))
    return columns, np.stack(values, axis=1), ignored


def _check_columns(frame, columns, what, role):
    for column in columns:
        if column not in frame.columns:
            close = difflib.get_close_matches(str(column), map(str, frame.columns), 1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise MMoEExError(
                f"{what} has no {role} {column!r}.{hint} Its columns: "
                f"{_listed(frame.columns)}."
            )


def _listed(columns, limit=12):
    columns = [str(c) for c in columns]
    more = f", ... ({len(columns)} in all)" if len(columns) > limit else ""
    return ", ".join(repr(c) for c in columns[:limit]) + more


def _kind(labels):
    present = labels[~np.isnan(labels)]
    return "binary" if np.isin(present, (0.0, 1.0)).all() else "regression"


def load_tox21(path, cache_dir=None, descriptors=True, statistics=None):
    """Loads Tox21 (12 assays) from MoleculeNet's `tox21.csv[.gz]`.

    See `load_moleculenet_csv` for the features, labels, split and
    arguments.
    """
    return load_moleculenet_csv(
        path, "tox21", cache_dir, descriptors=descriptors, statistics=statistics
    )


def load_toxcast(path, cache_dir=None, descriptors=True, statistics=None):
    """Loads ToxCast (617 assays) from MoleculeNet's `toxcast.csv[.gz]`.

    See `load_moleculenet_csv` for the features, labels, split and
    arguments.
    """
    return load_moleculenet_csv(
        path, "toxcast", cache_dir, descriptors=descriptors, statistics=statistics
    )


def _task_names(columns):
    names = []
    for column in columns:
        base = re.sub(r"\W", "_", str(column), flags=re.ASCII)
        base = base if re.match(r"[A-Za-z]", base) else f"task_{base}"
        unique, count = base, 1
        while unique in names:
            count += 1
            unique = f"{base}_{count}"
        names.append(unique)
    return names


def scaffold_split(smiles, fractions):
    """Splits molecules by Bemis-Murcko scaffold, no scaffold in two splits.

    Molecules are grouped by the SMILES of their Bemis-Murcko scaffold
    (RDKit's `MurckoScaffold`; acyclic molecules share the empty scaffold).
    The groups, largest first (ties: the one whose first molecule comes
    first), go to train while it stays within `fractions[0]` percent of the
    molecules, then to val within `fractions[1]`, the rest to test, as
    DeepChem's `ScaffoldSplitter` does. Test thus gets the rarest scaffolds.

    Args:
        smiles: SMILES strings RDKit can parse.
        fractions: Train and val shares in percent, e.g. `(80, 10)`.

    Returns:
        A dict split name -> sorted int64 positions in `smiles`.

    Raises:
        MMoEExError: if RDKit is not installed.
    """
    Chem, rdBase = rdkit_modules()
    from rdkit.Chem.Scaffolds import MurckoScaffold

    groups = {}
    with rdBase.BlockLogs():
        for index, text in enumerate(smiles):
            scaffold = MurckoScaffold.MurckoScaffoldSmiles(
                mol=Chem.MolFromSmiles(text), includeChirality=False
            )
            groups.setdefault(scaffold, []).append(index)
    ordered = sorted(groups.values(), key=lambda rows: (-len(rows), rows[0]))
    train_end = len(smiles) * fractions[0] / 100
    val_end = len(smiles) * (fractions[0] + fractions[1]) / 100
    parts = {name: [] for name in SPLITS}
    for rows in ordered:
        if len(parts["train"]) + len(rows) <= train_end:
            parts["train"] += rows
        elif len(parts["train"]) + len(parts["val"]) + len(rows) <= val_end:
            parts["val"] += rows
        else:
            parts["test"] += rows
    return {name: np.sort(np.asarray(rows, np.int64)) for name, rows in parts.items()}
