"""`MMoEExModel`: a Keras model predicting several heterogeneous tasks."""

import keras
import numpy as np
import tensorflow as tf

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.experts import DenseExperts
from mmoeex_tf.layers.mixture import MMoEEx
from mmoeex_tf.layers.task_scaling import TaskScaling
from mmoeex_tf.layers.towers import TaskHeads, TaskTowers
from mmoeex_tf.models import validation
from mmoeex_tf.tasks import check_tasks
from mmoeex_tf.training import losses
from mmoeex_tf.training.graph_options import without_model_pruning
from mmoeex_tf.training.metrics import TaskMetrics
from mmoeex_tf.training.non_finite import (
    NonFiniteMonitor,
    all_finite,
    apply_if_finite,
    check_policy,
)
from mmoeex_tf.training.optimization import JointTraining
from mmoeex_tf.training.packed_logs import PackedLogs, packed_results
from mmoeex_tf.training.replicas import num_replicas, sum_over_replicas
from mmoeex_tf.training.task_vector_metrics import TaskMeans


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class MMoEExModel(PackedLogs, keras.Model):
    """Multi-task model: shared experts, masked gates, one tower per task.

    `call` returns a dict keyed by task name (probabilities for
    classification tasks, values for regression). `fit` takes labels as a
    dict of the same keys, `NaN` marking a missing label; each task's loss
    and metrics use its present labels only. The training step delegates the
    gradient computation to `optimization` (joint training by default).

    Args:
        tasks: The `Task` specs, in output order.
        experts: An `ExpertStack`; default 8 dense experts of 16 units.
        alpha: Fraction of experts made exclusive (or excluded), in [0, 1]; 0: MMoE.
        num_exclusive: The number of such experts, instead of `alpha`.
        mode: `"exclusivity"` or `"exclusion"`.
        seed: Seed of the expert-to-task assignment.
        gate_mask: An explicit `(tasks, experts)` 0/1 gate mask.
        gate_units: Width of a projection of the input shared by the gates
            (0: the gates do not read the input).
        input_dropout: Dropout rate on the inputs of experts and gates.
        tower_units: Widths of every task's tower layers (may be empty).
        tower_activation: Activation of the tower layers.
        tower_dropout: Dropout in the towers.
        optimization: How gradients are computed; `JointTraining()` by
            default (MAML-MTL plugs in here).
        **kwargs: `keras.Model` keyword arguments such as `name`.

    Example:
    ```python
    tasks = [Task("income", "binary"), Task("age", "regression")]
    model = MMoEExModel(tasks, DenseExperts(num_experts=8, units=16), alpha=0.5)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(x, {"income": y_income, "age": y_age}, epochs=5)
    ```
    """

    def __init__(
        self,
        tasks,
        experts=None,
        alpha=0.0,
        num_exclusive=None,
        mode="exclusivity",
        seed=0,
        gate_mask=None,
        gate_units=None,
        input_dropout=0.0,
        tower_units=(16,),
        tower_activation="relu",
        tower_dropout=0.0,
        optimization=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tasks = check_tasks(tasks)
        self.task_names = [task.name for task in self.tasks]
        policy = self.dtype_policy  # the sub-layers compute as the model does
        self.mixture = MMoEEx(
            experts if experts is not None else DenseExperts(8, 16, dtype=policy),
            num_tasks=len(self.tasks),
            alpha=alpha,
            num_exclusive=num_exclusive,
            mode=mode,
            seed=seed,
            gate_mask=gate_mask,
            gate_units=gate_units,
            input_dropout=input_dropout,
            dtype=policy,
            name="mmoeex",
        )
        self.towers = TaskTowers(
            len(self.tasks),
            list(tower_units),
            activation=tower_activation,
            dropout=tower_dropout,
            seed=seed,
            dtype=policy,
            name="towers",
        )
        self.heads = TaskHeads(self.tasks, dtype=policy, name="heads")
        self.task_scaling = TaskScaling(self.tasks, name="task_scaling")
        self._prior_logits = None  # head biases `adapt` set before `build`
        if isinstance(optimization, dict):
            optimization = keras.saving.deserialize_keras_object(optimization)
        self.optimization = optimization or JointTraining()
        self.balancer = self.optimization.bind(self)
        self._tower_config = {
            "tower_units": list(tower_units),
            "tower_activation": tower_activation,
            "tower_dropout": tower_dropout,
        }
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.task_loss_tracker = TaskMeans(self.task_names, suffix="loss")
        self.non_finite_tracker = keras.metrics.Sum(name="non_finite_steps")
        self.non_finite = "skip"
        self._task_losses = losses.TaskLosses(self.tasks)
        self.task_metrics = TaskMetrics(self.tasks)
        self._loss_weights = np.array([t.loss_weight for t in self.tasks], "float32")

    @property
    def gate_mask(self):
        """The `(tasks, experts)` 0/1 mask of the gates."""
        return self.mixture.gate_mask

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) not in (2, 3):
            raise MMoEExError(
                "Features must have shape (batch, features) or (batch, steps, "
                f"features), got {input_shape}."
            )
        if not self.mixture.built:
            self.mixture.build(input_shape)
        mixture_shape, _ = self.mixture.compute_output_shape(input_shape)
        if not self.towers.built:
            self.towers.build(mixture_shape)
        if not self.heads.built:
            self.heads.build(self.towers.compute_output_shape(mixture_shape))
        if not self.task_scaling.built:
            self.task_scaling.build()
        if self._prior_logits is not None:
            self.heads.set_output_bias(self._prior_logits)
            self._prior_logits = None

    def call(self, inputs, training=None, return_logits=False, return_gates=False):
        """Predicts every task.

        Args:
            inputs: Features, `(batch, [steps,] features)`.
            training: Whether dropout is active.
            return_logits: Return logits instead of probabilities/values.
            return_gates: Also return the gates `(..., tasks, experts)`.

        Returns:
            A dict of task name to outputs, and the gate weights if
            `return_gates`.
        """
        mixtures, gates = self.mixture(inputs, training=training)
        hidden = self.towers(mixtures, training=training)
        logits = self.heads(hidden)
        outputs = {}
        for index, (task, task_logits) in enumerate(zip(self.tasks, logits)):
            task_logits = tf.cast(task_logits, tf.float32)
            outputs[task.name] = (
                task_logits if return_logits else self._activate(index, task_logits)
            )
        return (outputs, gates) if return_gates else outputs

    def _activate(self, index, logits):
        """Task `index`'s outputs from its logits, regression in label units."""
        outputs = losses.activate(self.tasks[index], logits)
        return self.task_scaling.restore_units(index, outputs)

    def adapt(
        self,
        y,
        standardize_targets=True,
        normalize_losses=True,
        prior_bias=True,
        x=None,
    ):
        """Learns the training data's statistics; call it once before `fit`.

        Stores in the model (saved and exported with it) what
        `TaskScaling.adapt` learns, and starts every head at its label prior.

        Args:
            y: Dict task name -> training labels (`NaN` = missing).
            standardize_targets: Standardise regression targets.
            normalize_losses: Divide each task's loss by its prior's loss.
            prior_bias: Set the head biases to the label prior.
            x: The training inputs, from which the experts learn what they
                need (`ExpertStack.adapt`: `SummaryExperts`' bins), or `None`.

        Returns:
            The model.
        """
        first = next(iter(y.values())) if isinstance(y, dict) and y else ()
        validation.check_labels(self.tasks, y, len(first))
        statistics = self.task_scaling.adapt(y, standardize_targets, normalize_losses)
        if x is not None:
            self.mixture.experts.adapt(x)
        if prior_bias:
            biases = [statistics[name]["prior_logits"] for name in self.task_names]
            if self.heads.built:
                self.heads.set_output_bias(biases)
            else:
                self._prior_logits = biases  # `build` sets them
        return self

    def compute_task_losses(self, labels, weights, logits):
        """Per-task masked mean losses, `(tasks,)`.

        Under a `tf.distribute` strategy, each replica returns its share:
        its own loss sum divided by the label count over all replicas, so the
        replicas' shares add up to the loss of the global batch. Regression
        labels are standardised and each loss scaled (`TaskScaling`). The
        arguments are those of `losses.TaskLosses`.
        """
        labels = {
            name: self.task_scaling.standardize(index, labels[name])
            for index, name in enumerate(self.task_names)
        }
        sums, counts = self._task_losses(labels, weights, logits)
        counts = sum_over_replicas(counts)
        scales = tf.cast(self.task_scaling.loss_scale, sums.dtype)
        return tf.math.divide_no_nan(sums, counts) * scales

    def combine_task_losses(self, task_losses, task_weights=None):
        """Weighted sum of the task losses (`loss_weight` of each task)."""
        if task_weights is None:
            task_weights = self._loss_weights
        return tf.reduce_sum(task_losses * task_weights)

    def prepare_batch(self, x, y, sample_weight):
        """Checks a batch's labels against the tasks and cleans them.

        Returns:
            `(labels, weights)` dicts keyed by task name.
        """
        validation.check_label_keys(self.task_names, y)
        if not isinstance(sample_weight, dict):  # `None` or one for every task
            sample_weight = dict.fromkeys(self.task_names, sample_weight)
        return losses.prepare_labels(self.tasks, y, sample_weight, x.shape)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels, weights = self.prepare_batch(x, y, sample_weight)
        result = self.optimization.compute_gradients(self, x, labels, weights)
        finite = all_finite(result.loss, result.gradients, self.optimizer)
        apply_if_finite(
            self.optimizer,
            result.gradients,
            self.trainable_variables,
            finite,
            compiled=self.jit_compile,
        )
        # Every replica adds its share, so the count is the global one.
        skipped = 1.0 - tf.cast(finite, tf.float32)
        self.non_finite_tracker.update_state(skipped / num_replicas())
        return self._update_metrics(
            result.loss, result.task_losses, labels, weights, result.logits, finite
        )

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels, weights = self.prepare_batch(x, y, sample_weight)
        logits = self(x, training=False, return_logits=True)
        task_losses = self.compute_task_losses(labels, weights, logits)
        loss = self.combine_task_losses(task_losses)
        return self._update_metrics(loss, task_losses, labels, weights, logits)

    def _update_metrics(self, loss, task_losses, labels, weights, logits, finite=True):
        """Updates the metrics; a step that is not `finite` counts for none."""
        keep = tf.cast(finite, tf.float32)
        self.loss_tracker.update_state(
            sum_over_replicas(tf.where(finite, loss, 0.0)), sample_weight=keep
        )
        self.task_loss_tracker.update_state(
            sum_over_replicas(tf.where(finite, task_losses, 0.0)), keep
        )
        self.task_metrics.update(labels, weights, logits, self._activate, finite)
        return packed_results(self.metrics)

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.task_loss_tracker,
            *self.task_metrics.metrics,
            self.non_finite_tracker,
        ]

    def compile(
        self, optimizer="adam", loss=None, metrics=None, non_finite="skip", **kwargs
    ):
        """Configures the model for training.

        Losses and metrics come from the tasks, so `loss` and `metrics` must
        stay `None`; every other `keras.Model.compile` argument works as
        usual (`optimizer`, `jit_compile`, `steps_per_execution`, ...).

        Args:
            optimizer: The optimizer.
            loss: Must be `None`.
            metrics: Must be `None`.
            non_finite: What a training step with a NaN or infinite loss or
                gradient does: `"skip"` its update and count it (logged as
                `non_finite_steps`), or also `"stop"` training after it
                (see `mmoeex_tf.training.non_finite`). Saved with the model.
            **kwargs: Further `keras.Model.compile` arguments.
        """
        self.non_finite = check_policy(non_finite)
        validation.check_compile_arguments(loss, metrics, **kwargs)
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        """The compile arguments, `non_finite` and the optimizer's state."""
        config = super().get_compile_config()
        if config:  # `{}` for an uncompiled model, which so loads uncompiled
            config["non_finite"] = self.non_finite
            config["optimizer_built"] = self.optimizer.built
        return config

    def compile_from_config(self, config):
        """Re-compiles a loaded model, its optimizer built if it was saved so."""
        config = keras.saving.deserialize_keras_object(config)
        optimizer_built = config.pop("optimizer_built", True)
        self.compile(**config)
        if self.built and optimizer_built:
            self.optimizer.build(self.trainable_variables)

    def fit(
        self, x=None, y=None, *args, validation_data=None, callbacks=None, **kwargs
    ):
        """`keras.Model.fit`, with the data checked first when in memory.

        The optimization's callbacks and a `NonFiniteMonitor` come before
        `callbacks`, which so see (and checkpoint) the epoch's updates.
        Grappler's model pruning is off (`graph_options.without_model_pruning`).
        The optimizer is built first: built in the first step, it makes
        `tf.function` trace that step twice (toxcast: 0.1 GB and 4 s more).
        """
        if self.built and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        validation.check_in_memory(self, x, y)
        if isinstance(validation_data, tuple):
            validation.check_in_memory(self, *validation_data[:2])
        callbacks = [
            *self.optimization.callbacks(),
            NonFiniteMonitor(self.non_finite),
            *(callbacks or []),
        ]
        kwargs.update(validation_data=validation_data, callbacks=callbacks)
        with without_model_pruning():
            return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, data checked and model pruning off as in `fit`."""
        validation.check_in_memory(self, x, y)
        with without_model_pruning():
            return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`, with the features checked first when in memory."""
        validation.check_in_memory(self, x, None)
        return super().predict(x, *args, **kwargs)

    def get_config(self):
        config = {
            "tasks": [task.get_config() for task in self.tasks],
            "experts": keras.saving.serialize_keras_object(self.mixture.experts),
            "alpha": self.mixture.alpha,
            "num_exclusive": self.mixture.num_exclusive,
            "mode": self.mixture.mode,
            "seed": self.mixture.seed,
            "gate_mask": np.asarray(self.gate_mask).tolist(),
            "gate_units": self.mixture.gate_units,
            "input_dropout": self.mixture.input_dropout,
            "optimization": keras.saving.serialize_keras_object(self.optimization),
            **self._tower_config,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["experts"] = keras.saving.deserialize_keras_object(config["experts"])
        return cls(**config)
