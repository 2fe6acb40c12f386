"""`SequenceModel`: an `MMoEExModel` that carries its inputs' statistics.

A model trained on sequences from `from_long_table` (physio4 among them)
learns from inputs imputed and standardised with the train split's
statistics. `SequenceModel.from_model` keeps those statistics in the model's
config, so that the saved `.keras` file brings them along and another table
is encoded as the training one was (`load_physio4(path,
statistics=model.statistics)`), never with its own statistics.
"""

import keras

from mmoeex_tf.models.conversion import converted
from mmoeex_tf.models.mmoeex_model import MMoEExModel


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class SequenceModel(MMoEExModel):
    """An `MMoEExModel` with the statistics its inputs were encoded with.

    Args:
        tasks: The `Task` specs.
        statistics: The `info["statistics"]` of the training data (as from
            `from_long_table`).
        **kwargs: `MMoEExModel` arguments.
    """

    def __init__(self, tasks, statistics, **kwargs):
        super().__init__(tasks, **kwargs)
        self.statistics = dict(statistics)

    @classmethod
    def from_model(cls, model, statistics):
        """A `SequenceModel` with the layers, weights and compile config of `model`.

        Args:
            model: A built `MMoEExModel`.
            statistics: As for `SequenceModel`.

        Returns:
            The `SequenceModel`.
        """
        return converted(model, cls, statistics=statistics)

    def get_config(self):
        return {**super().get_config(), "statistics": self.statistics}
