"""How a training step turns a batch into gradients.

`MMoEExModel.train_step` delegates the loss-and-gradient computation to an
optimization object, so schemes other than joint training (MAML-MTL) plug in
without touching the model. An optimization has one method,
`compute_gradients(model, x, labels, weights)`, returning a `StepResult`.
"""

import dataclasses

import keras
import tensorflow as tf


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


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class JointTraining:
    """Ordinary joint training: the gradient of the weighted sum of task losses.

    The loss is `sum_k lambda_k * L_k` with `lambda_k` each task's
    `loss_weight`.
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
            loss = model.combine_task_losses(task_losses)
            scaled_loss = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, model.trainable_variables)
        return StepResult(loss, task_losses, logits, gradients)

    def get_config(self):
        """Returns the (empty) config."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Creates the object from its config."""
        return cls(**config)
