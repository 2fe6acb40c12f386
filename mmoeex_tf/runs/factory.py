"""Building and compiling the model a `RunConfig` describes."""

import math

import keras
import numpy as np
import tensorflow as tf

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers.experts import Conv1DExperts, DenseExperts, RecurrentExperts
from mmoeex_tf.layers.summary_experts import SummaryExperts
from mmoeex_tf.models import baselines
from mmoeex_tf.models.mmoeex_model import MMoEExModel
from mmoeex_tf.runs.config import AUTO
from mmoeex_tf.training.maml import MAMLMTL

#: The most steps per execution `"auto"` picks (`steps_per_execution`).
AUTO_STEPS_PER_EXECUTION = 16


def build_model(config, tasks, input_shape, train_rows=None):
    """Builds and compiles the model a config describes.

    `"mmoeex"` is an `MMoEExModel` with `alpha` and `mode`; `"mmoe"` the
    same with every expert open to every task; `"shared-bottom"` an MMoE
    with a single expert (as `baselines.shared_bottom`, for any expert kind);
    `"single-task"` one expert per task with a diagonal gate mask, so each
    task has its own expert and tower and no weight is shared (independent
    single-task networks, trained and saved as one model). `gate_units`
    gives the gates of MMoEEx and MMoE a shared input projection; the other
    two have a constant gate and ignore it.

    The weights are drawn from `config.seed`: Python's, NumPy's and
    TensorFlow's random number generators are seeded with it first
    (`keras.utils.set_random_seed`), so one config gives the same model in
    `mmoeex train`, a Keras Tuner trial or a script.

    Args:
        config: A `RunConfig`.
        tasks: The `Task` specs.
        input_shape: Shape of one example, `(features,)` or `(steps,
            features)`.
        train_rows: Number of training examples; the cosine learning-rate
            schedule and `steps_per_execution="auto"` need it to know the
            steps of an epoch.

    Returns:
        A built `MMoEExModel` compiled with AdamW.

    Raises:
        MMoEExError: if the expert kind needs sequences and the data are
            tabular, the MAML-MTL options are invalid, or a learning-rate
            schedule is asked for without `train_rows`.
    """
    sequence = len(input_shape) == 2
    keras.utils.set_random_seed(config.seed)
    if config.expert_kind != "dense" and not sequence:
        raise MMoEExError(
            f"expert_kind {config.expert_kind!r} needs sequence data shaped "
            f"(steps, features); this data set's examples are {tuple(input_shape)}."
        )
    num_experts = {"shared-bottom": 1, "single-task": len(tasks)}.get(
        config.model, config.experts
    )
    experts = _experts(config, num_experts)
    options = {
        "tower_units": config.tower_units,
        "tower_dropout": config.tower_dropout,
        "input_dropout": config.input_dropout,
        "seed": config.seed,
        "optimization": _optimization(config),
        "name": config.model.replace("-", "_"),
    }
    if config.model == "mmoeex":
        model = MMoEExModel(
            tasks,
            experts,
            alpha=config.alpha,
            mode=config.mode,
            gate_units=config.gate_units,
            gate_mask=gate_mask(config, tasks),
            **options,
        )
    elif config.model == "single-task":
        mask = np.eye(len(tasks), dtype=np.int32)
        model = MMoEExModel(tasks, experts, gate_mask=mask, **options)
    elif config.model == "mmoe":
        model = baselines.mmoe(tasks, experts, gate_units=config.gate_units, **options)
    else:
        model = baselines.mmoe(tasks, experts, **options)
    model.build((None, *input_shape))
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate(config, train_rows), weight_decay=config.weight_decay
        ),
        non_finite=config.non_finite,
        steps_per_execution=steps_per_execution(config, train_rows),
        jit_compile=config.jit_compile,
    )
    return model


def gate_mask(config, tasks):
    """The `(tasks, experts)` 0/1 mask of the config's `gate_mask` mapping.

    Args:
        config: A `RunConfig`.
        tasks: The `Task` specs, in the model's order.

    Returns:
        An int32 array, a task not named open to every expert; `None` if the
        mapping is empty (the mask is drawn from `alpha` and `mode`).

    Raises:
        MMoEExError: naming a key of the mapping that is not a task, or
            experts that the mask opens to no task.
    """
    if not config.gate_mask:
        return None
    names = [task.name for task in tasks]
    unknown = sorted(set(config.gate_mask) - set(names))
    if unknown:
        raise MMoEExError(
            f"gate_mask names {unknown}, not tasks of this data set; its tasks "
            f"are {names}."
        )
    mask = np.ones((len(tasks), config.experts), dtype=np.int32)
    for row, name in enumerate(names):
        if name in config.gate_mask:
            mask[row] = 0
            mask[row, config.gate_mask[name]] = 1
    unused = np.flatnonzero(mask.sum(axis=0) == 0)
    if unused.size:
        raise MMoEExError(
            f"gate_mask opens expert(s) {unused.tolist()} of the {config.experts} "
            "to no task: open each to a task, or set fewer experts."
        )
    return mask


def adapt_model(model, config, train_labels, train_inputs=None):
    """Learns the training data's statistics as the config says.

    `MMoEExModel.adapt` with the config's `standardize_targets`,
    `normalize_losses` and `prior_bias`, and the training inputs for the
    experts (the bins of `expert_kind: summary`).

    Args:
        model: An `MMoEExModel`.
        config: A `RunConfig`.
        train_labels: Dict task name -> training labels of the model's tasks.
        train_inputs: The training inputs, or `None` (the experts' statistics
            stay at their defaults).

    Returns:
        The model.
    """
    return model.adapt(
        {task.name: train_labels[task.name] for task in model.tasks},
        standardize_targets=config.standardize_targets,
        normalize_losses=config.normalize_losses,
        prior_bias=config.prior_bias,
        x=train_inputs,
    )


def learning_rate(config, train_rows=None):
    """The config's learning rate: a number, or a Keras schedule.

    `"cosine"`: a linear warm-up from 0 over `warmup_epochs`, then cosine
    decay from `learning_rate` to 0 at the end of the last epoch
    (`keras.optimizers.schedules.CosineDecay` with `warmup_steps`). The
    schedule follows the optimizer's step counter, so a resumed run goes on
    where it stopped.

    Args:
        config: A `RunConfig`.
        train_rows: Number of training examples.

    Raises:
        MMoEExError: for a schedule without `train_rows`.
    """
    if config.lr_schedule == "constant":
        return config.learning_rate
    if train_rows is None:
        raise MMoEExError(
            f"lr_schedule {config.lr_schedule!r} needs the number of training rows."
        )
    steps_per_epoch = math.ceil(train_rows / config.batch_size)
    warmup = min(config.warmup_epochs, config.epochs - 1) * steps_per_epoch
    total = config.epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.learning_rate,
        decay_steps=total - warmup,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def steps_per_execution(config, train_rows=None):
    """The Keras `steps_per_execution` of a config, `"auto"` resolved.

    `"auto"` is the largest divisor of the steps per epoch up to
    `AUTO_STEPS_PER_EXECUTION` (census3, 117 steps of 512 rows: 13). One
    call of the compiled loop then runs that many steps, which saves the
    framework's work between steps (census3 epochs 1.2-1.5x faster than
    with one step per call, `benchmarks/RESULTS.md`). A divisor,
    because Keras runs whole executions: with a value that does not divide
    the steps per epoch an epoch's last execution runs on into the next
    epoch's batches (and the last epoch runs out of data). Batch-level
    callbacks act once per execution: the progress bar moves, and Ctrl-C
    is seen, every that many steps; epoch-level ones (validation, the best
    weights, early stopping, checkpoints) are unaffected.

    MAML-MTL steps gain as much (census3 epochs 1.1-2.3x faster, whole
    12-epoch runs 1.2x, `benchmarks/RESULTS.md`). It is 1 where a step
    must act on its own:

    - `non_finite="stop"`: training stops after the first step with a NaN
      or infinite loss or gradient (`NonFiniteMonitor`, a batch-level
      callback); with more steps per call, the steps after it in the same
      call would still update the weights.
    - several replicas (`strategy="mirrored"` or `"multi-worker"`, or a
      model built in the scope of a strategy with more than one replica):
      Keras' loop over several steps fails on a distributed iterator there
      ("You must feed a value for placeholder tensor", two CPU replicas),
      and more steps per call across workers is not measured.
    - without `train_rows`, since the steps per epoch are then unknown.

    An integer is used as it is; with `train_rows` it must divide the
    steps per epoch.

    Args:
        config: A `RunConfig`.
        train_rows: Number of training examples.

    Returns:
        An integer >= 1.

    Raises:
        MMoEExError: for an integer that does not divide the steps per epoch.
    """
    value = config.steps_per_execution
    steps = None if train_rows is None else math.ceil(train_rows / config.batch_size)
    if value != AUTO:
        if steps is not None and steps % value:
            fits = _largest_divisor(steps, value)
            raise MMoEExError(
                f"steps_per_execution {value} does not divide the {steps} "
                f"training steps per epoch ({train_rows} rows in batches of "
                f"{config.batch_size}): Keras runs whole executions, so each "
                "epoch's last one would take the next epoch's batches. Use a "
                f"divisor of {steps} (e.g. {fits}) or 'auto'."
            )
        return value
    if (
        steps is None
        or config.non_finite == "stop"
        or config.strategy in ("mirrored", "multi-worker")
        or tf.distribute.get_strategy().num_replicas_in_sync > 1
    ):
        return 1
    return _largest_divisor(steps, AUTO_STEPS_PER_EXECUTION)


def _largest_divisor(number, limit):
    """The largest divisor of `number` that is at most `limit`."""
    return max(n for n in range(1, min(number, limit) + 1) if number % n == 0)


def _experts(config, num_experts):
    kind, units = config.expert_kind, config.expert_units
    options = {"dropout": config.expert_dropout, "seed": config.seed}
    if kind == "dense":
        return DenseExperts(num_experts, units, **options)
    if kind == "summary":
        return SummaryExperts(num_experts, units, bins=config.expert_bins, **options)
    if kind == "conv1d":
        return Conv1DExperts(num_experts, units, padding="causal", **options)
    return RecurrentExperts(num_experts, units, cell=kind, **options)


def _optimization(config):
    if config.optimization == "joint":
        return None
    try:
        return MAMLMTL(**config.maml)
    except TypeError as err:
        raise MMoEExError(f"Invalid maml options {config.maml}: {err}") from err
