"""Run folders and model files: staged writes, fresh names, loading."""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import time
import uuid
import zipfile

import keras

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.models.mmoeex_model import MMoEExModel
from mmoeex_tf.runs.checkpoints import RunCheckpoints


def load_saved_model(path):
    """Loads a model saved by `mmoeex train` (`model.keras`).

    Raises:
        MMoEExError: if the file does not exist or is not a saved model.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise MMoEExError(f"Model file {str(path)!r} does not exist.")
    try:
        model = keras.saving.load_model(path)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as err:
        raise MMoEExError(
            f"{str(path)!r} is not a saved Keras model: {err}".splitlines()[0]
        ) from err
    if not isinstance(model, MMoEExModel):
        raise MMoEExError(
            f"{str(path)!r} holds a {type(model).__name__}, not an MMoEExModel."
        )
    return model


@contextlib.contextmanager
def staged_folder(target):
    """Writes a folder's files under a temporary name, then moves them in.

    Yields a new temporary folder next to `target`. When the block ends
    normally, the temporary folder is renamed to `target` (or, if `target`
    already exists, its files are moved into it); when the block raises, it
    is deleted, so no half-written file reaches `target`.

    Args:
        target: The folder the files are for.
    """
    target = pathlib.Path(target).absolute()  # "." has no name to stage under
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}-{uuid.uuid4().hex[:8]}.partial")
    staging.mkdir()  # with the usual permissions, unlike tempfile.mkdtemp
    try:
        yield staging
        if target.is_dir():
            for item in staging.iterdir():
                os.replace(item, target / item.name)
        else:
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def new_output_folder(config, continue_run=False):
    """Returns the run folder: `config.output` or a fresh default name.

    The default is `runs/<data>-<model>-<YYYYmmdd-HHMMSS>`, `<data>` the
    data set's name, or for `moleculenet` its file's name without suffixes
    (`esol.csv` -> `esol`).

    Args:
        config: The `RunConfig`.
        continue_run: Accept a folder holding a checkpoint of this same
            config (all but `output`), to be continued.

    Raises:
        MMoEExError: if the folder exists and is not empty (and, with
            `continue_run`, holds no checkpoint of this config), or is a file.
    """
    data = config.data
    if data == "moleculenet" and config.data_path:
        data = pathlib.Path(config.data_path).name.split(".")[0]
    default = f"runs/{data}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = pathlib.Path(config.output or default)
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return folder
    checkpoints = RunCheckpoints(folder)
    if continue_run and checkpoints.exists():
        saved = dataclasses.replace(checkpoints.config(), output=None)
        if saved == dataclasses.replace(config, output=None):
            return folder
        raise MMoEExError(
            f"Output folder {str(folder)!r} holds the checkpoint of a run with "
            "another config; choose another --output."
        )
    hint = (
        f"; continue its run with 'mmoeex train --resume {folder}'"
        if checkpoints.exists()
        else ""
    )
    raise MMoEExError(
        f"Output folder {str(folder)!r} already exists and is not empty; "
        f"choose another --output{hint}."
    )
