"""Task-specific towers and heads, batched over tasks."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mmoeex_tf._checks import (
    check_positive_integer,
    check_rate,
    check_seed,
    check_units,
)
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.batched_ops import grouped_dense
from mmoeex_tf.layers.grouped_mlp import (
    add_grouped_mlp_weights,
    dropout_layer,
    grouped_mlp,
)
from mmoeex_tf.tasks import check_tasks


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class TaskTowers(keras.layers.Layer):
    """One small MLP per task, all tasks in one batched computation.

    Task t's tower only sees task t's mixture: the kernels have shape
    `(tasks, in, out)` and every layer is one batched matmul over the tasks.

    Args:
        num_tasks: Number of tasks.
        units: Width of each tower layer, an int or a list (may be empty:
            identity).
        activation: Activation after every layer.
        dropout: Dropout rate after every layer, in [0, 1).
        kernel_initializer: Initializer of the kernels.
        seed: Seed of the dropout.
        **kwargs: Base layer keyword arguments.

    Input shape:
        `(..., tasks, features)`, or `(..., 1, features)`: one input shared
        by every task (a single expert's mixture), broadcast over the tasks.

    Output shape:
        `(..., tasks, units[-1])` (the input unchanged if `units` is empty).
    """

    def __init__(
        self,
        num_tasks,
        units,
        activation="relu",
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_tasks = check_positive_integer(num_tasks, "TaskTowers num_tasks")
        self.units = check_units(units, "TaskTowers units", allow_empty=True)
        self.activation = keras.activations.get(activation)
        self.dropout = check_rate(dropout, "TaskTowers dropout")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = check_seed(seed, "TaskTowers seed", none_means="unseeded")
        self._dropout_layer = dropout_layer(self, self.dropout, self.seed)

    def build(self, input_shape):
        self.kernels, self.biases = add_grouped_mlp_weights(
            self, input_shape[-1], self.num_tasks, self.units, self.kernel_initializer
        )

    def call(self, inputs, training=None):
        return grouped_mlp(
            inputs,
            self.kernels,
            self.biases,
            self.activation,
            dropout=self._dropout_layer,
            training=training,
        )

    def compute_output_shape(self, input_shape):
        if not self.units:
            return tuple(input_shape)
        return tuple(input_shape[:-2]) + (self.num_tasks, self.units[-1])

    def get_config(self):
        config = {
            "num_tasks": self.num_tasks,
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


#: The poolings `"summary"` puts side by side, in this order.
SUMMARY_POOLINGS = ("last", "mean", "max")


def pool_steps(hidden, pooling, steps=None):
    """Reduces `(batch, steps, ...)` over the step axis.

    Args:
        hidden: A tensor with the steps on axis 1.
        pooling: `"last"`, `"mean"`, `"max"` or `"summary"` (the three
            concatenated on the last axis).
        steps: Use the first `steps` steps only (all if `None`).

    Returns:
        The tensor without the step axis (with a last axis three times as
        long for `"summary"`).
    """
    if steps is not None:
        hidden = hidden[:, :steps]
    if pooling == "summary":
        return ops.concatenate(
            [pool_steps(hidden, kind) for kind in SUMMARY_POOLINGS], axis=-1
        )
    if pooling == "last":
        return hidden[:, -1]
    if pooling == "mean":
        return ops.mean(hidden, axis=1)
    return ops.max(hidden, axis=1)


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class TaskHeads(keras.layers.Layer):
    """Output layers of heterogeneous tasks, returning logits per task.

    Tasks are grouped by (output size, per-step, pooling); each group is one
    batched linear map. For sequence inputs, per-step tasks get a prediction
    at every step and sequence-level tasks are pooled over the steps (last
    step, mean, max or all three side by side, optionally over the first N
    steps) before their head.

    Args:
        tasks: The `Task` specs (or their configs), in output order.
        kernel_initializer: Initializer of the kernels.
        **kwargs: Base layer keyword arguments.

    Input shape:
        `(batch, tasks, features)` or `(batch, steps, tasks, features)`; a
        task axis of size 1 is one input shared by every task.

    Output:
        A list of logits, one per task: `(batch, output_size)` or
        `(batch, steps, output_size)` for per-step tasks.
    """

    def __init__(self, tasks, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.tasks = check_tasks(tasks)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        groups = {}
        for index, task in enumerate(self.tasks):
            key = (task.output_size, task.per_step, task.pooling, task.pooling_steps)
            groups.setdefault(key, []).append(index)
        self.groups = list(groups.items())

    def build(self, input_shape):
        if len(input_shape) == 3:
            flat = [t.name for t in self.tasks if t.per_step]
            if flat:
                raise MMoEExError(
                    f"Per-step task(s) {flat} need sequence inputs shaped "
                    "(batch, steps, features)."
                )
        is_sequence = len(input_shape) == 4
        self.kernels, self.biases = [], []
        for group, ((size, per_step, pooling, _), members) in enumerate(self.groups):
            features = input_shape[-1]
            if is_sequence and not per_step and pooling == "summary":
                features *= len(SUMMARY_POOLINGS)
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{group}",
                    shape=(len(members), features, size),
                    initializer=self.kernel_initializer,
                )
            )
            self.biases.append(
                self.add_weight(
                    name=f"bias_{group}",
                    shape=(len(members), size),
                    initializer="zeros",
                )
            )

    def call(self, inputs):
        is_sequence = len(inputs.shape) == 4
        shared = inputs.shape[-2] == 1  # `grouped_dense` broadcasts it
        logits = [None] * len(self.tasks)
        for ((_, per_step, pooling, steps), members), kernel, bias in zip(
            self.groups, self.kernels, self.biases
        ):
            whole = shared or members == list(range(inputs.shape[-2]))
            # A gather's gradient along this axis costs two transposes.
            hidden = inputs if whole else ops.take(inputs, members, axis=-2)
            if is_sequence and not per_step:
                hidden = pool_steps(hidden, pooling, steps)
            outputs = grouped_dense(hidden, kernel) + bias
            # One unstack, whose gradient is one stack: slicing each task out
            # separately would cost a full-size gradient tensor per task.
            for index, task_logits in zip(members, tf.unstack(outputs, axis=-2)):
                logits[index] = task_logits
        return logits

    def set_output_bias(self, biases):
        """Sets every task's output bias (e.g. to its label prior's logits).

        Args:
            biases: One array per task, in task order, of `output_size`
                values (a scalar or one value for binary tasks).
        """
        for (_, members), bias in zip(self.groups, self.biases):
            rows = [
                np.broadcast_to(biases[i], (self.tasks[i].output_size,))
                for i in members
            ]
            bias.assign(np.asarray(rows, dtype=bias.dtype))

    def get_config(self):
        config = {
            "tasks": [task.get_config() for task in self.tasks],
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
        return {**super().get_config(), **config}
