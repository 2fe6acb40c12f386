"""`GroupedModel`: several group models behind one multi-task predictor."""

import keras

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.models.mmoeex_model import MMoEExModel


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class GroupedModel(keras.Model):
    """Several group models behind one predictor with the original tasks.

    `call` runs every group model on the same features and returns one dict
    with all tasks in the original order, so it predicts, saves, loads and
    exports like a single `MMoEExModel`. Train the group models first (each
    with its own `fit`), then combine them here.

    Args:
        members: The group models (`MMoEExModel`, or their serialized
            configs), whose tasks together are `task_names`.
        task_names: The tasks in output order; each must belong to exactly
            one member.
        **kwargs: `keras.Model` keyword arguments.
    """

    def __init__(self, members, task_names, **kwargs):
        super().__init__(**kwargs)
        self.members = [
            keras.saving.deserialize_keras_object(m) if isinstance(m, dict) else m
            for m in members
        ]
        self.task_names = list(task_names)
        owners = [name for m in self.members for name in m.task_names]
        if sorted(owners) != sorted(self.task_names):
            raise MMoEExError(
                "GroupedModel: every task must belong to exactly one member; the "
                f"members cover {sorted(owners)}, expected {sorted(self.task_names)}."
            )
        position = {name: i for i, name in enumerate(self.task_names)}
        self.tasks = sorted(
            (task for m in self.members for task in m.tasks),
            key=lambda task: position[task.name],
        )

    def build(self, input_shape):
        for member in self.members:
            if not member.built:
                member.build(input_shape)

    def call(self, inputs, training=None):
        """Returns a dict task name -> outputs, in the original task order."""
        merged = {}
        for member in self.members:
            merged.update(member(inputs, training=training))
        return {name: merged[name] for name in self.task_names}

    def get_config(self):
        config = {
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
            "task_names": self.task_names,
        }
        return {**super().get_config(), **config}


def fit_grouped(grouping, tasks, build_model, x, y, **fit_kwargs):
    """Trains one model per group and combines them into a `GroupedModel`.

    Args:
        grouping: A `TaskGrouping`.
        tasks: The `Task` specs of all tasks.
        build_model: Function `(tasks) -> compiled MMoEExModel` building a
            model for a list of `Task` (any architecture).
        x: Training features.
        y: Dict of labels for all tasks.
        **fit_kwargs: Passed to every group model's `fit`; a
            `validation_data=(x_val, y_val)` pair is restricted to the group's
            tasks.

    Returns:
        `(grouped_model, histories)`: the combined model and each group's
        `History`.
    """
    by_name = {task.name: task for task in tasks}
    validation = fit_kwargs.pop("validation_data", None)
    members, histories = [], []
    for group in grouping.groups:
        member = build_model([by_name[name] for name in group])
        if not isinstance(member, MMoEExModel):
            raise MMoEExError("build_model must return an MMoEExModel.")
        options = dict(fit_kwargs)
        if validation is not None:
            x_val, y_val = validation
            options["validation_data"] = (x_val, {n: y_val[n] for n in group})
        histories.append(member.fit(x, {n: y[n] for n in group}, **options))
        members.append(member)
    return GroupedModel(members, grouping.task_names), histories
