"""Loading the data set a run names."""

import dataclasses

import numpy as np

from mmoeex_tf import datasets
from mmoeex_tf.datasets.input_statistics_model import InputStatisticsModel
from mmoeex_tf.datasets.table_model import TableModel
from mmoeex_tf.datasets.tables import TableData
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs.config import RunConfig

#: `RunConfig` fields passed to the table loader.
TABLE_OPTIONS = (
    "targets",
    "id_column",
    "split_column",
    "na_values",
    "numeric_bins",
)
#: `RunConfig` fields passed to the MoleculeNet CSV loader.
MOLECULE_OPTIONS = ("smiles_column", "label_columns", "split", "descriptors")
#: `RunConfig` fields passed to the physio4 loader.
PHYSIO_OPTIONS = ("outcomes",)
#: Data set -> the `RunConfig` fields passed to its loader when set.
LOADER_OPTIONS = {
    "table": TABLE_OPTIONS,
    "moleculenet": MOLECULE_OPTIONS,
    "tox21": ("descriptors",),
    "toxcast": ("descriptors",),
    "physio4": PHYSIO_OPTIONS,
}


def load_data(name, path=None, options=None, limit_rows=None, seed=0):
    """Loads a data set by name, optionally with fewer training rows.

    Args:
        name: One of `mmoeex_tf.datasets.DATASETS`.
        path: The data file or folder, for the data sets that need one.
        options: Further keyword arguments of the loader.
        limit_rows: Keep a random subset of this many training rows.
        seed: Seed of that subset.

    Returns:
        A `MultiTaskData`.

    Raises:
        MMoEExError: if the data set is unknown, the path is missing or
            wrong, or the loader does not take the given arguments.
    """
    kwargs = dict(options or {})
    if path is not None:
        kwargs["path"] = str(path)
    try:
        data = datasets.load(name, **kwargs)
    except TypeError as err:  # the loader's signature rejected the arguments
        raise MMoEExError(
            f"Data set {name!r} cannot be loaded with the arguments "
            f"{sorted(kwargs)}: {err} "
            "(data_path / --data-path gives the data's file or folder)."
        ) from err
    if limit_rows is None or limit_rows >= len(data.x["train"]):
        return data
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(data.x["train"]), limit_rows, replace=False))
    x = {**data.x, "train": data.x["train"][rows]}
    y = {**data.y, "train": {k: v[rows] for k, v in data.y["train"].items()}}
    if isinstance(data, TableData):
        raw = {k: v[rows] for k, v in data.raw["train"].items()}
        return dataclasses.replace(data, x=x, y=y, raw={**data.raw, "train": raw})
    return dataclasses.replace(data, x=x, y=y)


def load_run_data(config):
    """Loads the data set a `RunConfig` names, with its options and row limit.

    The config's fields in `LOADER_OPTIONS` that differ from their defaults
    go to the loader too: for `data: table`, `targets`, `id_column`,
    `split_column`, `na_values` and `numeric_bins`
    (`mmoeex_tf.datasets.load_table`); for
    `data: moleculenet`, `smiles_column`, `label_columns`, `split` and
    `descriptors` (`mmoeex_tf.datasets.load_moleculenet_csv`); for tox21 and
    toxcast, `descriptors`; for `data: physio4`, `outcomes`
    (`mmoeex_tf.datasets.load_physio4`).

    Raises:
        MMoEExError: as `load_data`, or if one data set's options are set
            for another data set.
    """
    defaults = RunConfig()
    given = {
        key: getattr(config, key)
        for keys in LOADER_OPTIONS.values()
        for key in keys
        if getattr(config, key) != getattr(defaults, key)
    }
    foreign = [key for key in given if key not in LOADER_OPTIONS.get(config.data, ())]
    if foreign:
        owners = [name for name, keys in LOADER_OPTIONS.items() if foreign[0] in keys]
        raise MMoEExError(
            f"{', '.join(foreign)} apply to the {' / '.join(owners)} data "
            f"set{'s' if len(owners) > 1 else ''} (data: {owners[0]}), "
            f"not {config.data!r}."
        )
    return load_data(
        config.data,
        config.data_path,
        {**config.data_options, **given},
        config.limit_rows,
        config.seed,
    )


def model_to_save(model, data):
    """The model as a run saves it: with the data's preprocessing, if any.

    Args:
        model: The trained `MMoEExModel`.
        data: Its `MultiTaskData`.

    Returns:
        For a table (`TableData`), a `TableModel` taking raw rows, with the
        table's encoder and target labels; for data encoded with train
        statistics (`info["statistics"]`, as from `from_long_table` or a
        molecule loader's descriptors), an `InputStatisticsModel` carrying
        them; else `model` itself.
    """
    if isinstance(data, TableData) and not isinstance(model, TableModel):
        ids = data.info.get("ids", {}).get("train")
        id_columns = list(ids.columns) if ids is not None else []
        return TableModel.from_model(model, data.encoder, data.targets, id_columns)
    if "statistics" in data.info and not isinstance(model, InputStatisticsModel):
        return InputStatisticsModel.from_model(model, data.info["statistics"])
    return model


def saved_data_options(model):
    """Loader arguments that encode new data as a saved model's training data.

    Args:
        model: A loaded `MMoEExModel`.

    Returns:
        `{"statistics": ...}` for an `InputStatisticsModel` (pass them to
        `load_data`'s `options`, e.g. for `load_physio4` or `load_tox21`),
        else `{}`.
    """
    if isinstance(model, InputStatisticsModel):
        return {"statistics": model.statistics}
    return {}
