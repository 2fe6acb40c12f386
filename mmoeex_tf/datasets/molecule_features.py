"""A molecule's features: Morgan fingerprint bits and RDKit 2D descriptors.

RDKit cannot run inside a saved model, so the features are computed when
the data are loaded and cached on disk (`cached_features`). Fingerprint bits
are the model's inputs as they are; descriptors (molecular weight, logP,
ring counts, charges, ... ; RDKit's `Descriptors.descList`) span many
orders of magnitude, so `descriptor_statistics` takes clipping bounds,
means and scales from the train split and `encode_descriptors` applies
them, to the train split and to any later data a model trained on them
reads.
"""

import hashlib
import os
import pathlib
import tempfile
import warnings
import zipfile

import numpy as np

from mmoeex_tf.errors import MMoEExError

RADIUS = 2
NUM_BITS = 1024
CACHE_VERSION = 1
#: Descriptor values outside these train-split percentiles are clipped to
#: them (a few descriptors, e.g. `Ipc`, reach 1e30 on large molecules).
CLIP_PERCENTILES = (1.0, 99.0)
#: Fields of a descriptor encoding's statistics, all JSON lists.
STATISTICS_FIELDS = ("descriptors", "low", "high", "mean", "scale")


def parsed_molecules(smiles):
    """RDKit molecules of SMILES strings, None where RDKit cannot parse one."""
    Chem, rdBase = rdkit_modules()
    with rdBase.BlockLogs():
        return [Chem.MolFromSmiles(s) if s else None for s in smiles]


def morgan_fingerprints(molecules):
    """Morgan fingerprints (radius 2, 1,024 bits) of RDKit molecules.

    Args:
        molecules: RDKit molecules (none of them None).

    Returns:
        A uint8 `(len(molecules), 1024)` array of 0/1 bits.
    """
    rdkit_modules()
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(
        radius=RADIUS, fpSize=NUM_BITS
    )
    bits = np.zeros((len(molecules), NUM_BITS), np.uint8)
    for i, molecule in enumerate(molecules):
        bits[i] = generator.GetFingerprintAsNumPy(molecule)
    return bits


def descriptor_names():
    """The names of the installed RDKit's 2D descriptors, in its order."""
    rdkit_modules()
    from rdkit.Chem import Descriptors

    return [name for name, _ in Descriptors.descList]


def rdkit_descriptors(molecules):
    """RDKit's 2D descriptors (`descriptor_names`) of RDKit molecules.

    Args:
        molecules: RDKit molecules (none of them None).

    Returns:
        A float64 `(len(molecules), len(descriptor_names()))` array; NaN
        where RDKit could not compute a value.
    """
    _, rdBase = rdkit_modules()
    from rdkit.Chem import Descriptors

    names = descriptor_names()
    values = np.full((len(molecules), len(names)), np.nan)
    with rdBase.BlockLogs():
        for i, molecule in enumerate(molecules):
            computed = Descriptors.CalcMolDescriptors(molecule, missingVal=np.nan)
            values[i] = [computed[name] for name in names]
    return values


def cached_features(smiles, descriptors, cache_dir=None):
    """The parsed mask, fingerprints and descriptors of SMILES, via the cache.

    Each part is cached in its own `.npz` file under `cache_dir`, keyed by a
    hash of the SMILES and the part's parameters (for descriptors, RDKit's
    version and descriptor names), written to a temporary name and then
    renamed. An unreadable cache file is recomputed with a warning.

    Args:
        smiles: A list of SMILES strings.
        descriptors: Also compute (or read) the RDKit descriptors.
        cache_dir: The cache folder; defaults to `$MMOEEX_CACHE`, else
            `~/.cache/mmoeex_tf`.

    Returns:
        `(valid, bits, values)`: a bool mask of the SMILES RDKit parsed, the
        uint8 `(valid.sum(), 1024)` fingerprint bits of those and their
        float64 descriptor values (`rdkit_descriptors`), or None without
        `descriptors`.

    Raises:
        MMoEExError: if RDKit is not installed.
    """
    folder = pathlib.Path(
        cache_dir
        or os.environ.get("MMOEEX_CACHE")
        or pathlib.Path.home() / ".cache" / "mmoeex_tf"
    ).expanduser()
    molecules = []  # parsed on the first cache miss only

    def parsed():
        if not molecules:
            molecules.extend(parsed_molecules(smiles))
        return [m for m in molecules if m is not None]

    def fingerprints():
        bits = morgan_fingerprints(parsed())
        valid = np.array([m is not None for m in molecules], dtype=bool)
        return {"valid": valid, "bits": np.packbits(bits, axis=1)}

    stored = _cached(
        folder / f"morgan_r{RADIUS}_{NUM_BITS}_{_digest(smiles, 'morgan')}.npz",
        fingerprints,
    )
    valid, bits = stored["valid"], np.unpackbits(stored["bits"], axis=1)
    if not descriptors:
        return valid, bits, None
    from rdkit import __version__ as rdkit_version

    names = descriptor_names()
    key = _digest(smiles, f"rdkit-{rdkit_version}-{','.join(names)}")
    stored = _cached(
        folder / f"rdkit_descriptors_{key}.npz",
        lambda: {"values": rdkit_descriptors(parsed())},
    )
    return valid, bits, stored["values"]


def _digest(smiles, parameters):
    digest = hashlib.sha256("\n".join(smiles).encode())
    digest.update(f"{parameters}-r{RADIUS}-{NUM_BITS}-v{CACHE_VERSION}".encode())
    return digest.hexdigest()[:24]


def _cached(path, compute):
    """The arrays stored at `path`, or `compute()`'s, then stored there."""
    try:
        with np.load(path) as stored:
            return dict(stored)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        warnings.warn(f"Unreadable feature cache {str(path)!r} replaced: {err}.")
    arrays = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=path.stem, suffix=".tmp", delete=False
        ) as temporary:
            np.savez(temporary, **arrays)
        os.replace(temporary.name, path)
    except OSError as err:
        warnings.warn(f"Feature cache {str(path)!r} not written: {err}.")
    return arrays


def descriptor_statistics(values, names):
    """Clipping bounds, means and scales of descriptors, from the train split.

    Args:
        values: The train split's `(n, len(names))` descriptor values
            (`rdkit_descriptors`; NaN and infinities count as missing).
        names: The descriptors' names.

    Returns:
        A dict of JSON lists (`STATISTICS_FIELDS`): `descriptors` (the
        names), `low` and `high` (the `CLIP_PERCENTILES` of each), `mean`
        and `scale` (mean and standard deviation of the clipped values; 1
        where that is 0 or no value is present).
    """
    values = np.where(np.isfinite(values), values, np.nan)
    present = np.isfinite(values).any(axis=0)
    filled = np.where(present, values, 0.0)  # a column without any value
    low, high = np.nanpercentile(filled, CLIP_PERCENTILES, axis=0)
    clipped = np.clip(filled, low, high)
    mean = np.nanmean(clipped, axis=0)
    scale = np.nanstd(clipped, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return {
        "descriptors": list(names),
        **{
            field: [float(v) for v in column]
            for field, column in zip(STATISTICS_FIELDS[1:], (low, high, mean, scale))
        },
    }


def encode_descriptors(values, statistics):
    """Descriptors clipped, standardised and imputed with train statistics.

    Args:
        values: `(n, descriptors)` raw values, in `statistics["descriptors"]`'
            order.
        statistics: As from `descriptor_statistics`.

    Returns:
        float32 `(n, descriptors)`: each value clipped to `[low, high]`,
        minus `mean`, divided by `scale`; a missing value (NaN, infinite)
        becomes 0, the train mean.
    """
    low, high, mean, scale = (
        np.asarray(statistics[field], np.float64) for field in STATISTICS_FIELDS[1:]
    )
    encoded = (np.clip(values, low, high) - mean) / scale
    return np.where(np.isfinite(values), encoded, 0.0).astype(np.float32)


def descriptor_columns(statistics, what):
    """Where the descriptors of saved statistics are in `descriptor_names()`.

    Args:
        statistics: As from `descriptor_statistics` (a saved model's).
        what: The data the statistics are for, named in errors.

    Returns:
        The positions, in the statistics' order.

    Raises:
        MMoEExError: if a field is missing or of the wrong length, or the
            installed RDKit lacks a descriptor the statistics name.
    """
    missing = [field for field in STATISTICS_FIELDS if field not in statistics]
    if missing:
        raise MMoEExError(
            f"{what}: the given statistics lack {missing}; they are not a "
            f"molecule data set's (fields {list(STATISTICS_FIELDS)})."
        )
    names = list(statistics["descriptors"])
    uneven = [f for f in STATISTICS_FIELDS if len(statistics[f]) != len(names)]
    if uneven:
        raise MMoEExError(
            f"{what}: the statistics' {uneven} do not have one value per "
            f"descriptor ({len(names)})."
        )
    installed = descriptor_names()
    unknown = sorted(set(names) - set(installed))
    if unknown:
        raise MMoEExError(
            f"{what}: the installed RDKit has no descriptors {unknown[:5]}, which "
            "the model was trained on; install the RDKit version it was "
            "trained with."
        )
    return [installed.index(name) for name in names]


def molecule_inputs(smiles, statistics=None):
    """A model's input rows for SMILES strings, as the loaders encode them.

    For predictions outside `mmoeex predict`, e.g. by a client of a served
    model: RDKit cannot run inside the model.

    Args:
        smiles: A list of SMILES strings.
        statistics: The `statistics` of the model (an
            `InputStatisticsModel`: trained with descriptors), or None for a
            model of fingerprint bits only.

    Returns:
        `(valid, x)`: a bool mask of the SMILES RDKit parsed, and the
        float32 inputs of those, `(valid.sum(), 1024 [+ descriptors])`.

    Raises:
        MMoEExError: as `descriptor_columns`, or if RDKit is not installed.
    """
    molecules = parsed_molecules(smiles)
    valid = np.array([m is not None for m in molecules], dtype=bool)
    kept = [m for m in molecules if m is not None]
    x = morgan_fingerprints(kept).astype(np.float32)
    if statistics is None:
        return valid, x
    columns = descriptor_columns(statistics, "molecule_inputs")
    values = rdkit_descriptors(kept)[:, columns]
    return valid, np.concatenate([x, encode_descriptors(values, statistics)], axis=1)


def rdkit_modules():
    """RDKit's `Chem` and `rdBase` modules.

    Raises:
        MMoEExError: if RDKit is not installed.
    """
    try:
        from rdkit import Chem, rdBase
    except ImportError as err:
        raise MMoEExError(
            "Molecule data sets need RDKit for their features: pip install rdkit"
        ) from err
    return Chem, rdBase
