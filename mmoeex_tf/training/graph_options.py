"""TensorFlow graph-optimizer settings for the models' compiled functions."""

import contextlib

import tensorflow as tf

MODEL_PRUNING_OFF = "disable_model_pruning"


@contextlib.contextmanager
def without_model_pruning():
    """Turns Grappler's model-pruning pass off while the block runs.

    Grappler optimizes a `tf.function` graph when it first runs. On the
    function Keras' `fit` builds around a data iterator, its model-pruning
    pass takes minutes once the labels hold hundreds of tasks (a 600-task
    MMoEEx: first epoch 200 s with it, 16 s without, see
    `benchmarks/RESULTS.md`), and the census3 steps run as fast without it.
    The setting is process-wide, so the previous value comes back when the
    block ends.
    """
    options = tf.config.optimizer.get_experimental_options()
    before = options.get(MODEL_PRUNING_OFF, False)
    tf.config.optimizer.set_experimental_options({MODEL_PRUNING_OFF: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({MODEL_PRUNING_OFF: before})
