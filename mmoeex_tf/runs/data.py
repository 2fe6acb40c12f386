"""Loading the data set a run names."""

import dataclasses

import numpy as np

from mmoeex_tf import datasets
from mmoeex_tf.errors import MMoEExError


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
    return dataclasses.replace(data, x=x, y=y)


def load_run_data(config):
    """Loads the data set a `RunConfig` names, with its options and row limit."""
    return load_data(
        config.data,
        config.data_path,
        config.data_options,
        config.limit_rows,
        config.seed,
    )
