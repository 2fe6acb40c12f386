"""Task-loss weight balancers: how much each task's loss counts in a step.

A balancer turns the tasks' current losses into one weight per task,
`lambda_k`, and may add a penalty to the total loss. Any optimization scheme
(joint training, MAML-MTL) takes one as `balancer=`:

- `EqualWeights`: every task weighs 1.
- `StaticWeights`: fixed weights given per task name.
- `DynamicWeightAverage` (DWA, Liu et al., CVPR 2019): weights from how fast
  each task's epoch loss falls.
- `LossBalancedTaskWeighting` (LBTW, Liu et al., AAAI 2019): weights from
  each task's loss relative to its loss at the start of the epoch.
- `UncertaintyWeighting` (Kendall et al., CVPR 2018): learned
  homoscedastic-uncertainty weights.

Balancers are Keras layers: the model tracks them, so their state is saved
with the model's weights and mirrored under `tf.distribute`.
"""

import keras
import tensorflow as tf

from mmoeex_tf._checks import check_number, check_positive_number
from mmoeex_tf.errors import MMoEExError


class Balancer(keras.layers.Layer):
    """Base class: maps the tasks' losses to loss weights.

    The life cycle: `bind(tasks)` once, when the model is created (checks the
    tasks, creates the state); calling the balancer once per training step
    with the `(tasks,)` losses over the global batch returns the `(tasks,)`
    weights (and may update its state); `penalty()` is added once to the
    total loss of the global batch; `end_epoch()` runs eagerly after every
    epoch of `fit`.

    Subclasses implement `call` and, as needed, `create_state`, `penalty` and
    `end_epoch`.

    Args:
        **kwargs: Base layer keyword arguments; the dtype is float32 unless
            given.
    """

    def __init__(self, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        self.tasks = None

    def bind(self, tasks):
        """Binds the balancer to the model's tasks and creates its state.

        Args:
            tasks: The model's `Task` specs, in output order.
        """
        self.tasks = tuple(tasks)
        self.create_state(len(self.tasks))
        self.built = True

    def create_state(self, num_tasks):
        """Creates the balancer's variables (none by default)."""

    def penalty(self):
        """A term added once to the total loss (0 by default)."""
        return 0.0

    def end_epoch(self):
        """Updates the state at the end of an epoch (nothing by default)."""

    def add_state(self, name, shape, initializer="zeros"):
        """Adds a non-trainable state variable, kept equal on all replicas."""
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=initializer,
            trainable=False,
            aggregation="only_first_replica",
        )


def _check_bounds(bounds):
    if bounds is None:
        return None
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        low, high = -1.0, -2.0
    if not 0 <= low <= high < float("inf"):
        raise MMoEExError(
            f"bounds must be None or (low, high) with 0 <= low <= high, got {bounds!r}."
        )
    return low, high


def _clip(weights, bounds):
    return weights if bounds is None else tf.clip_by_value(weights, *bounds)


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class EqualWeights(Balancer):
    """Every task's loss weighs 1."""

    def call(self, task_losses):
        return tf.ones_like(task_losses)


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class StaticWeights(Balancer):
    """Fixed loss weights, one per task.

    Args:
        weights: Dict of task name to a finite weight >= 0; every task of the
            model needs one.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, weights, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(weights, dict):
            raise MMoEExError(
                "StaticWeights weights must be a dict of task name to weight, "
                f"got {type(weights).__name__}."
            )
        self.weights_by_task = {
            name: check_number(weight, f"StaticWeights weights[{name!r}]", 0)
            for name, weight in weights.items()
        }

    def create_state(self, num_tasks):
        names = [task.name for task in self.tasks]
        missing = [name for name in names if name not in self.weights_by_task]
        unknown = sorted(set(self.weights_by_task) - set(names))
        if missing or unknown:
            raise MMoEExError(
                f"StaticWeights weights must give one weight per task {names}; "
                f"missing: {missing}, unknown: {unknown}."
            )
        self.vector = tf.constant([self.weights_by_task[n] for n in names])

    def call(self, task_losses):
        return tf.ones_like(task_losses) * self.vector

    def get_config(self):
        return {**super().get_config(), "weights": self.weights_by_task}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class DynamicWeightAverage(Balancer):
    """Dynamic Weight Average (DWA; Liu, Johns and Davison, CVPR 2019).

    With `r_k` task k's mean loss over the last finished epoch divided by its
    mean over the epoch before, the weights are
    `K * softmax(r / temperature)`; they are 1 until two epochs have
    finished. The defaults follow the MMoEEx reference code: temperature K
    (the number of tasks) and weights clipped to [0.5, 1.5]. The epoch means
    are over the losses the balancer is called with, every step.

    Args:
        temperature: Softmax temperature; `None` uses the number of tasks.
        bounds: `(low, high)` to clip the weights to, or `None`.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, temperature=None, bounds=(0.5, 1.5), **kwargs):
        super().__init__(**kwargs)
        check_positive_number(
            temperature,
            "DynamicWeightAverage temperature",
            none_means="the number of tasks",
        )
        self.temperature = temperature
        self.bounds = _check_bounds(bounds)

    def create_state(self, num_tasks):
        self.loss_sum = self.add_state("loss_sum", (num_tasks,))
        self.steps = self.add_state("steps", ())
        self.epoch_means = self.add_state("epoch_means", (2, num_tasks), "ones")
        self.epochs = self.add_state("epochs", ())

    def call(self, task_losses):
        self.loss_sum.assign_add(task_losses)
        self.steps.assign_add(1.0)
        num_tasks = len(self.tasks)
        temperature = self.temperature or float(num_tasks)
        means = tf.convert_to_tensor(self.epoch_means)
        ratios = tf.math.divide_no_nan(means[1], means[0])
        weights = num_tasks * tf.nn.softmax(ratios / temperature)
        weights = tf.where(self.epochs >= 2.0, weights, tf.ones_like(weights))
        return _clip(weights, self.bounds)

    def end_epoch(self):
        if float(self.steps.numpy()) == 0.0:
            return
        mean = self.loss_sum / self.steps
        self.epoch_means.assign(tf.stack([self.epoch_means[1], mean]))
        self.epochs.assign_add(1.0)
        self.loss_sum.assign(tf.zeros_like(self.loss_sum))
        self.steps.assign(0.0)

    def get_config(self):
        config = {"temperature": self.temperature, "bounds": self.bounds}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class LossBalancedTaskWeighting(Balancer):
    """Loss-Balanced Task Weighting (LBTW; Liu, Liang and Gitter, AAAI 2019).

    Task k weighs `(L_k / L_k0) ** alpha`, where `L_k0` is its loss at the
    first step of the current epoch, so tasks that already improved a lot
    weigh less. The defaults follow the MMoEEx reference code: alpha 0.5 and
    weights clipped to [0.5, 1.5].

    Args:
        alpha: The exponent, >= 0.
        bounds: `(low, high)` to clip the weights to, or `None`.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, alpha=0.5, bounds=(0.5, 1.5), **kwargs):
        super().__init__(**kwargs)
        check_number(alpha, "LossBalancedTaskWeighting alpha", minimum=0)
        self.alpha = alpha
        self.bounds = _check_bounds(bounds)

    def create_state(self, num_tasks):
        self.initial_losses = self.add_state("initial_losses", (num_tasks,))
        self.epoch_start = self.add_state("epoch_start", (), "ones")

    def call(self, task_losses):
        initial = tf.where(self.epoch_start > 0, task_losses, self.initial_losses)
        self.initial_losses.assign(initial)
        self.epoch_start.assign(0.0)
        weights = tf.math.divide_no_nan(task_losses, initial) ** self.alpha
        return _clip(weights, self.bounds)

    def end_epoch(self):
        self.epoch_start.assign(1.0)

    def get_config(self):
        config = {"alpha": self.alpha, "bounds": self.bounds}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class UncertaintyWeighting(Balancer):
    """Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, 2018).

    Each task has a trainable log variance `s_k` (initially 0); the loss is
    `sum_k c_k * exp(-s_k) * L_k + 0.5 * s_k`, with `c_k` 1/2 for regression
    and 1 for classification tasks. The `s_k` are model weights, trained by
    the model's optimizer and saved with the model.

    Args:
        **kwargs: Base layer keyword arguments.
    """

    def create_state(self, num_tasks):
        self.log_variances = self.add_weight(
            name="log_variances", shape=(num_tasks,), initializer="zeros"
        )
        self.factors = tf.constant(
            [0.5 if task.kind == "regression" else 1.0 for task in self.tasks]
        )

    def call(self, task_losses):
        return self.factors * tf.exp(-tf.convert_to_tensor(self.log_variances))

    def penalty(self):
        return 0.5 * tf.reduce_sum(self.log_variances)


BALANCERS = {
    "equal": EqualWeights,
    "dwa": DynamicWeightAverage,
    "lbtw": LossBalancedTaskWeighting,
    "uncertainty": UncertaintyWeighting,
}


def get(identifier):
    """Returns a balancer from a name, a dict of weights or a config.

    Args:
        identifier: `None` (returned as is), a `Balancer`, a name in
            `BALANCERS` (`"equal"`, `"dwa"`, `"lbtw"`, `"uncertainty"`), a
            dict of task name to fixed weight (a `StaticWeights`), or a
            serialized balancer.

    Raises:
        MMoEExError: if `identifier` is none of these.
    """
    if identifier is None or isinstance(identifier, Balancer):
        return identifier
    if isinstance(identifier, str) and identifier in BALANCERS:
        return BALANCERS[identifier]()
    if isinstance(identifier, dict):
        if isinstance(identifier.get("config"), dict):
            return keras.saving.deserialize_keras_object(identifier)
        return StaticWeights(identifier)
    raise MMoEExError(
        f"balancer must be None, a Balancer, one of {sorted(BALANCERS)} or a "
        f"dict of task name to weight, got {identifier!r}."
    )


class EpochEnd(keras.callbacks.Callback):
    """Calls a balancer's `end_epoch` after every epoch of `fit`.

    Args:
        balancer: The `Balancer`.
    """

    def __init__(self, balancer):
        super().__init__()
        self.balancer = balancer

    def on_epoch_end(self, epoch, logs=None):
        self.balancer.end_epoch()
