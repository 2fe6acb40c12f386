"""The paper's baselines, built from the same model class.

Every baseline is an `MMoEExModel`, so training, metrics, saving and export
are identical to MMoEEx and only the architecture differs.
"""

from mmoeex_tf.layers.experts import DenseExperts
from mmoeex_tf.models.mmoeex_model import MMoEExModel
from mmoeex_tf.tasks import check_tasks


def mmoe(tasks, experts, **kwargs):
    """MMoE (Ma et al., 2018): every expert open to every gate (`alpha=0`).

    Args:
        tasks: The `Task` specs.
        experts: An `ExpertStack`.
        **kwargs: Other `MMoEExModel` arguments (towers, seed, ...).
    """
    return MMoEExModel(tasks, experts, alpha=0.0, **kwargs)


def shared_bottom(tasks, units, activation="relu", dropout=0.0, seed=0, **kwargs):
    """Shared-bottom model: one network shared by all tasks, then towers.

    Built as a mixture of a single dense expert, whose softmax gate is
    constant 1, so it is exactly `towers(bottom(x))`.

    Args:
        tasks: The `Task` specs.
        units: Widths of the shared network's layers.
        activation: Activation of the shared layers.
        dropout: Dropout of the shared layers.
        seed: Seed of the dropout.
        **kwargs: Other `MMoEExModel` arguments (towers, ...).
    """
    bottom = DenseExperts(1, units, activation=activation, dropout=dropout, seed=seed)
    return MMoEExModel(tasks, bottom, alpha=0.0, seed=seed, **kwargs)


def single_task_models(tasks, units, activation="relu", dropout=0.0, seed=0, **kwargs):
    """One independent model per task (the single-task baseline).

    Args:
        tasks: The `Task` specs.
        units: Widths of each model's hidden layers.
        activation: Activation of the hidden layers.
        dropout: Dropout of the hidden layers.
        seed: Seed of the dropout.
        **kwargs: Other `MMoEExModel` arguments (towers, ...).

    Returns:
        A dict mapping task name to a one-task `MMoEExModel`.
    """
    return {
        task.name: shared_bottom(
            [task],
            units,
            activation=activation,
            dropout=dropout,
            seed=seed,
            name=f"single_{task.name}",
            **kwargs,
        )
        for task in check_tasks(tasks)
    }
