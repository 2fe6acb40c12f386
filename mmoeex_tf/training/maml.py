"""MAML-MTL: task balancing at the gradient level (Aoki et al., 2022).

Each training step splits the batch into an inner and an outer part. For
every task k it takes a temporary gradient step on task k's inner loss,
`theta_k = theta - inner_lr * grad L_k(theta)`, and the optimizer then
applies the gradient of `sum_k lambda_k * L_k(theta_k)`, task k's outer loss
at its own adapted weights. The temporary weights are never written to the
model: every forward pass runs the model statelessly on explicit weight
tensors (`keras.StatelessScope`), and the inner gradients are computed under
an outer gradient tape, so the second-order terms (the derivative of
`theta_k` with respect to `theta`) are exact. With `tasks_per_step=k` each
step draws a set S of k of the T tasks and optimizes the unbiased estimate
`(T / k) * sum_{j in S} lambda_j * L_j(theta_j)` instead.
"""

import fractions
import numbers

import keras
import tensorflow as tf

from mmoeex_tf._checks import check_choice, check_integer, check_number, check_seed
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.experts import DenseExperts
from mmoeex_tf.training import meta_step
from mmoeex_tf.training.optimization import Optimization
from mmoeex_tf.training.row_split import split_batch
from mmoeex_tf.training.stateless import StatelessNetwork

INNER_WEIGHTS = ("all", "shared")
OUTER_MODES = ("auto", "loop", "batched")
SPLIT_PERIOD_LIMIT = 100


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class MAMLMTL(Optimization):
    """MAML-MTL training for `MMoEExModel`, selected with `optimization=`.

    Rows of each (per-replica) batch are split in groups of `period`
    consecutive rows, `period` being the denominator of `split_ratio` as a
    fraction (at most 100; 5 for the default 0.8): the first
    `split_ratio * period` rows of each group are inner rows, the others
    outer rows. A batch too small to have an outer row (fewer than 5 rows
    for 0.8) uses all its rows for both parts.

    Under `tf.distribute.MirroredStrategy` the inner gradients are summed
    over the replicas, and so are the outer losses' gradients with respect
    to the adapted weights before (second order) each replica pulls them
    back through its own inner gradients; no gradient has to flow through a
    cross-replica sum. N replicas with global batch B thus train like one
    device with batch B whenever each replica's batch is a multiple of
    `period`.

    With `order=2`, recurrent layers of the model with `use_cudnn="auto"`
    are switched to the generic kernel when the model is created, since
    cuDNN kernels have no second derivative (this matters on GPU only);
    `use_cudnn=True` is refused. Closed gate entries stay closed: the gates'
    masks apply to the adapted weights as to any others.

    Under `mixed_float16` the inner losses are scaled by the optimizer's
    loss scale before differentiation and the inner gradients unscaled;
    an overflow makes the outer gradients non-finite, so the loss-scale
    optimizer skips the step and lowers the scale as usual.

    Args:
        inner_lr: Step size of the temporary per-task steps; `None` uses
            the optimizer's current learning rate (read every step, so
            schedules apply). 0 gives joint training.
        order: 2 for the exact meta-gradient, 1 for the first-order
            approximation (the inner gradients are treated as constants).
        split_ratio: Fraction of the rows in the inner part, in (0, 1); `None`
            uses every row for both parts.
        inner_weights: Which weights the temporary steps move: `"all"`, or
            `"shared"` (experts and gates; the towers and heads stay).
        outer: How the K outer passes run: `"loop"`, one pass per task;
            `"batched"`, one vectorized pass (`tf.vectorized_map`) over the
            K adapted weight sets; or `"auto"`, the faster of the two as
            measured (`python -m benchmarks.speed`, `benchmarks/RESULTS.md`):
            batched for `DenseExperts` without XLA, the loop otherwise
            (under `jit_compile=True` XLA turns the vectorized pass into a
            far slower program, and vectorized recurrent experts are slower
            than K passes).
        balancer: Task-loss weights `lambda_k`, see `Optimization`; they
            weight the outer losses.
        tasks_per_step: `None` to adapt to every task each step, or k in
            [1, number of tasks]: each step then draws k distinct tasks
            uniformly at random (without replacement), takes the inner
            steps and outer passes for those k only (the batched outer pass
            holds k copies of the shared weights), and optimizes, with S the
            drawn tasks, `(T / k) * sum_{j in S} lambda_j * L_j(theta_j)`,
            an unbiased estimate of the full loss over the T tasks, as
            meta-learning samples a meta-batch of tasks. Meant for models
            with many tasks, as a step's cost and memory grow with the
            adapted tasks; a task's own weights (tower, head, gate) then get
            a gradient only in the steps that draw it. The balancer and the per-task
            loss metrics still see all T tasks (see `compute_gradients`).
        seed: Integer in [0, 2**63) keying the draws: a stateless draw from
            `(seed, optimizer.iterations)`, so the same seed and data train
            alike, a resumed model (whose optimizer's iteration count is
            saved) continues the sequence, and all replicas of a
            `tf.distribute` strategy draw the same tasks. Unused without
            `tasks_per_step`.

    Attributes:
        trace_count: How many times the step was traced (a diagnostic: it
            stays 1 while batch shapes do not change).

    Example:
    ```python
    model = MMoEExModel(tasks, DenseExperts(12, 4), alpha=0.75,
                        optimization=MAMLMTL(order=2, split_ratio=0.8))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(x, y, batch_size=512, epochs=10)
    ```
    """

    def __init__(
        self,
        inner_lr=None,
        order=2,
        split_ratio=0.8,
        inner_weights="all",
        outer="auto",
        balancer=None,
        tasks_per_step=None,
        seed=0,
    ):
        super().__init__(balancer)
        self.inner_lr = check_number(
            inner_lr,
            "MAMLMTL inner_lr",
            minimum=0,
            none_means="the optimizer's learning rate",
        )
        self.order = int(check_choice(order, "MAMLMTL order", (1, 2)))
        self.period, self.outer_per_period = _split_pattern(split_ratio)
        self.split_ratio = None if split_ratio is None else float(split_ratio)
        self.inner_weights = check_choice(
            inner_weights, "MAMLMTL inner_weights", INNER_WEIGHTS
        )
        self.outer = check_choice(outer, "MAMLMTL outer", OUTER_MODES)
        self.tasks_per_step = check_integer(
            tasks_per_step, "MAMLMTL tasks_per_step", minimum=1, none_means="all tasks"
        )
        self.seed = check_seed(seed, "MAMLMTL seed")
        self.trace_count = 0

    def bind(self, model):
        """Fits the scheme to a model being created (see `Optimization`).

        Raises:
            MMoEExError: if `tasks_per_step` exceeds the model's task count.
        """
        if self.tasks_per_step is not None and self.tasks_per_step > len(model.tasks):
            raise MMoEExError(
                f"MAMLMTL tasks_per_step={self.tasks_per_step} exceeds the "
                f"model's {len(model.tasks)} tasks."
            )
        if self.order == 2:
            _use_generic_recurrent_kernels(model)
        return super().bind(model)

    def compute_gradients(self, model, x, labels, weights):
        """Returns the `StepResult` of one MAML-MTL step.

        The loss is `sum_k lambda_k * L_k(theta_k)` (this replica's share),
        `task_losses` are the outer losses `L_k(theta_k)`, and `logits` are
        at the current weights. The model's trainable variables are only
        read; its non-trainable state (dropout seeds, normalization
        statistics) advances as in a joint step. The K outer passes share
        one dropout mask.

        With `tasks_per_step=k`, only the drawn tasks S have adapted
        weights: the loss is `(T / k) * sum_{j in S} lambda_j * L_j(theta_j)`
        (plus the balancer's penalty), and `task_losses` still has all T
        entries: `L_j(theta_j)` for the drawn tasks, and for the others
        their outer loss at the current weights, `L_j(theta)` (no gradient
        flows through those). The balancer computes all T weights from, and
        the per-task loss metrics report, that vector; with
        `tasks_per_step=T` everything equals the full step's.

        The step runs the four phases of `mmoeex_tf.training.meta_step`:
        the temporary per-task steps on the inner rows, the outer passes at
        the adapted weights, the pull-back of the adapted weights' gradients
        to the current weights, and the merge into the step's result.

        Args:
            model: The `MMoEExModel`.
            x: A batch of features.
            labels: Dict of cleaned labels per task.
            weights: Dict of label weights per task (0 = missing).
        """
        self.trace_count += 1
        if not model.built:
            model.build(x.shape)
        network = StatelessNetwork(model, self.inner_weights)
        parts = split_batch((x, labels, weights), self.period, self.outer_per_period)
        sampled = self.sampled_tasks(model)
        inner = meta_step.inner_phase(self, model, network, parts[0], sampled)
        outer = meta_step.outer_phase(self, model, network, inner, parts, sampled)
        gradients = meta_step.pull_back(network, inner, outer)
        num_rows = tf.shape(x)[0]
        return meta_step.merge(network, inner, outer, gradients, parts, num_rows)

    def sampled_tasks(self, model):
        """The tasks the current step of `model` adapts to.

        Returns:
            `None` without `tasks_per_step` (all tasks); otherwise the
            `tasks_per_step` distinct task indices drawn for the optimizer's
            current iteration, an ascending int32 vector: the
            `tasks_per_step` largest of T uniform numbers drawn statelessly
            (Philox) from `(seed, model.optimizer.iterations)`.
        """
        if self.tasks_per_step is None:
            return None
        step = tf.cast(tf.convert_to_tensor(model.optimizer.iterations), tf.int64)
        key = tf.stack([tf.constant(self.seed, tf.int64), step])
        noise = tf.random.stateless_uniform([len(model.tasks)], seed=key, alg="philox")
        return tf.sort(tf.math.top_k(noise, self.tasks_per_step).indices)

    def task_factors(self, model, sampled):
        """The task-loss factors of a step adapting to `sampled` tasks.

        Returns:
            `None` for all tasks; otherwise `T / k` for the k sampled tasks
            and 0 for the others, so the loss is the unbiased estimate
            `(T / k) * sum_{j in S} lambda_j * L_j(theta_j)`.
        """
        if sampled is None:
            return None
        num_tasks = len(model.tasks)
        drawn = tf.scatter_nd(sampled[:, None], tf.ones_like(sampled), [num_tasks])
        return tf.cast(drawn, tf.float32) * (num_tasks / self.tasks_per_step)

    def uses_batched_outer(self, model):
        """Whether the outer passes of `model` run as one vectorized pass."""
        if self.outer != "auto":
            return self.outer == "batched"
        dense = isinstance(model.mixture.experts, DenseExperts)
        return dense and not model.jit_compile

    def get_config(self):
        """Returns the config of the scheme."""
        config = {
            "inner_lr": self.inner_lr,
            "order": self.order,
            "split_ratio": self.split_ratio,
            "inner_weights": self.inner_weights,
            "outer": self.outer,
            "tasks_per_step": self.tasks_per_step,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


def _split_pattern(split_ratio):
    """Returns `(period, outer rows per period)` of a split ratio."""
    if split_ratio is None:
        return None, None
    if (
        isinstance(split_ratio, bool)
        or not isinstance(split_ratio, numbers.Real)
        or not 0 < split_ratio < 1
    ):
        raise MMoEExError(
            f"MAMLMTL split_ratio must be None or a number in (0, 1), got "
            f"{split_ratio!r}."
        )
    outer = fractions.Fraction(1 - float(split_ratio))
    outer = outer.limit_denominator(SPLIT_PERIOD_LIMIT)
    if not 0 < outer < 1:
        raise MMoEExError(
            f"MAMLMTL split_ratio {split_ratio!r} leaves no inner or no outer row "
            f"in {SPLIT_PERIOD_LIMIT}; use a ratio in [0.01, 0.99]."
        )
    return outer.denominator, outer.numerator


def _use_generic_recurrent_kernels(model):
    """Switches `use_cudnn="auto"` recurrent layers to the generic kernel."""
    for layer in _nested_layers(vars(model), {id(model)}):
        if not isinstance(layer, keras.layers.RNN) or not hasattr(layer, "use_cudnn"):
            continue
        if layer.use_cudnn is True:
            raise MMoEExError(
                f"Layer {layer.name!r} has use_cudnn=True, but cuDNN recurrent "
                "kernels have no second derivative: use MAMLMTL(order=1) or "
                "use_cudnn='auto' (switched to the generic kernel)."
            )
        layer.use_cudnn = False


def _nested_layers(value, seen):
    """Yields the layers in `value` and, depth first, the layers they hold.

    A layer holds the layers among its attributes' values, looking into
    lists, tuples and dicts (Keras has no public list of a layer's nested
    layers). Each object is visited once.

    Args:
        value: A layer, a list, tuple or dict, or any other object.
        seen: Ids of the objects visited so far (updated).
    """
    if id(value) in seen:
        return
    if isinstance(value, (dict, list, tuple)):
        seen.add(id(value))
        for item in list(value.values() if isinstance(value, dict) else value):
            yield from _nested_layers(item, seen)
    elif isinstance(value, keras.layers.Layer):
        seen.add(id(value))
        yield value
        yield from _nested_layers(vars(value), seen)
