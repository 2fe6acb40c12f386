"""Training runs: build a model from a `RunConfig`, train, score, save.

`run` is what `mmoeex train` does: it loads the data, builds the model
(`build_model`, the one place models are made from a config), trains it
keeping the weights of the epoch with the best validation score, scores every
split and writes the run folder. The folder is written under a temporary name
next to the target and renamed at the end, so a failed run leaves nothing
half-written.
"""

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import shutil
import time
import uuid
import zipfile

import keras
import numpy as np
import pandas as pd

from mmoeex_tf import baselines, datasets
from mmoeex_tf.checkpoints import EpochCheckpoint, Progress, RunCheckpoints
from mmoeex_tf.config import RunConfig, write_config_file
from mmoeex_tf.datasets.base import SPLITS
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.experts import Conv1DExperts, DenseExperts, RecurrentExperts
from mmoeex_tf.models import MMoEExModel
from mmoeex_tf.plots import plot_learning_curves

#: Metrics where lower is better; the validation score negates them.
ERROR_METRICS = ("mae", "rmse", "mse")


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


def build_model(config, tasks, input_shape):
    """Builds and compiles the model a config describes.

    `"mmoeex"` is an `MMoEExModel` with `alpha` and `mode`; `"mmoe"` the
    same with every expert open to every task; `"shared-bottom"` an MMoE
    with a single expert (as `baselines.shared_bottom`, for any expert kind);
    `"single-task"` one expert per task with a diagonal gate mask, so each
    task has its own expert and tower and no weight is shared (independent
    single-task networks, trained and saved as one model).

    Args:
        config: A `RunConfig`.
        tasks: The `Task` specs.
        input_shape: Shape of one example, `(features,)` or `(steps,
            features)`.

    Returns:
        A built `MMoEExModel` compiled with AdamW.

    Raises:
        MMoEExError: if the expert kind needs sequences and the data are
            tabular, or MAML-MTL is asked for and unavailable.
    """
    sequence = len(input_shape) == 2
    if config.expert_kind != "dense" and not sequence:
        raise MMoEExError(
            f"expert_kind {config.expert_kind!r} needs sequence data shaped "
            f"(steps, features); this data set's examples are {tuple(input_shape)}."
        )
    num_experts = {"shared-bottom": 1, "single-task": len(tasks)}.get(
        config.model, config.experts
    )
    experts = _experts(config, num_experts)
    options = {
        "tower_units": config.tower_units,
        "tower_dropout": config.tower_dropout,
        "seed": config.seed,
        "optimization": _optimization(config),
        "name": config.model.replace("-", "_"),
    }
    if config.model == "mmoeex":
        model = MMoEExModel(
            tasks, experts, alpha=config.alpha, mode=config.mode, **options
        )
    elif config.model == "single-task":
        mask = np.eye(len(tasks), dtype=np.int32)
        model = MMoEExModel(tasks, experts, gate_mask=mask, **options)
    else:
        model = baselines.mmoe(tasks, experts, **options)
    model.build((None, *input_shape))
    model.compile(
        optimizer=keras.optimizers.AdamW(
            config.learning_rate, weight_decay=config.weight_decay
        ),
        non_finite=config.non_finite,
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
    )
    return model


def _experts(config, num_experts):
    kind, units = config.expert_kind, config.expert_units
    options = {"dropout": config.expert_dropout, "seed": config.seed}
    if kind == "dense":
        return DenseExperts(num_experts, units, **options)
    if kind == "conv1d":
        return Conv1DExperts(num_experts, units, padding="causal", **options)
    return RecurrentExperts(num_experts, units, cell=kind, **options)


def _optimization(config):
    if config.optimization == "joint":
        return None
    try:
        from mmoeex_tf.maml import MAMLMTL
    except ModuleNotFoundError as err:
        if err.name != "mmoeex_tf.maml":
            raise
        raise MMoEExError(
            "optimization 'maml' needs mmoeex_tf.maml, which this installation "
            "does not have."
        ) from err
    try:
        return MAMLMTL(**config.maml)
    except TypeError as err:
        raise MMoEExError(f"Invalid maml options {config.maml}: {err}") from err


def validation_score(tasks, logs):
    """The score that picks the best epoch: the mean of the tasks' first metrics.

    Each task contributes its first metric on the validation data (AUC for
    binary tasks by default); error metrics (MAE, RMSE, MSE) count negated,
    so higher is always better.

    Args:
        tasks: The `Task` specs.
        logs: Keras epoch logs with `val_<task>_<metric>` entries.

    Returns:
        A float (`NaN` if a value is missing).
    """
    values = []
    for task in tasks:
        metric = task.metrics[0]
        value = float(logs.get(f"val_{task.name}_{metric}", math.nan))
        values.append(-value if metric in ERROR_METRICS else value)
    return float(np.mean(values))


class BestWeights(keras.callbacks.Callback):
    """Remembers the weights of the epoch with the best `validation_score`.

    Args:
        tasks: The `Task` specs.

    Attributes:
        best_epoch: 1-based epoch of the best score (`None` before the
            first epoch ends).
        best_score: That score.
        best_weights: That epoch's `model.get_weights()`.
    """

    def __init__(self, tasks):
        super().__init__()
        self.tasks = tasks
        self.best_epoch, self.best_score, self.best_weights = None, -math.inf, None

    def on_epoch_end(self, epoch, logs=None):
        score = validation_score(self.tasks, logs or {})
        if score > self.best_score:
            self.best_epoch, self.best_score = epoch + 1, score
            self.best_weights = self.model.get_weights()

    def restore(self):
        """Puts the best weights back into the model, if an epoch ended."""
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


@dataclasses.dataclass
class TrainResult:
    """What `train` did.

    Attributes:
        history: One row per finished epoch: `epoch` and the Keras logs.
        best_epoch: The epoch whose weights the model now holds (`None` if
            interrupted before the first epoch ended).
        best_score: Its `validation_score`.
        interrupted: Whether training was stopped by Ctrl-C.
        seconds: Wall time of the training (all sessions of a resumed run).
    """

    history: pd.DataFrame
    best_epoch: int | None
    best_score: float
    interrupted: bool
    seconds: float


def train(model, data, config, callbacks=(), verbose=1, checkpoints=None):
    """Trains a model and leaves it with its best epoch's weights.

    Epoch `e` visits the training rows in an order drawn from
    `(config.seed, e)` (`MultiTaskData.shuffled_epochs`). Ctrl-C
    (`KeyboardInterrupt`) during training ends it early; the best weights
    so far are kept and `interrupted` is set.

    Args:
        model: A compiled `MMoEExModel`.
        data: The `MultiTaskData`.
        config: The `RunConfig` (batch size, epochs, seed).
        callbacks: Further Keras callbacks.
        verbose: Keras `fit` verbosity (1 shows a progress bar).
        checkpoints: A `RunCheckpoints` to save a checkpoint after every
            epoch to; when it already holds one, training resumes from it
            and ends as a run that never stopped would.

    Returns:
        A `TrainResult`.
    """
    best = BestWeights(model.tasks)
    history = keras.callbacks.History()
    done = Progress(0, None, -math.inf, None, [], 0.0)
    if checkpoints is not None and checkpoints.exists():
        done = checkpoints.restore(model)
        best.best_epoch, best.best_score = done.best_epoch, done.best_score
        best.best_weights = done.best_weights
    start = time.perf_counter()

    def progress():
        rows = pd.DataFrame(history.history).to_dict("records")
        return Progress(
            epochs_done=done.epochs_done + len(rows),
            best_epoch=best.best_epoch,
            best_score=best.best_score,
            best_weights=best.best_weights,
            history=done.history + rows,
            seconds=done.seconds + time.perf_counter() - start,
        )

    saving = [] if checkpoints is None else [EpochCheckpoint(checkpoints, progress)]
    dataset, steps = data.shuffled_epochs(
        "train", config.batch_size, config.seed, config.epochs, done.epochs_done
    )
    interrupted = False
    try:
        model.fit(
            dataset,
            steps_per_epoch=steps,
            initial_epoch=done.epochs_done,
            epochs=config.epochs,
            validation_data=data.tf_dataset("val", config.batch_size),
            shuffle=False,  # the dataset shuffles itself
            callbacks=[history, best, *callbacks, *saving],
            verbose=verbose,
        )
    except KeyboardInterrupt:
        interrupted = True
    best.restore()
    final = progress()
    logs = pd.DataFrame(final.history)
    logs.insert(0, "epoch", np.arange(1, len(logs) + 1))
    return TrainResult(
        logs, best.best_epoch, best.best_score, interrupted, final.seconds
    )


def evaluate(model, data, split, batch_size=512):
    """Scores a model on one split of a data set.

    Args:
        model: An `MMoEExModel` predicting the data set's tasks.
        data: The `MultiTaskData`.
        split: `"train"`, `"val"` or `"test"`.
        batch_size: Examples per forward pass.

    Returns:
        A dict task name -> metric name (`loss` and the task's metrics) ->
        value.

    Raises:
        MMoEExError: if the model's tasks or input shape differ from the
            data set's.
    """
    check_compatible(model, data)
    logs = model.evaluate(
        data.tf_dataset(split, batch_size), verbose=0, return_dict=True
    )
    return {
        task.name: {m: float(logs[f"{task.name}_{m}"]) for m in ("loss", *task.metrics)}
        for task in model.tasks
    }


def check_compatible(model, data):
    """Checks that a model fits a data set's tasks and example shape.

    Raises:
        MMoEExError: naming the difference.
    """
    data_tasks = [task.name for task in data.tasks]
    if list(model.task_names) != data_tasks:
        raise MMoEExError(
            f"The model predicts tasks {model.task_names}, but data set "
            f"{data.name!r} has tasks {data_tasks}."
        )
    expected = tuple(model.get_build_config()["input_shape"][1:])
    actual = data.x["train"].shape[1:]
    if expected != actual:
        raise MMoEExError(
            f"The model takes examples shaped {expected}, but data set "
            f"{data.name!r} has examples shaped {actual}."
        )


def metrics_table(scores):
    """One row per split and task, one column per metric.

    Args:
        scores: Split -> the output of `evaluate`.

    Returns:
        A `DataFrame` with columns `split`, `task`, `loss`, then the metrics
        (empty where a task does not have that metric).
    """
    rows = [
        {"split": split, "task": task, **values}
        for split, per_task in scores.items()
        for task, values in per_task.items()
    ]
    return pd.DataFrame(rows)


def format_scores(per_task):
    """Formats one split's scores as a text table, a row per task."""
    frame = pd.DataFrame.from_dict(per_task, orient="index")
    frame.index.name = "task"
    return frame.to_string(float_format="{:.4f}".format, na_rep="")


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


def new_output_folder(config):
    """Returns the run folder: `config.output` or a fresh default name.

    The default is `runs/<data>-<model>-<YYYYmmdd-HHMMSS>`.

    Raises:
        MMoEExError: if the folder exists and is not empty, or is a file.
    """
    default = f"runs/{config.data}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = pathlib.Path(config.output or default)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        hint = (
            f"; continue its run with 'mmoeex train --resume {folder}'"
            if RunCheckpoints(folder).exists()
            else ""
        )
        raise MMoEExError(
            f"Output folder {str(folder)!r} already exists and is not empty; "
            f"choose another --output{hint}."
        )
    return folder


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

    The folder gets `model.keras` (weights of the best epoch), `config.yaml`
    (the resolved config), `history.csv`, `learning_curves.png`,
    `metrics.csv` (per split and task) and `metrics.json` (the same, plus
    the best epoch, the epochs run, the training time, `interrupted` and
    the number of skipped non-finite steps). While training, a checkpoint
    is kept in its `checkpoint/` after every epoch (see
    `mmoeex_tf.checkpoints`); `resume` continues a run that was killed or
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
    model = build_model(config, data.tasks, data.x["train"].shape[1:])
    checkpoints = RunCheckpoints(folder, config)
    with staged_folder(folder) as staging:
        result = train(model, data, config, callbacks, verbose, checkpoints)
        scores = {
            split: evaluate(model, data, split, config.batch_size) for split in SPLITS
        }
        _write_run(staging, model, config, result, scores)
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
