"""Sums over the replicas of a `tf.distribute` strategy, for training steps."""

import tensorflow as tf


def sum_over_replicas(value):
    """Sums a tensor (or nested structure) over the replicas of a strategy.

    Outside a `tf.distribute` replica context, or with one replica, returns
    `value` unchanged. The sum has a gradient (the sum of the incoming
    gradients over the replicas), also inside nested gradient tapes.
    """
    if num_replicas() == 1:
        return value
    context = tf.distribute.get_replica_context()
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def num_replicas():
    """The number of replicas in sync; 1 outside a replica context."""
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync
