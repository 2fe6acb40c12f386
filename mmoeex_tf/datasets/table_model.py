"""`TableModel`: an `MMoEExModel` that carries its table preprocessing.

A model trained on a table (`mmoeex_tf.datasets.from_dataframe`) learns from
the encoded float features; `TableModel.from_model` adds the table's
`TableEncoder` and the targets' labels to it, so that the saved `.keras` file
and the exported SavedModel take raw rows, one named input per column, and
answer in the targets' own units and labels.
"""

import keras
import numpy as np
import tensorflow as tf

from mmoeex_tf.models.conversion import converted
from mmoeex_tf.models.mmoeex_model import MMoEExModel

#: Suffix of a multiclass task's class probabilities in `predict_labels`.
PROBABILITIES = "_probabilities"


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class TableModel(MMoEExModel):
    """An `MMoEExModel` that also takes raw table columns.

    Called with a dict of raw columns it encodes them first with `encoder`;
    called with a float tensor it is the plain `MMoEExModel` (training and
    scoring use the encoded features).

    Args:
        tasks: The `Task` specs.
        encoder: The `TableEncoder` (or its serialized form).
        targets: Task name -> labels: `{"positive": value, "negative":
            value}` for a binary task, `{"classes": [...]}` for multiclass and
            multilabel tasks; with the target's `column` in the table.
        id_columns: The table's columns of row ids (not features), kept
            beside the predictions of new rows.
        **kwargs: `MMoEExModel` arguments.
    """

    def __init__(self, tasks, encoder, targets=None, id_columns=(), **kwargs):
        super().__init__(tasks, **kwargs)
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        self.encoder = encoder
        self.targets = {name: dict(labels) for name, labels in (targets or {}).items()}
        self.id_columns = list(id_columns)

    @classmethod
    def from_model(cls, model, encoder, targets, id_columns=()):
        """A `TableModel` with the architecture, weights and compile config of `model`.

        Args:
            model: A built `MMoEExModel` trained on the encoded features.
            encoder: The `TableEncoder` of those features.
            targets: As for `TableModel`.
            id_columns: As for `TableModel`.

        Returns:
            The `TableModel`.
        """
        # The encoder has no weights: `model`'s weights are all of them.
        return converted(
            model, cls, encoder=encoder, targets=targets, id_columns=id_columns
        )

    def table_options(self):
        """The arguments that read a new table as this model's.

        For `from_dataframe`, `from_file` and `load_table`; the new table's
        own statistics and labels are never used.

        Returns:
            Dict with `targets` (column -> task kind), `target_labels` (the
            saved classes and binary values), `encoder` (the saved
            statistics) and `na_values`.
        """
        return {
            "targets": {
                self.targets.get(task.name, {}).get("column", task.name): task.kind
                for task in self.tasks
            },
            "target_labels": {task.name: {} for task in self.tasks} | self.targets,
            "encoder": self.encoder,
            "na_values": list(self.encoder.na_values),
        }

    def call(self, inputs, training=None, return_logits=False, return_gates=False):
        if isinstance(inputs, dict):
            inputs = self.encoder(inputs)
        return super().call(
            inputs,
            training=training,
            return_logits=return_logits,
            return_gates=return_gates,
        )

    def predict_labels(self, inputs, return_gates=False):
        """Predicts raw rows in the targets' units and labels.

        Args:
            inputs: Dict column name -> `(batch,)` raw values (as for the
                encoder).
            return_gates: Also return the gates.

        Returns:
            Dict task name -> the probability of the positive value (binary),
            the predicted class label (multiclass; its probabilities under
            `<task>_probabilities`), the label probabilities (multilabel) or
            the value (regression); with the gates under `gates` if asked.
        """
        outputs, gates = self(inputs, training=False, return_gates=True)
        labels = {}
        for task in self.tasks:
            values = outputs[task.name]
            if task.kind == "multiclass":
                classes = tf.constant(np.asarray(self.targets[task.name]["classes"]))
                labels[task.name] = tf.gather(classes, tf.argmax(values, axis=-1))
                labels[task.name + PROBABILITIES] = values
            else:
                labels[task.name] = values
        return {**labels, "gates": gates} if return_gates else labels

    def output_names_for_labels(self):
        """The keys of `predict_labels`' answer, gates left out."""
        names = []
        for task in self.tasks:
            names.append(task.name)
            if task.kind == "multiclass":
                names.append(task.name + PROBABILITIES)
        return names

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "targets": self.targets,
            "id_columns": self.id_columns,
        }
