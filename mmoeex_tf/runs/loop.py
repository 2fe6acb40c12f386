"""The best-epoch training loop of a run, with checkpoints and Ctrl-C."""

import dataclasses
import math
import time

import keras
import numpy as np
import pandas as pd

from mmoeex_tf.analysis.scores import validation_score
from mmoeex_tf.runs.checkpoints import EpochCheckpoint, Progress
from mmoeex_tf.runs.factory import adapt_model
from mmoeex_tf.training.strategies import shard_by_data


class BestWeights(keras.callbacks.Callback):
    """Remembers the weights of the epoch with the best `validation_score`.

    The score is the mean skill of the tasks over their trivial predictors
    (`model.task_scaling.trivial_scores()`, set by `MMoEExModel.adapt`).

    Args:
        tasks: The `Task` specs.
        patience: Stop training when the score has not improved for this
            many epochs; `None` never stops.

    Attributes:
        best_epoch: 1-based epoch of the best score (`None` before the
            first epoch ends).
        best_score: That score.
        best_weights: That epoch's `model.get_weights()`.
    """

    def __init__(self, tasks, patience=None):
        super().__init__()
        self.tasks = tasks
        self.patience = patience
        self.best_epoch, self.best_score, self.best_weights = None, -math.inf, None

    def on_epoch_end(self, epoch, logs=None):
        trivial = self.model.task_scaling.trivial_scores()
        score = validation_score(self.tasks, logs or {}, trivial)
        if score > self.best_score:
            self.best_epoch, self.best_score = epoch + 1, score
            self.best_weights = self.model.get_weights()
        stale = epoch + 1 - (self.best_epoch or 0)
        if self.patience is not None and stale >= self.patience:
            self.model.stop_training = True

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
    `(config.seed, e)` (`MultiTaskData.shuffled_epochs`). A fresh model
    first learns the training labels' statistics (`MMoEExModel.adapt`, as
    the config's `standardize_targets`, `normalize_losses` and `prior_bias`
    say); a resumed one has them from its checkpoint. Training stops early
    after `config.early_stopping` epochs without a better validation score.
    Under a multi-worker strategy each worker takes its share of every
    global batch of `config.batch_size` rows.
    Ctrl-C (`KeyboardInterrupt`) during training ends it early; the best
    weights so far are kept and `interrupted` is set.

    Args:
        model: A compiled `MMoEExModel`.
        data: The `MultiTaskData`.
        config: The `RunConfig` (batch size, epochs, seed, early stopping,
            label statistics).
        callbacks: Further Keras callbacks.
        verbose: Keras `fit` verbosity (1 shows a progress bar).
        checkpoints: A `RunCheckpoints` to save a checkpoint after every
            epoch to; when it already holds one, training resumes from it
            and ends as a run that never stopped would.

    Returns:
        A `TrainResult`.
    """
    best = BestWeights(model.tasks, config.early_stopping)
    history = keras.callbacks.History()
    done = Progress(0, None, -math.inf, None, [], 0.0)
    if checkpoints is not None and checkpoints.exists():
        done = checkpoints.restore(model)  # the label statistics included
        best.best_epoch, best.best_score = done.best_epoch, done.best_score
        best.best_weights = done.best_weights
    else:
        adapt_model(model, config, data.y["train"], data.x["train"])
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
            shard_by_data(dataset),
            steps_per_epoch=steps,
            initial_epoch=done.epochs_done,
            epochs=config.epochs,
            validation_data=shard_by_data(data.tf_dataset("val", config.batch_size)),
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
