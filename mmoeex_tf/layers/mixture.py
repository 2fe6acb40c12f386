"""The MMoEEx mixture layer: shared experts, one masked gate per task."""

import keras
import numpy as np
from keras import ops

from mmoeex_tf._checks import check_positive_integer, check_rate
from mmoeex_tf.layers.assignment import check_gate_mask, expert_assignment
from mmoeex_tf.layers.batched_ops import mix
from mmoeex_tf.layers.experts import ExpertStack
from mmoeex_tf.layers.gate import MaskedSoftmaxGate


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class MMoEEx(keras.layers.Layer):
    """Multi-gate mixture of experts with exclusivity (Aoki et al., 2022).

    Every task mixes the outputs of the shared experts with its own softmax
    gate. A fraction `alpha` of the experts is tied to a single task, drawn at
    random from `seed`: with `mode="exclusivity"` such an expert is open to
    that task only, with `mode="exclusion"` it is closed to that task only.
    `alpha=0` is exactly MMoE (Ma et al., 2018). The drawn task-by-expert
    mask is stored in the config, so a reloaded layer gates identically.

    Args:
        experts: An `ExpertStack` (dense, recurrent, convolutional or any
            layer through `LayerExperts`).
        num_tasks: Number of tasks (gates).
        alpha: Fraction of the experts made exclusive or excluded, in [0, 1].
        num_exclusive: The number of such experts, instead of `alpha`.
        mode: `"exclusivity"` or `"exclusion"`.
        seed: Seed of the expert-to-task draw.
        gate_mask: An explicit `(tasks, experts)` 0/1 mask; overrides
            `alpha`, `num_exclusive`, `mode` and `seed`.
        gate_units: Width of a linear projection of the input shared by all
            gates (`MaskedSoftmaxGate` `projection_units`); `None` gives each
            gate its own `(features, experts)` kernel; 0 gates that do not
            read the input (each task one learned mixture).
        input_dropout: Dropout rate on the inputs, before the experts and
            the gates, in [0, 1) (for example 0.5 on sparse bit vectors such
            as molecular fingerprints).
        **kwargs: Base layer keyword arguments.

    Input shape:
        `(batch, features)` or `(batch, steps, features)`.

    Output:
        A tuple `(mixtures, gate_weights)`: `(..., tasks, units)` and
        `(..., tasks, experts)`, where `...` is the batch (and steps). With
        a single expert every task's mixture is that expert's output, given
        once: `(..., 1, units)`, which `TaskTowers` and `TaskHeads`
        broadcast over the tasks.
    """

    def __init__(
        self,
        experts,
        num_tasks,
        alpha=0.0,
        num_exclusive=None,
        mode="exclusivity",
        seed=0,
        gate_mask=None,
        gate_units=None,
        input_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(experts, ExpertStack):
            raise TypeError(
                "experts must be an ExpertStack (DenseExperts, RecurrentExperts, "
                f"Conv1DExperts or LayerExperts), got {type(experts).__name__}."
            )
        self.experts = experts
        self.num_tasks = check_positive_integer(num_tasks, "MMoEEx num_tasks")
        if gate_mask is None:
            gate_mask = expert_assignment(
                self.num_tasks,
                experts.num_experts,
                alpha=None if num_exclusive is not None else alpha,
                num_exclusive=num_exclusive,
                mode=mode,
                seed=seed,
            )
        self.gate_mask = check_gate_mask(gate_mask, self.num_tasks, experts.num_experts)
        self.alpha, self.num_exclusive = alpha, num_exclusive
        self.mode, self.seed = mode, seed
        # The attribute name `gate` is where saved weights are found.
        self.gate = MaskedSoftmaxGate(
            self.gate_mask,
            projection_units=gate_units,
            dtype=self.dtype_policy,
            name="gates",
        )
        self.input_dropout = check_rate(input_dropout, "MMoEEx input_dropout")
        self._input_dropout = None
        if self.input_dropout:
            self._input_dropout = keras.layers.Dropout(
                self.input_dropout, seed=seed, dtype=self.dtype_policy, name="inputs"
            )

    @property
    def gate_units(self):
        """Width of the gates' shared input projection (`None`: none)."""
        return self.gate.projection_units

    @property
    def num_experts(self):
        """Number of experts."""
        return self.experts.num_experts

    def build(self, input_shape):
        for layer in (self.experts, self.gate):
            if not layer.built:
                layer.build(input_shape)

    def call(self, inputs, training=None):
        if self._input_dropout is not None:
            inputs = self._input_dropout(inputs, training=training)
        expert_outputs = self.experts(inputs, training=training)
        gate_weights = self.gate(inputs)
        # Experts built under another dtype policy mix in the gate's dtype.
        expert_outputs = ops.cast(expert_outputs, gate_weights.dtype)
        if self.num_experts == 1:
            # Every gate weight is exactly 1: the one mixture of all tasks,
            # left for the towers to broadcast rather than copied per task.
            return expert_outputs, gate_weights
        if self.gate.constant:
            # One open expert per task (single-task networks): that expert's
            # output, rather than a product with one-hot weights.
            open_expert = np.argmax(self.gate_mask, axis=-1)
            return ops.take(expert_outputs, open_expert, axis=-2), gate_weights
        return mix(gate_weights, expert_outputs), gate_weights

    def expert_outputs(self, inputs):
        """Returns every expert's output, `(..., experts, units)`, in inference."""
        return self.experts(inputs, training=False)

    def compute_output_shape(self, input_shape):
        lead = tuple(input_shape[:-1])
        mixtures = lead + (1 if self.num_experts == 1 else self.num_tasks,)
        gates = lead + (self.num_tasks, self.num_experts)
        return mixtures + (self.experts.output_units,), gates

    def get_config(self):
        config = {
            "experts": keras.saving.serialize_keras_object(self.experts),
            "num_tasks": self.num_tasks,
            "alpha": self.alpha,
            "num_exclusive": self.num_exclusive,
            "mode": self.mode,
            "seed": self.seed,
            "gate_mask": np.asarray(self.gate_mask).tolist(),
            "gate_units": self.gate_units,
            "input_dropout": self.input_dropout,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["experts"] = keras.saving.deserialize_keras_object(config["experts"])
        return cls(**config)
