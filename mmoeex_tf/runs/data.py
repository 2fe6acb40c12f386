"""Loading the data set a run names."""

import dataclasses

import numpy as np

from mmoeex_tf import datasets
from mmoeex_tf.datasets.table_model import TableModel
from mmoeex_tf.datasets.tables import TableData
from mmoeex_tf.errors import MMoEExError

#: `RunConfig` fields passed to the table loader.
TABLE_OPTIONS = ("targets", "id_column", "split_column", "na_values")


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
            f"Data set {name!r} cannot be loaded with arguments {kwargs}: {err} "
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

    For `data: table`, the config's `targets`, `id_column`, `split_column`
    and `na_values` go to `mmoeex_tf.datasets.load_table` too.

    Raises:
        MMoEExError: as `load_data`, or if those table options are set for
            another data set.
    """
    table = {
        key: getattr(config, key)
        for key in TABLE_OPTIONS
        if getattr(config, key) not in (None, [])
    }
    if table and config.data != "table":
        raise MMoEExError(
            f"{', '.join(table)} apply to the table data set (data: table), "
            f"not {config.data!r}."
        )
    return load_data(
        config.data,
        config.data_path,
        {**config.data_options, **table},
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
        table's encoder and target labels; else `model` itself.
    """
    if isinstance(data, TableData) and not isinstance(model, TableModel):
        return TableModel.from_model(model, data.encoder, data.targets)
    return model
