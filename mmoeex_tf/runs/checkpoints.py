"""Resumable training: a checkpoint after every epoch, never half-written.

A run's checkpoints live in `<run folder>/checkpoint/`:

    checkpoint/
        latest               the name of the last complete checkpoint
        epoch-0003/
            config.yaml      the run's config (what `--resume` rebuilds from)
            variables.npz    every model variable (weights, balancer state,
                             dropout seed states) and the optimizer's
            best.npz         the weights of the best epoch so far
            progress.json    epochs done, best epoch and score, the history

A checkpoint is written into a temporary folder, its files flushed to disk,
the folder renamed to `epoch-NNNN`, and only then is `latest` replaced
(`os.replace`, atomic) to name it. A process killed at any moment leaves
`latest` naming the previous complete checkpoint, which `restore` loads;
leftovers of an unfinished write are deleted by the next `save`.

Under a multi-worker strategy only the chief keeps checkpoints; the others
have no folder, and `exists` and `restore` give them the chief's answer and
state (`broadcast_from_chief`), so every worker continues from the chief's
last checkpoint.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import uuid

import keras
import numpy as np

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.config_files import config_yaml, read_config_file
from mmoeex_tf.training.strategies import broadcast_from_chief, is_multi_worker

FOLDER = "checkpoint"
LATEST = "latest"
CONFIG = "config.yaml"


@dataclasses.dataclass
class Progress:
    """How far a run got: what a resumed run continues from.

    Attributes:
        epochs_done: Number of finished epochs.
        best_epoch: 1-based epoch with the best validation score (`None`
            before the first).
        best_score: That score.
        best_weights: That epoch's `model.get_weights()` (`None` before).
        history: One dict of Keras logs per finished epoch.
        seconds: Training wall time so far.
    """

    epochs_done: int
    best_epoch: int | None
    best_score: float
    best_weights: list | None
    history: list
    seconds: float


class RunCheckpoints:
    """The checkpoints of one run.

    Args:
        run_folder: The run folder; checkpoints go to its `checkpoint/`.
            `None` for a worker other than the chief: it writes nothing.
        config: The run's `RunConfig`, saved with every checkpoint (needed
            by `save` only).
        strategy: The run's `tf.distribute` strategy; with several workers,
            `exists` and `restore` exchange the chief's answer and state.
    """

    def __init__(self, run_folder, config=None, strategy=None):
        self.folder = None if run_folder is None else pathlib.Path(run_folder) / FOLDER
        self.run_config = config
        self.strategy = strategy

    def exists(self):
        """Whether a complete checkpoint is there (the chief's, on every worker)."""
        found = self.folder is not None and (self.folder / LATEST).is_file()
        (shared,) = broadcast_from_chief(self.strategy, [np.array(found)])
        return bool(shared)

    def config(self):
        """Reads the run's `RunConfig`.

        Raises:
            MMoEExError: if the folder holds no checkpoint.
        """
        if not self.exists():
            raise MMoEExError(
                f"{str(self.folder.parent)!r} has no checkpoint to resume from "
                f"(no {FOLDER}/{LATEST}); it is not a run folder, the run finished, "
                "or it stopped before its first epoch ended."
            )
        return RunConfig.from_dict(read_config_file(self._latest() / CONFIG))

    def save(self, model, progress):
        """Writes a checkpoint of `model` and `progress`, then points to it.

        Args:
            model: The compiled `MMoEExModel` being trained.
            progress: The `Progress` at the end of the epoch just finished.
        """
        if self.folder is None:
            return
        name = f"epoch-{progress.epochs_done:04d}"
        staging = self.folder / f".{name}.{uuid.uuid4().hex[:8]}.partial"
        staging.mkdir(parents=True)
        _write_arrays(staging / "variables.npz", _state_values(model))
        if progress.best_weights is not None:
            _write_arrays(staging / "best.npz", progress.best_weights)
        summary = dataclasses.asdict(progress)
        del summary["best_weights"]
        _write_text(staging / "progress.json", json.dumps(summary, allow_nan=True))
        _write_text(staging / CONFIG, config_yaml(self.run_config))
        target = self.folder / name
        shutil.rmtree(target, ignore_errors=True)  # never the one `latest` names
        staging.rename(target)
        pointer = self.folder / f".{LATEST}.{uuid.uuid4().hex[:8]}"
        _write_text(pointer, name)
        os.replace(pointer, self.folder / LATEST)
        _sync_folder(self.folder)
        for item in self.folder.iterdir():
            if item.is_dir() and item.name != name:
                shutil.rmtree(item, ignore_errors=True)

    def restore(self, model):
        """Loads the latest checkpoint into `model` and returns its `Progress`.

        A worker other than the chief gets the chief's variables, and its
        epochs done, best epoch and best score (not the best weights or the
        history, which only the chief writes out).

        Args:
            model: A compiled model built from the run's config.

        Raises:
            MMoEExError: if the checkpoint is missing, unreadable or does not
                fit the model.
        """
        progress = None if self.folder is None else self._read(model)
        if not is_multi_worker(self.strategy):
            return progress
        numbers = np.array(
            [0, 0, 0]
            if progress is None
            else [progress.epochs_done, progress.best_epoch or 0, progress.best_score],
            dtype=np.float64,
        )
        *values, numbers = broadcast_from_chief(
            self.strategy, [*_state_values(model), numbers]
        )
        _assign_state(model, values, self.folder)
        if progress is not None:
            return progress
        epochs_done, best_epoch, best_score = numbers.tolist()
        return Progress(
            int(epochs_done), int(best_epoch) or None, best_score, None, [], 0.0
        )

    def _read(self, model):
        try:
            folder = self._latest()
            summary = json.loads((folder / "progress.json").read_text("utf-8"))
            values = _read_arrays(folder / "variables.npz")
            best = folder / "best.npz"
            best_weights = _read_arrays(best) if best.is_file() else None
        except (OSError, ValueError, KeyError) as err:
            raise MMoEExError(
                f"The checkpoint in {str(self.folder)!r} cannot be read: {err}"
            ) from err
        _assign_state(model, values, folder)
        return Progress(best_weights=best_weights, **summary)

    def _latest(self):
        name = (self.folder / LATEST).read_text(encoding="utf-8").strip()
        return self.folder / name

    def remove(self):
        """Deletes the checkpoints (once the run's results are written)."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch.

    It must come after the callbacks whose state it saves in the callback
    list (the best weights and the history).

    Args:
        checkpoints: The `RunCheckpoints`.
        progress: A function returning the `Progress` to save.
    """

    def __init__(self, checkpoints, progress):
        super().__init__()
        self.checkpoints, self.progress = checkpoints, progress

    def on_epoch_end(self, epoch, logs=None):
        self.checkpoints.save(self.model, self.progress())


def _state_variables(model):
    """Every variable a resumed run needs, in a fixed order."""
    model.optimizer.build(model.trainable_variables)  # no-op once built
    return [*model.variables, *model.optimizer.variables]


def _state_values(model):
    return [keras.ops.convert_to_numpy(v) for v in _state_variables(model)]


def _assign_state(model, values, folder):
    variables = _state_variables(model)
    shapes = [tuple(v.shape) for v in variables]
    if len(values) != len(variables) or any(
        value.shape != shape for value, shape in zip(values, shapes)
    ):
        raise MMoEExError(
            f"The checkpoint {str(folder)!r} does not fit this model: it holds "
            f"{len(values)} variables, the model has {len(variables)} (or their "
            "shapes differ); was the config changed?"
        )
    for variable, value in zip(variables, values):
        variable.assign(value)


def _write_arrays(path, arrays):
    with open(path, "wb") as file:
        np.savez(file, *arrays)
        file.flush()
        os.fsync(file.fileno())


def _read_arrays(path):
    with np.load(path) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def _sync_folder(folder):
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
