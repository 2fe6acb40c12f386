"""The four phases of a MAML-MTL training step.

`MAMLMTL.compute_gradients` runs them in order:

1. `inner_phase`: the temporary per-task steps on the inner rows,
   `theta_k = theta - inner_lr * grad L_k(theta)`;
2. `outer_phase`: each task's outer loss at its own adapted weights
   `theta_k`, and its gradients with respect to the current and the adapted
   weights;
3. `pull_back`: the gradients with respect to the adapted weights carried
   back to the current weights (through the inner gradients, second order);
4. `merge`: the step's `StepResult`, logits in the batch's row order.

Every pass runs statelessly (`StatelessNetwork`): the temporary weights are
never written to the model. Only the weights the tasks share (experts, the
gates' projection) need one adapted copy per task: a weight made of one
slice per task (gate kernels, towers, heads) is moved by each task's inner
step on that task's slice only, so one adapted value of it, every slice
after its own task's step, serves every outer pass.
"""

import contextlib
import dataclasses

import tensorflow as tf

from mmoeex_tf.training.optimization import StepResult
from mmoeex_tf.training.replicas import sum_over_replicas
from mmoeex_tf.training.row_split import merge_rows
from mmoeex_tf.training.stateless import outer_batched, outer_loop, task_logits


@dataclasses.dataclass
class InnerStep:
    """What the inner phase computed.

    Attributes:
        params: Values of the trainable weights (`StatelessNetwork.trainable`).
        state: Values of the non-trainable weights after the inner pass.
        gradients: Per moving weight, this replica's inner gradients of the
            adapted tasks (`StatelessNetwork.inner_gradients`).
        logits: Dict of the inner rows' logits at the current weights.
        rates: Per moving weight, minus the inner step size.
        adapted: Per moving weight, the adapted values: a shared weight's
            copies `(tasks, ...)`, an owned weight's one value.
        copies: The number of adapted tasks.
        tape: With `order=2`, the tape that recorded `gradients` from
            `params`; `None` otherwise.
    """

    params: list
    state: list
    gradients: list
    logits: dict
    rates: list
    adapted: list
    copies: int
    tape: object


@dataclasses.dataclass
class OuterStep:
    """What the outer phase computed.

    Attributes:
        loss: The weighted total loss (unscaled, this replica's share).
        task_losses: `(tasks,)` outer task losses, this replica's share.
        logits: Dict of the outer rows' logits at the current weights.
        state: Values of the non-trainable weights after the outer passes.
        direct: Gradients of the scaled loss with respect to the current
            trainable weights, where they enter the outer passes directly.
        moved: Its gradients with respect to the adapted values.
        extra: Its gradients with respect to the model's other trainable
            weights (`StatelessNetwork.extra`).
    """

    loss: tf.Tensor
    task_losses: tf.Tensor
    logits: dict
    state: list
    direct: list
    moved: list
    extra: list


def inner_phase(scheme, model, network, part, sampled):
    """Takes the temporary per-task steps on the inner part of the batch.

    Each adapted task's moving weights take one step of the inner learning
    rate down its inner loss's gradient, summed over the replicas. With
    `order=2` a tape records the inner gradients' computation, for
    `pull_back`.

    Args:
        scheme: The `MAMLMTL` scheme.
        model: The `MMoEExModel`.
        network: The model's `StatelessNetwork`.
        part: The inner part of the batch, `(x, labels, weights, rows)`.
        sampled: The adapted tasks, `None` for all (see
            `MAMLMTL.sampled_tasks`).

    Returns:
        An `InnerStep`.
    """
    scale = model.optimizer.scale_loss(tf.constant(1.0))
    params = [tf.convert_to_tensor(v) for v in network.trainable]
    state = [tf.convert_to_tensor(v) for v in network.state]
    recorder = (
        tf.GradientTape(watch_accessed_variables=False)
        if scheme.order == 2
        else contextlib.nullcontext()
    )
    with recorder as tape:
        if tape is not None:
            tape.watch(params)
        local, logits, state = network.inner_gradients(
            params, state, part, scale, sampled
        )
    rate = model.optimizer.learning_rate if scheme.inner_lr is None else scheme.inner_lr
    rates = [-tf.cast(rate, g.dtype) for g in local]
    adapted = [
        (param if owned else param[None]) + r * g
        for param, owned, r, g in zip(
            network.moving_values(params),
            network.owned,
            rates,
            sum_over_replicas(local),
        )
    ]
    copies = len(model.tasks) if sampled is None else sampled.shape[0]
    return InnerStep(params, state, local, logits, rates, adapted, copies, tape)


def outer_phase(scheme, model, network, inner, parts, sampled):
    """Evaluates each task at its adapted weights and differentiates the loss.

    The outer passes run on the outer part of the batch (one per adapted
    task, or one vectorized pass), then, if the outer rows differ from the
    inner ones, a pass at the current weights gives their logits for the
    metrics and the tasks not drawn. The scaled loss is differentiated with
    respect to the current weights (where they enter directly), the adapted
    weights, and the model's other trainable weights.

    Args:
        scheme: The `MAMLMTL` scheme.
        model: The `MMoEExModel`.
        network: The model's `StatelessNetwork`.
        inner: The `InnerStep`.
        parts: The inner and outer parts of the batch (one and the same
            object when the batch is not split).
        sampled: The adapted tasks, `None` for all.

    Returns:
        An `OuterStep`.
    """
    part = parts[1]
    with tf.GradientTape() as tape:
        tape.watch([inner.params, inner.adapted])
        batched = scheme.uses_batched_outer(model)
        outer_pass = outer_batched if batched else outer_loop
        per_copy, state = outer_pass(
            network, inner.params, inner.adapted, inner.state, part[0], inner.copies
        )
        current = inner.logits
        if part is not parts[0]:
            current, state = network.forward(inner.params, state, part[0])
        logits = task_logits(per_copy, sampled, current, model.task_names)
        task_losses = model.compute_task_losses(part[1], part[2], logits)
        factors = scheme.task_factors(model, sampled)
        loss = scheme.total_loss(model, task_losses, factors)
        scaled_loss = model.optimizer.scale_loss(loss)
    direct, moved, extra = tape.gradient(
        scaled_loss,
        [inner.params, inner.adapted, network.extra],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    return OuterStep(loss, task_losses, current, state, direct, moved, extra)


def pull_back(network, inner, outer):
    """The meta-gradient with respect to the current trainable weights.

    Adds to the outer loss's direct gradient its gradients with respect to
    the adapted weights, which move with the current ones: each copy's as
    is (the first-order term) and, with `order=2`, their pull-back through
    the inner gradients, summed over the replicas first, so that no gradient
    has to flow through a cross-replica sum.

    Args:
        network: The model's `StatelessNetwork`.
        inner: The `InnerStep`.
        outer: The `OuterStep`.

    Returns:
        The gradients of `network.trainable`, in its order.
    """
    gradients = list(outer.direct)
    if inner.tape is not None:
        pulled = [r * g for r, g in zip(inner.rates, sum_over_replicas(outer.moved))]
        corrections = inner.tape.gradient(
            inner.gradients,
            inner.params,
            output_gradients=pulled,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        gradients = [a + b for a, b in zip(gradients, corrections)]
    for index, owned, gradient in zip(network.moving, network.owned, outer.moved):
        gradients[index] += gradient if owned else tf.reduce_sum(gradient, axis=0)
    return gradients


def merge(network, inner, outer, gradients, parts, num_rows):
    """Assembles the step's result and saves the advanced state.

    The logits at the current weights come from the inner and the outer
    rows, put back in the batch's row order; the non-trainable state after
    the outer phase is written to the model.

    Args:
        network: The model's `StatelessNetwork`.
        inner: The `InnerStep`.
        outer: The `OuterStep`.
        gradients: The gradients of `network.trainable` (`pull_back`).
        parts: The inner and outer parts of the batch.
        num_rows: The batch's row count.

    Returns:
        The `StepResult`, gradients in the order of
        `model.trainable_variables`.
    """
    logits = inner.logits
    if parts[1] is not parts[0]:
        logits = merge_rows(
            [inner.logits, outer.logits], [parts[0][3], parts[1][3]], num_rows
        )
    network.save_state(outer.state)
    gradients = network.in_model_order(gradients, outer.extra)
    return StepResult(outer.loss, outer.task_losses, logits, gradients)
