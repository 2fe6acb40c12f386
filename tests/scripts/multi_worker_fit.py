"""Trains a small `MMoEExModel` with `fit` and saves the result.

Usage: python multi_worker_fit.py OUTPUT.npz

With `TF_CONFIG` set, the process is one worker of a multi-worker job
(`mmoeex_tf.integrations.distributed.MultiWorkerMirroredStrategy`); without, it trains
alone. Data, seeds and the global batch are the same either way. The npz file
holds the final weights (`weight_0`, ...) and the per-epoch logs (`loss`,
`val_loss`, ...).
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf.integrations.distributed import (
    MultiWorkerMirroredStrategy,
    shard_by_data,
)

GLOBAL_BATCH = 32
EPOCHS = 2


def main(output):
    if "TF_CONFIG" in os.environ:
        strategy = MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = {"flag": (x[:, 0] > 0).astype("float32"), "value": x[:, 1] * 2 + x[:, 2]}
    tasks = [mt.Task("flag", "binary"), mt.Task("value", "regression")]

    def batches(rows):
        dataset = tf.data.Dataset.from_tensor_slices(
            (x[rows], {k: v[rows] for k, v in y.items()})
        )
        return shard_by_data(dataset.batch(GLOBAL_BATCH))

    with strategy.scope():
        model = mt.MMoEExModel(tasks, mt.DenseExperts(4, 8), alpha=0.5, seed=0)
        model.build((None, 6))
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    history = model.fit(
        batches(slice(0, 192)),
        validation_data=batches(slice(192, None)),
        epochs=EPOCHS,
        verbose=0,
    ).history
    weights = {f"weight_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    np.savez(output, **weights, **{k: np.asarray(v) for k, v in history.items()})


if __name__ == "__main__":
    main(sys.argv[1])
