"""Starts `mmoeex train`'s run and kills its own process with SIGKILL.

Used by `tests/test_checkpoints.py`:

    python killed_run.py CONFIG OUTPUT EPOCH BATCH

trains the run of the config file CONFIG into OUTPUT and sends SIGKILL to
itself after batch BATCH of epoch EPOCH (both 0-based), mid-epoch, as a
machine that kills the job would. With several steps per execution Keras
reports the last batch of each execution, so the first report at or after
BATCH counts.
"""

import os
import signal
import sys

import keras

from mmoeex_tf import runs
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.config_files import read_config_file


class KillAt(keras.callbacks.Callback):
    """Sends SIGKILL to this process after a given batch (or the first after)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.at[0] and batch >= self.at[1]:
            os.kill(os.getpid(), signal.SIGKILL)


config_file, output, epoch, batch = sys.argv[1:]
config = RunConfig.from_dict({**read_config_file(config_file), "output": output})
runs.run(config, callbacks=[KillAt(int(epoch), int(batch))], verbose=0)
