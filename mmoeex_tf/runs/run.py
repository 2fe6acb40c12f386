"""Training runs: build a model from a `RunConfig`, train, score, save.

`run` is what `mmoeex train` does: it loads the data, builds the model
(`build_model`, the one place models are made from a config), trains it
keeping the weights of the epoch with the best validation score, scores every
split and writes the run folder. The folder is written under a temporary name
next to the target and renamed at the end, so a failed run leaves nothing
half-written.
"""

import dataclasses
import json
import math
import pathlib

import keras

from mmoeex_tf.analysis.plots import plot_learning_curves
from mmoeex_tf.datasets.base import SPLITS
from mmoeex_tf.runs.checkpoints import RunCheckpoints
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.config_files import write_config_file
from mmoeex_tf.runs.data import load_run_data, model_to_save
from mmoeex_tf.runs.factory import build_model
from mmoeex_tf.runs.folders import new_output_folder, staged_folder
from mmoeex_tf.runs.loop import TrainResult, train
from mmoeex_tf.runs.report import metrics_table, score_split


@dataclasses.dataclass
class Run:
    """A finished `run`.

    Attributes:
        folder: The run folder.
        config: The resolved `RunConfig` (its `output` set).
        result: The `TrainResult`.
        scores: Split -> task -> metric -> value, at the best epoch.
    """

    folder: pathlib.Path
    config: RunConfig
    result: TrainResult
    scores: dict


def run(config, callbacks=(), verbose=1):
    """Trains the model a config describes and writes its run folder.

    The folder gets `model.keras` (weights of the best epoch; for a table, a
    `TableModel` that also takes raw rows), `config.yaml`
    (the resolved config), `history.csv`, `learning_curves.png`,
    `metrics.csv` (per split and task) and `metrics.json` (the same, plus
    the best epoch, the epochs run, the training time, `interrupted` and
    the number of skipped non-finite steps). While training, a checkpoint
    is kept in its `checkpoint/` after every epoch (see
    `mmoeex_tf.runs.checkpoints`); `resume` continues a run that was killed or
    interrupted. The checkpoint is deleted once the results of a finished
    run are written; it stays after Ctrl-C, and after a failure while
    writing the results, so that such a run can be resumed.

    Args:
        config: A `RunConfig`.
        callbacks: Further Keras callbacks.
        verbose: Keras `fit` verbosity; with 1 the data summary is printed.

    Returns:
        A `Run`.

    Raises:
        MMoEExError: for an invalid data set, path, model or output folder;
            nothing is written then.
    """
    folder = new_output_folder(config)
    config = dataclasses.replace(config, output=str(folder))
    return _run(folder, config, callbacks, verbose)


def resume(folder, callbacks=(), verbose=1):
    """Continues a run that stopped, from its last checkpoint.

    The run's config is read from the checkpoint; with the same data and
    machine the run ends with the weights, history and metrics of a run
    that never stopped (`tests/test_checkpoints.py` kills one with SIGKILL
    and compares).

    Args:
        folder: The run folder.
        callbacks: Further Keras callbacks.
        verbose: As for `run`.

    Returns:
        A `Run`.

    Raises:
        MMoEExError: if the folder has no checkpoint (not a run folder, or
            the run finished or stopped before its first epoch ended), or
            the checkpoint cannot be read.
    """
    config = RunCheckpoints(folder).config()
    return _run(pathlib.Path(folder), config, callbacks, verbose)


def _run(folder, config, callbacks, verbose):
    data = load_run_data(config)
    if verbose:
        print(data.summary())
    keras.utils.set_random_seed(config.seed)
    model = build_model(
        config, data.tasks, data.x["train"].shape[1:], len(data.x["train"])
    )
    checkpoints = RunCheckpoints(folder, config)
    with staged_folder(folder) as staging:
        result = train(model, data, config, callbacks, verbose, checkpoints)
        scores = {
            split: score_split(model, data, split, config.batch_size)
            for split in SPLITS
        }
        _write_run(staging, model_to_save(model, data), config, result, scores)
    if not result.interrupted:  # an interrupted run can still be resumed
        checkpoints.remove()
    return Run(folder, config, result, scores)


def _write_run(folder, model, config, result, scores):
    model.save(folder / "model.keras")
    write_config_file(config, folder / "config.yaml")
    result.history.to_csv(folder / "history.csv", index=False)
    plot_learning_curves(result.history, model.tasks, folder / "learning_curves.png")
    metrics_table(scores).to_csv(folder / "metrics.csv", index=False)
    summary = {
        "data": config.data,
        "model": config.model,
        "best_epoch": result.best_epoch,
        "validation_score": result.best_score,
        "epochs_run": len(result.history),
        "interrupted": result.interrupted,
        "non_finite_steps": int(result.history["non_finite_steps"].sum()),
        "train_seconds": round(result.seconds, 2),
        "metrics": scores,
    }
    text = json.dumps(_finite_or_none(summary), indent=2)
    (folder / "metrics.json").write_text(text + "\n", encoding="utf-8")


def _finite_or_none(value):
    """Replaces NaN and infinities (invalid in JSON) by `None`, recursively."""
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
