"""How a training step turns a batch into gradients.

`MMoEExModel.train_step` delegates the loss-and-gradient computation to an
optimization object, so schemes other than joint training (MAML-MTL) plug in
without touching the model. An optimization subclasses `Optimization` and
implements `compute_gradients(model, x, labels, weights)`, returning a
`StepResult`; `Optimization` holds the task-loss weighting (a balancer from
`mmoeex_tf.training.balancers`, or the tasks' `loss_weight`) that every scheme shares.
"""

import dataclasses

import keras
import tensorflow as tf

from mmoeex_tf.training import balancers
from mmoeex_tf.training.replicas import num_replicas, sum_over_replicas


@dataclasses.dataclass
class StepResult:
    """What a training step computed.

    Attributes:
        loss: The weighted total loss (unscaled, this replica's share).
        task_losses: `(tasks,)` per-task losses, this replica's share.
        logits: Dict of task name to logits at the current weights, for the
            metrics.
        gradients: Gradients for `model.trainable_variables`.
    """

    loss: tf.Tensor
    task_losses: tf.Tensor
    logits: dict
    gradients: list


class Optimization:
    """Base class of the optimization schemes: how task losses are weighted.

    The total loss is `sum_k lambda_k * L_k`. Without a balancer,
    `lambda_k` is each task's `loss_weight`; with one, the balancer's
    weights replace them, computed every step from the tasks' losses over the
    global batch (no gradient flows through those losses), and the
    balancer's `penalty()` is added once per global batch.

    Args:
        balancer: `None`, a `Balancer`, its name (`"equal"`, `"dwa"`,
            `"lbtw"`, `"uncertainty"`) or a dict of fixed weights per task
            (see `mmoeex_tf.training.balancers.get`).
    """

    def __init__(self, balancer=None):
        self.balancer = balancers.get(balancer)

    def bind(self, model):
        """Fits the scheme to a model being created.

        Called by `MMoEExModel.__init__`; checks the balancer against the
        model's tasks and creates its state.

        Returns:
            The balancer (a layer the model tracks, so its variables are
            trained and saved with the model's), or `None`.
        """
        if self.balancer is not None:
            self.balancer.bind(model.tasks)
        return self.balancer

    def callbacks(self):
        """Keras callbacks `MMoEExModel.fit` adds: the balancer's epoch hook."""
        if self.balancer is None:
            return []
        return [balancers.EpochEnd(self.balancer)]

    def total_loss(self, model, task_losses, task_factors=None):
        """This replica's share of the weighted total loss.

        Args:
            model: The `MMoEExModel`.
            task_losses: `(tasks,)` this replica's shares of the task losses.
            task_factors: Optional `(tasks,)` factors for the task losses,
                applied after the balancer has weighed the unscaled losses;
                a task with factor 0 adds nothing (not even a NaN of its).
        """
        weights, penalty = None, 0.0
        if self.balancer is not None:
            weights = self.balancer(sum_over_replicas(tf.stop_gradient(task_losses)))
            penalty = self.balancer.penalty() / num_replicas()
        if task_factors is not None:
            task_losses = tf.where(task_factors == 0, 0.0, task_losses * task_factors)
        return model.combine_task_losses(task_losses, weights) + penalty

    def get_config(self):
        """Returns the config (the serialized balancer)."""
        return {"balancer": keras.saving.serialize_keras_object(self.balancer)}

    @classmethod
    def from_config(cls, config):
        """Creates the object from its config."""
        return cls(**config)


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class JointTraining(Optimization):
    """Ordinary joint training: the gradient of the weighted sum of task losses.

    The loss is `sum_k lambda_k * L_k` with `lambda_k` each task's
    `loss_weight`, or the balancer's weights.

    Args:
        balancer: Task-loss weighting, see `Optimization`.
    """

    def compute_gradients(self, model, x, labels, weights):
        """Returns the `StepResult` of one joint step.

        Args:
            model: The `MMoEExModel`.
            x: A batch of features.
            labels: Dict of cleaned labels per task.
            weights: Dict of label weights per task (0 = missing).
        """
        with tf.GradientTape() as tape:
            logits = model(x, training=True, return_logits=True)
            task_losses = model.compute_task_losses(labels, weights, logits)
            loss = self.total_loss(model, task_losses)
            scaled_loss = model.optimizer.scale_loss(loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        # A weight the loss does not use (for example one of a custom expert
        # layer's) gets a zero gradient, as in MAML-MTL. (TensorFlow's
        # `unconnected_gradients=ZERO`, which MAML-MTL uses on tensors, fails
        # on Keras variables.)
        gradients = [
            tf.zeros(v.shape, v.dtype) if g is None else g
            for g, v in zip(gradients, variables)
        ]
        return StepResult(loss, task_losses, logits, gradients)
