"""Training runs: build a model from a `RunConfig`, train, score, save.

`run` is what `mmoeex train` does: it loads the data, builds the model
(`build_model`, the one place models are made from a config), trains it
keeping the weights of the epoch with the best validation score, scores every
split and writes the run folder. The folder is written under a temporary name
next to the target and renamed at the end, so a failed run leaves nothing
half-written.

The model is built and trained under the config's `strategy`
(`mmoeex_tf.training.strategies.make_strategy`). With several workers, all
of them run the same config (checked), each trains on its share of every
global batch, and only the chief writes the run folder and its checkpoints;
the others write nothing. Starting the same command again on every worker
continues from the chief's last checkpoint.
"""

import dataclasses
import json
import math
import pathlib

from mmoeex_tf.analysis.plots import plot_learning_curves
from mmoeex_tf.analysis.scores import score_model
from mmoeex_tf.datasets.base import SPLITS
from mmoeex_tf.runs.checkpoints import RunCheckpoints
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.config_files import config_yaml, write_config_file
from mmoeex_tf.runs.data import load_run_data, model_to_save
from mmoeex_tf.runs.factory import build_model
from mmoeex_tf.runs.folders import load_saved_model, new_output_folder, staged_folder
from mmoeex_tf.runs.loop import TrainResult, train
from mmoeex_tf.runs.report import mean_scores, metrics_table, score_split
from mmoeex_tf.training.strategies import (
    LOST_WORKER_ERRORS,
    check_same,
    is_chief,
    is_multi_worker,
    lost_worker,
    make_strategy,
)


@dataclasses.dataclass
class Run:
    """A finished `run`.

    Attributes:
        folder: The run folder; `None` on a worker other than the chief.
        config: The resolved `RunConfig` (its `output` set).
        result: The `TrainResult`.
        scores: Split -> task -> metric -> value, at the best epoch (`{}`
            on a worker other than the chief).
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
    `metrics.csv` (per split and task) and `metrics.json` (the same, each
    metric's mean over the tasks where it is defined, the best epoch, the
    epochs run, the training time, `interrupted` and the number of skipped
    non-finite steps; under `exact`, each task's primary metric computed
    exactly, `analysis.scores.score_model`, where the Keras AUC is an
    estimate from 1,000 thresholds). While training, a checkpoint
    is kept in its `checkpoint/` after every epoch (see
    `mmoeex_tf.runs.checkpoints`); `resume` continues a run that was killed or
    interrupted. The checkpoint is deleted once the results of a finished
    run are written; it stays after Ctrl-C, and after a failure while
    writing the results, so that such a run can be resumed.

    With `strategy: multi-worker`, an output folder that holds a checkpoint
    of the same config is continued (a restarted job goes on from the
    chief's last checkpoint); its `output` must then be given.

    Args:
        config: A `RunConfig`.
        callbacks: Further Keras callbacks.
        verbose: Keras `fit` verbosity; with 1 the data summary is printed.

    Returns:
        A `Run`.

    Raises:
        MMoEExError: for an invalid data set, path, model, output folder or
            cluster, or workers started with different configs; nothing is
            written then.
    """
    strategy = make_strategy(config.strategy)
    folder = None
    if is_chief(strategy):
        folder = new_output_folder(config, continue_run=is_multi_worker(strategy))
        config = dataclasses.replace(config, output=str(folder))
    return _run(strategy, folder, config, callbacks, verbose)


def resume(folder, callbacks=(), verbose=1):
    """Continues a run that stopped, from its last checkpoint.

    The run's config is read from the checkpoint; with the same data and
    machine the run ends with the weights, history and metrics of a run
    that never stopped (`tests/test_checkpoints.py` kills one with SIGKILL
    and compares). A multi-worker run is resumed on the chief; the other
    workers start with their first command (`run`), and get the chief's
    state.

    Args:
        folder: The run folder.
        callbacks: Further Keras callbacks.
        verbose: As for `run`.

    Returns:
        A `Run`.

    Raises:
        MMoEExError: if the folder has no checkpoint (not a run folder, or
            the run finished or stopped before its first epoch ended), the
            checkpoint cannot be read, or as for `run`.
    """
    config = RunCheckpoints(folder).config()
    strategy = make_strategy(config.strategy)
    chief_folder = pathlib.Path(folder) if is_chief(strategy) else None
    return _run(strategy, chief_folder, config, callbacks, verbose)


def _run(strategy, folder, config, callbacks, verbose):
    check_same(
        strategy, config_yaml(dataclasses.replace(config, output=None)), "config"
    )
    data = load_run_data(config)
    verbose = verbose if folder is not None else 0  # the chief reports
    if verbose:
        print(data.summary())
    with strategy.scope():
        model = build_model(
            config, data.tasks, data.x["train"].shape[1:], len(data.x["train"])
        )
    checkpoints = RunCheckpoints(folder, config, strategy)
    if folder is None:
        result = _train(strategy, model, data, config, callbacks, verbose, checkpoints)
        return Run(None, config, result, {})
    with staged_folder(folder) as staging:
        result = _train(strategy, model, data, config, callbacks, verbose, checkpoints)
        saved = model_to_save(model, data)
        saved.save(staging / "model.keras")
        # Outside the workers' strategy, the chief scores a copy on its own.
        scored = (
            load_saved_model(staging / "model.keras")
            if is_multi_worker(strategy)
            else model
        )
        scores = {
            split: score_split(scored, data, split, config.batch_size)
            for split in SPLITS
        }
        exact = {
            split: score_model(scored, *data.split(split), config.batch_size)
            for split in SPLITS
        }
        _write_run(staging, saved, config, result, scores, exact)
    if not result.interrupted:  # an interrupted run can still be resumed
        checkpoints.remove()
    return Run(folder, config, result, scores)


def _train(strategy, model, data, config, *args):
    """`train` under the strategy; a lost worker is an `MMoEExError`."""
    try:
        with strategy.scope():
            return train(model, data, config, *args)
    except LOST_WORKER_ERRORS as err:
        if not is_multi_worker(strategy):
            raise
        raise lost_worker() from err


def _write_run(folder, model, config, result, scores, exact):
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
        "mean_over_tasks": {
            split: mean_scores(tasks) for split, tasks in scores.items()
        },
        "exact": exact,
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
