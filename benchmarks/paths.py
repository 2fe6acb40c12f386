"""Where the benchmarks find the shared real data sets, and their run configs.

Also the census-income file bundled with the package read as a user's raw
table (`census_table`).

The data sets live in `../shared/data` beside the repository (see its
README.md); the package itself never reads them.
"""

import importlib.resources
import json
from pathlib import Path

import pandas as pd

from mmoeex_tf.datasets import census, from_dataframe
from mmoeex_tf.runs.config_files import recipe

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Data set name -> its file or folder under SHARED_DATA.
DATA_FILES = {
    "census3": "census_income_kdd/census-income.test.gz",
    "physio4": "physionet2012",
    "tox21": "moleculenet/tox21.csv",
    "toxcast": "moleculenet/toxcast.csv.gz",
}


#: Data sets whose protocol features are the Morgan fingerprint bits alone
#: (BENCHMARKS.md); the library's molecule loaders add RDKit descriptors.
BITS_ONLY = ("tox21", "toxcast")


def protocol_options(name, descriptors=False):
    """The loader options that give data set `name` the protocol's features.

    Args:
        name: A data set name.
        descriptors: Keep the RDKit descriptors of tox21 / toxcast (the
            library's default, beyond the protocol).

    Returns:
        `{"descriptors": descriptors}` for tox21 and toxcast, else `{}`;
        as loader keyword arguments or `RunConfig` fields.
    """
    return {"descriptors": descriptors} if name in BITS_ONLY else {}


def data_path(name):
    """The shared file or folder of data set `name`, as a string.

    Args:
        name: A data set name (`mmoeex_tf.datasets.DATASETS`).

    Returns:
        Its path under `SHARED_DATA` (which may be missing on this machine),
        or None for a data set without one (`synthetic`).
    """
    relative = DATA_FILES.get(name)
    return None if relative is None else str(SHARED_DATA / relative)


def protocol_recipe(name, settings=()):
    """Data set `name`'s recipe on the shared data with the protocol's features.

    Args:
        name: A data set name with a recipe (`mmoeex_tf/runs/recipes/`).
        settings: `KEY=JSON` changes to the recipe (a script's `--set`), applied
            last: `descriptors=true` keeps the RDKit descriptors.

    Returns:
        The `RunConfig`.
    """
    changes = {k: json.loads(v) for k, v in (item.split("=", 1) for item in settings)}
    return recipe(
        name, {"data_path": data_path(name), **protocol_options(name), **changes}
    )


def census_table(targets, **options):
    """The bundled census-income file as a raw table (`TableData`).

    Every column but the targets and the instance weight is a feature; the
    industry and occupation codes are categorical.

    Args:
        targets: Column -> kind, as for `mmoeex_tf.datasets.from_dataframe`.
        **options: Further `from_dataframe` arguments (`numeric_bins`, ...).
    """
    resource = importlib.resources.files("mmoeex_tf.datasets") / "data"
    with importlib.resources.as_file(resource / census.BUNDLED_FILE) as path:
        frame = pd.read_csv(
            path, header=None, names=list(census.COLUMNS), skipinitialspace=True
        )
    features = [
        c for c in census.COLUMNS if c not in targets and c != "instance weight"
    ]
    return from_dataframe(
        frame,
        targets,
        features=features,
        categorical=[census.COLUMNS[i] for i in (2, 3)],  # industry, occupation codes
        name="census3-table",
        **options,
    )
