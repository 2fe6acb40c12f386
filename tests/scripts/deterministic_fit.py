"""Trains a small MMoEEx model with fixed seeds and prints its logs as JSON.

Run twice by `tests/test_determinism.py`: same seed, same data, same machine
must print identical numbers.
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

import mmoeex_tf as mt

tf.config.experimental.enable_op_determinism()
keras.utils.set_random_seed(int(sys.argv[1]))
rng = np.random.default_rng(0)
x = rng.normal(size=(512, 8)).astype("float32")
y = {
    "flag": (x[:, 0] + 0.3 * rng.normal(size=512) > 0).astype("float32"),
    "value": (x[:, 1] * 2 + x[:, 2]).astype("float32"),
}
model = mt.MMoEExModel(
    [mt.Task("flag", "binary"), mt.Task("value", "regression")],
    mt.DenseExperts(4, 8, dropout=0.2, seed=1),
    alpha=0.5,
    seed=1,
)
model.compile(optimizer=keras.optimizers.AdamW(1e-2))
history = model.fit(x, y, batch_size=64, epochs=3, shuffle=True, verbose=0)
weights = float(sum(np.abs(w).sum() for w in model.get_weights()))
print(json.dumps({"history": history.history, "weights": weights}))
