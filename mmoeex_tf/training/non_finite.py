"""Training steps with a NaN or infinite loss or gradient: skipped and counted.

`MMoEExModel.train_step` checks every step's loss and gradients; a
non-finite value anywhere (on any replica) skips the whole update, so no
weight, optimizer slot or step counter moves and the weights are never left
NaN. The model counts those steps in its `non_finite_steps` metric (per
epoch, in the logs); `NonFiniteMonitor` warns about them after each epoch
and, with `compile(non_finite="stop")`, stops training at the first one.

Under a `keras.optimizers.LossScaleOptimizer` (mixed precision) only the
loss is checked here: overflowing scaled gradients are routine there and the
loss-scale optimizer itself skips those steps and lowers its scale.
"""

import warnings

import keras
import tensorflow as tf

from mmoeex_tf._checks import check_choice
from mmoeex_tf.choices import NON_FINITE_POLICIES as POLICIES
from mmoeex_tf.training.replicas import sum_over_replicas


def check_policy(policy):
    """Returns `policy` if it is one of `POLICIES`.

    Raises:
        MMoEExError: otherwise.
    """
    return check_choice(policy, "non_finite", POLICIES)


def all_finite(loss, gradients, optimizer):
    """Whether a step's loss and gradients are finite on every replica.

    Args:
        loss: The step's loss (this replica's share).
        gradients: The gradients (`None` entries are ignored); not checked
            under a `LossScaleOptimizer`, which handles them itself.
        optimizer: The model's optimizer.

    Returns:
        A boolean scalar tensor, equal on all replicas.
    """
    checks = [tf.reduce_all(tf.math.is_finite(loss))]
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        checks += [
            tf.reduce_all(tf.math.is_finite(g)) for g in gradients if g is not None
        ]
    bad_replicas = sum_over_replicas(1.0 - tf.cast(tf.reduce_all(checks), tf.float32))
    return tf.equal(bad_replicas, 0.0)


def apply_if_finite(optimizer, gradients, variables, finite, compiled=False):
    """Applies the gradients when `finite` holds, else does nothing.

    Under a `tf.distribute` strategy whose `apply_gradients` needs a
    `merge_call` (see `uses_merge_call`), the condition runs in the
    cross-replica context, as in `keras.optimizers.LossScaleOptimizer` (a
    `cond` in a replica context cannot hold a `merge_call`).

    Args:
        optimizer: The model's optimizer.
        gradients: Gradients, in the order of `variables`.
        variables: The trainable variables.
        finite: The boolean scalar from `all_finite`.
        compiled: Whether the step runs compiled by XLA (the model's
            `jit_compile`).
    """
    if not optimizer.built:
        optimizer.build(variables)

    def apply(gradients):
        optimizer.apply_gradients(zip(gradients, variables))

    if not uses_merge_call(compiled):
        tf.cond(finite, lambda: apply(gradients), lambda: None)
        return

    def cross_replica(distribution, gradients, finite):
        finite = distribution.experimental_local_results(finite)[0]

        def apply_on_replicas():
            distribution.extended.call_for_each_replica(apply, args=(gradients,))

        tf.cond(finite, apply_on_replicas, lambda: None)

    tf.distribute.get_replica_context().merge_call(
        cross_replica, args=(gradients, finite)
    )


def uses_merge_call(compiled):
    """Whether optimizer updates under the current strategy use a `merge_call`.

    This follows `tf.distribute`'s own rule: without a strategy there is
    none; the mirrored strategies (one worker or many) make none in an
    XLA-compiled step whose devices are all GPUs, where they use
    collectives instead; every other case goes through a `merge_call`.

    Args:
        compiled: Whether the step runs compiled by XLA.
    """
    if not tf.distribute.has_strategy():
        return False
    strategy = tf.distribute.get_strategy()
    mirrored = (
        tf.distribute.MirroredStrategy,
        tf.distribute.MultiWorkerMirroredStrategy,
    )
    on_gpus = all(
        tf.DeviceSpec.from_string(device).device_type == "GPU"
        for device in strategy.extended.worker_devices
    )
    return not (compiled and on_gpus and isinstance(strategy, mirrored))


class NonFiniteMonitor(keras.callbacks.Callback):
    """Reports skipped non-finite steps; with policy `"stop"` stops training.

    `MMoEExModel.fit` adds it. After an epoch with skipped steps it warns
    (`RuntimeWarning`) with their count; with `"stop"` it sets
    `model.stop_training` after the first batch that had one.

    Args:
        policy: `"skip"` or `"stop"`.

    Attributes:
        total: Steps skipped since training began.
        stopped: Whether training was stopped for a non-finite step.
    """

    def __init__(self, policy="skip"):
        super().__init__()
        self.policy = check_policy(policy)
        self.total, self.stopped = 0, False

    def on_train_begin(self, logs=None):
        self.total, self.stopped = 0, False

    def on_train_batch_end(self, batch, logs=None):
        if self.policy == "stop" and (logs or {}).get("non_finite_steps", 0) > 0:
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        skipped = int((logs or {}).get("non_finite_steps", 0))
        self.total += skipped
        if skipped:
            action = "training stopped" if self.stopped else "updates skipped"
            warnings.warn(
                f"Epoch {epoch + 1}: {skipped} training step(s) had a NaN or "
                f"infinite loss or gradient ({action}; weights unchanged by them).",
                RuntimeWarning,
                stacklevel=2,
            )
