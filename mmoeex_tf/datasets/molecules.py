"""MoleculeNet CSV files (Tox21, ToxCast, ...): Morgan fingerprints, sparse labels."""

import hashlib
import os
import pathlib
import re
import tempfile
import warnings
import zipfile

import numpy as np

from mmoeex_tf.datasets.base import (
    MultiTaskData,
    existing_path,
    read_csv,
    split_arrays,
    split_indices,
)
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import Task

RADIUS = 2
NUM_BITS = 1024
CACHE_VERSION = 1


def load_moleculenet_csv(path, name=None, cache_dir=None):
    """Loads a MoleculeNet-style CSV: a `smiles` column and binary labels.

    Features: Morgan fingerprints (radius 2, 1,024 bits, RDKit), cached on
    disk in an `.npz` file keyed by a hash of the file's bytes and the
    fingerprint parameters. Molecules RDKit cannot parse are dropped with a
    warning. Every other column is a binary task (0 or 1, blank = missing,
    `NaN` in the labels); task names are the column names with other
    characters than letters, digits and underscores replaced by `_`
    (`label_columns` maps them back). Rows are split 80/10/10 by
    `numpy.random.default_rng(2021).permutation` of the kept molecules;
    `info["rows"]` holds each split's data-row numbers in the file
    (0-based, header excluded).

    Args:
        path: The CSV file, plain or compressed (by its suffix).
        name: Name of the data set; defaults to the file name without its
            suffixes.
        cache_dir: Folder of the fingerprint cache; defaults to
            `$MMOEEX_CACHE`, else `~/.cache/mmoeex_tf`.

    Returns:
        A `MultiTaskData`.

    Raises:
        MMoEExError: if the file is missing or unreadable, has no `smiles`
            column or no label column, has labels other than 0 and 1, or
            RDKit is not installed.
    """
    path = existing_path(path, "MoleculeNet CSV file")
    name = name or path.name.split(".")[0]
    what = f"{name} file {str(path)!r}"
    frame = read_csv(path, what, dtype={"smiles": str})
    if "smiles" not in frame.columns or frame.shape[1] < 2:
        raise MMoEExError(
            f"{what} needs a 'smiles' column and at least one label column; "
            f"found columns {list(frame.columns)[:10]}."
        )
    columns = [c for c in frame.columns if c != "smiles"]
    try:
        labels = frame[columns].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise MMoEExError(f"{what}: labels must be 0, 1 or blank ({err}).") from err
    bad = ~(np.isnan(labels) | (labels == 0) | (labels == 1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise MMoEExError(
            f"{what}: labels must be 0, 1 or blank; column {columns[col]!r} "
            f"has {labels[row, col].item()!r} on line {row + 2}."
        )
    valid, fingerprints = _cached_fingerprints(
        path, frame["smiles"].fillna("").tolist(), cache_dir
    )
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
    rows = split_indices(len(kept), (80, 10))
    x, y = split_arrays(fingerprints, dict(zip(task_names, labels[kept].T)), rows)
    return MultiTaskData(
        name,
        tuple(Task(t, "binary") for t in task_names),
        x,
        y,
        [f"morgan_{i}" for i in range(NUM_BITS)],
        label_columns=dict(zip(task_names, columns)),
        info={"rows": {s: kept[r] for s, r in rows.items()}},
    )


def load_tox21(path, cache_dir=None):
    """Loads Tox21 (12 assays) from MoleculeNet's `tox21.csv[.gz]`.

    See `load_moleculenet_csv` for the features, labels and split.
    """
    return load_moleculenet_csv(path, name="tox21", cache_dir=cache_dir)


def load_toxcast(path, cache_dir=None):
    """Loads ToxCast (617 assays) from MoleculeNet's `toxcast.csv[.gz]`.

    See `load_moleculenet_csv` for the features, labels and split.
    """
    return load_moleculenet_csv(path, name="toxcast", cache_dir=cache_dir)


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


def _cached_fingerprints(path, smiles, cache_dir):
    """Returns `(parsed mask, fingerprints of the parsed)`, from the cache."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(f"morgan-r{RADIUS}-{NUM_BITS}-v{CACHE_VERSION}".encode())
    folder = pathlib.Path(
        cache_dir
        or os.environ.get("MMOEEX_CACHE")
        or pathlib.Path.home() / ".cache" / "mmoeex_tf"
    ).expanduser()
    cache = folder / f"morgan_r{RADIUS}_{NUM_BITS}_{digest.hexdigest()[:24]}.npz"
    try:
        with np.load(cache) as stored:
            return stored["valid"], np.unpackbits(stored["bits"], axis=1)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        warnings.warn(f"Unreadable fingerprint cache {str(cache)!r} replaced: {err}.")
    valid, fingerprints = morgan_fingerprints(smiles)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=folder, prefix=cache.stem, suffix=".tmp", delete=False
        ) as temporary:
            np.savez(temporary, valid=valid, bits=np.packbits(fingerprints, axis=1))
        os.replace(temporary.name, cache)
    except OSError as err:
        warnings.warn(f"Fingerprint cache {str(cache)!r} not written: {err}.")
    return valid, fingerprints


def morgan_fingerprints(smiles):
    """Computes Morgan fingerprints (radius 2, 1,024 bits) with RDKit.

    Args:
        smiles: A list of SMILES strings.

    Returns:
        `(valid, bits)`: a bool mask of the SMILES RDKit parsed, and a uint8
        `(valid.sum(), 1024)` array of 0/1 bits for those.

    Raises:
        MMoEExError: if RDKit is not installed.
    """
    try:
        from rdkit import Chem, rdBase
        from rdkit.Chem import rdFingerprintGenerator
    except ImportError as err:
        raise MMoEExError(
            "Molecule data sets need RDKit for the fingerprints: pip install rdkit"
        ) from err
    generator = rdFingerprintGenerator.GetMorganGenerator(
        radius=RADIUS, fpSize=NUM_BITS
    )
    with rdBase.BlockLogs():
        molecules = [Chem.MolFromSmiles(s) if s else None for s in smiles]
    valid = np.array([m is not None for m in molecules], dtype=bool)
    bits = np.zeros((int(valid.sum()), NUM_BITS), np.uint8)
    for i, molecule in enumerate(m for m in molecules if m is not None):
        bits[i] = generator.GetFingerprintAsNumPy(molecule)
    return valid, bits
