"""The model's forward pass on explicit weight tensors, for MAML-MTL steps.

MAML-MTL evaluates the model at temporary (adapted) weights that are never
written to its variables: every pass here runs the model's layers inside a
`keras.StatelessScope` that maps each variable to a given tensor, and returns
the non-trainable state (dropout seeds, normalization statistics) it moved
as tensors too, so the caller threads it from one pass to the next.
"""

import keras
import tensorflow as tf


class StatelessNetwork:
    """The model's layers run statelessly on explicit weight tensors.

    Args:
        model: The `MMoEExModel`.
        inner_weights: `"all"` or `"shared"`: which trainable weights the
            inner steps move.

    Attributes:
        trainable: The trainable variables of the mixture, towers and heads.
        state: Their non-trainable variables.
        extra: The model's other trainable variables (a balancer's).
        moving: Indices in `trainable` of the weights the inner steps move.
        owned: Per moving weight, whether it is made of one slice per task
            that only that task's output reads (gate kernels and biases,
            towers, heads), rather than shared by the tasks (experts, the
            gates' projection).
    """

    def __init__(self, model, inner_weights):
        self.model = model
        layers = [model.mixture, model.towers, model.heads]
        self.trainable = [v for layer in layers for v in layer.trainable_variables]
        self.state = [v for layer in layers for v in layer.non_trainable_variables]
        own = {id(v) for v in self.trainable}
        self.extra = [v for v in model.trainable_variables if id(v) not in own]
        shared = {id(v) for v in model.mixture.trainable_variables}
        self.moving = [
            index
            for index, variable in enumerate(self.trainable)
            if inner_weights == "all" or id(variable) in shared
        ]
        per_task = model.mixture.gate.task_weights + [
            v for layer in layers[1:] for v in layer.trainable_variables
        ]
        per_task = {id(v) for v in per_task}
        self.owned = [id(self.trainable[index]) in per_task for index in self.moving]

    def moving_values(self, params):
        """The entries of `params` that the inner steps move."""
        return [params[index] for index in self.moving]

    def with_moved(self, params, moved):
        """A copy of `params` whose moving entries are replaced by `moved`."""
        params = list(params)
        for index, value in zip(self.moving, moved):
            params[index] = value
        return params

    def forward(self, params, state, x, moved=None):
        """Returns the logits and the updated state values.

        Args:
            params: Values of the trainable weights.
            state: Values of the non-trainable weights.
            x: The features.
            moved: Values replacing the moving entries of `params`, if any.
        """
        if moved is not None:
            params = self.with_moved(params, moved)
        mapping = list(zip(self.trainable, params)) + list(zip(self.state, state))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logits = self.model.call(x, training=True, return_logits=True)
        return logits, [scope.get_current_value(v) for v in self.state]

    def inner_gradients(self, params, state, part, scale, tasks=None):
        """The tasks' inner-loss gradients with respect to the moving weights.

        A shared weight gets one gradient per task. An owned weight gets one
        gradient, of the tasks' summed loss: each task's slice of it is read
        by that task's loss alone, so the slice holds that task's own
        gradient, and one step down it takes every task's inner step on its
        own slice at once.

        Args:
            params: Values of the trainable weights.
            state: Values of the non-trainable weights.
            part: The inner part of the batch, `(x, labels, weights, rows)`.
            scale: The optimizer's loss scale.
            tasks: `None` for every task, or a vector of the task indices
                (of static length) to differentiate.

        Returns:
            `(gradients, logits, state)`: per moving weight, this replica's
            gradients: a shared weight's stacked `(tasks, ...)` in the order
            of `tasks`, an owned weight's of the weight's shape; the inner
            logits; the updated state values.
        """
        moving = self.moving_values(params)
        shared = [value for value, owned in zip(moving, self.owned) if not owned]
        owned = [value for value, owned in zip(moving, self.owned) if owned]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(moving)
            logits, state = self.forward(params, state, part[0])
            losses = self.model.compute_task_losses(part[1], part[2], logits)
            if tasks is not None:
                losses = tf.gather(losses, tasks)
            targets = tf.unstack(losses * scale)
            total = tf.add_n(targets)
        zero = tf.UnconnectedGradients.ZERO
        per_task = [
            tape.gradient(target, shared, unconnected_gradients=zero)
            for target in targets
        ]
        stacked = iter(tf.stack(gradients) for gradients in zip(*per_task))
        summed = iter(tape.gradient(total, owned, unconnected_gradients=zero))
        gradients = [
            (next(summed) if is_owned else next(stacked)) / tf.cast(scale, value.dtype)
            for value, is_owned in zip(moving, self.owned)
        ]
        return gradients, logits, state

    def adapted_copy(self, adapted, copy):
        """The moving weights' values in the `copy`-th adapted set.

        Args:
            adapted: Per moving weight, its adapted values: a shared weight's
                copies `(copies, ...)`, an owned weight's one value (see
                `inner_gradients`).
            copy: Index of the copy.
        """
        return [
            value if owned else value[copy] for value, owned in zip(adapted, self.owned)
        ]

    def save_state(self, state):
        """Writes the state values back to the model's variables."""
        for variable, value in zip(self.state, state):
            variable.assign(value)

    def in_model_order(self, gradients, extra):
        """Orders the gradients like `model.trainable_variables`.

        Args:
            gradients: Gradients of `trainable`, in its order.
            extra: Gradients of `extra`, in its order.
        """
        by_id = {
            id(v): g
            for v, g in zip(self.trainable + self.extra, gradients + list(extra))
        }
        return [by_id[id(v)] for v in self.model.trainable_variables]


def outer_loop(network, params, adapted, state, x, copies):
    """Every task's logits at every copy of the adapted weights, one pass per copy.

    Args:
        network: The `StatelessNetwork`.
        params: Values of the trainable weights.
        adapted: Per moving weight, its adapted values (see
            `StatelessNetwork.adapted_copy`).
        state: Values of the non-trainable weights.
        x: The features.
        copies: The number of adapted weight sets.

    Returns:
        `(logits, state)`: `logits[name][j]` is task `name`'s logits at the
        j-th copy; the updated state values (the copies share the input
        state, hence one dropout mask).
    """
    passes = []
    for copy in range(copies):
        moved = network.adapted_copy(adapted, copy)
        copy_logits, new_state = network.forward(params, state, x, moved)
        passes.append(copy_logits)
    logits = {name: [p[name] for p in passes] for name in network.model.task_names}
    return logits, new_state


def outer_batched(network, params, adapted, state, x, copies):
    """Every task's logits at every copy of the adapted weights, one pass.

    Only the shared weights' copies are batched; the other weights (fixed
    or owned, see `StatelessNetwork.owned`) are the same in every copy, so
    `tf.vectorized_map` computes what reads only them (a gate without a
    projection) once, and multiplies by the towers' and heads' kernels in
    one matmul over all copies.

    Args:
        network: The `StatelessNetwork`.
        params: Values of the trainable weights.
        adapted: Per moving weight, its adapted values (see
            `StatelessNetwork.adapted_copy`).
        state: Values of the non-trainable weights.
        x: The features.
        copies: The number of adapted weight sets.

    Returns:
        `(logits, state)` as `outer_loop`, `logits[name]` a tensor
        `(copies, ...)`.
    """
    copied = [index for index, owned in zip(network.moving, network.owned) if not owned]
    if not copied:  # frozen experts: nothing varies between the copies
        return outer_loop(network, params, adapted, state, x, copies)
    names = network.model.task_names
    fixed = network.with_moved(params, adapted)

    def one_copy(values):
        weights = list(fixed)
        for index, value in zip(copied, values):
            weights[index] = value
        copy_logits, new_state = network.forward(weights, state, x)
        return [copy_logits[name] for name in names], new_state

    shared = [value for value, owned in zip(adapted, network.owned) if not owned]
    all_logits, new_state = tf.vectorized_map(one_copy, shared)
    logits = dict(zip(names, all_logits))
    return logits, [value[0] for value in new_state]


def task_logits(per_copy, tasks, current, names):
    """Each task's outer logits, at its own copy of the adapted weights.

    Args:
        per_copy: Output of an outer pass: `per_copy[name][j]`, task
            `name`'s logits at the j-th copy.
        tasks: `None` when copy k belongs to task k; otherwise the ascending
            vector of the sampled tasks, copy j belonging to `tasks[j]`.
        current: Dict of logits at the current weights, used (without
            gradient) for the tasks not sampled.
        names: The task names, in output order.
    """
    if tasks is None:
        return {name: per_copy[name][k] for k, name in enumerate(names)}
    owners = tf.equal(tf.range(len(names))[:, None], tasks[None])
    sampled = tf.reduce_any(owners, axis=1)
    copy = tf.argmax(tf.cast(owners, tf.int32), axis=1, output_type=tf.int32)
    return {
        name: tf.where(
            sampled[k],
            tf.gather(per_copy[name], copy[k]),
            tf.stop_gradient(current[name]),
        )
        for k, name in enumerate(names)
    }
