"""`InputStatisticsModel`: an `MMoEExModel` that carries its inputs' statistics.

Some data sets encode their inputs with statistics of the train split:
sequences from `from_long_table` (physio4 among them) are imputed and
standardised with them, molecules' RDKit descriptors clipped and
standardised (`load_moleculenet_csv`). `InputStatisticsModel.from_model`
keeps those statistics in the model's config, so that the saved `.keras`
file brings them along and new data are encoded as the training data were
(`load_physio4(path, statistics=model.statistics)`,
`load_tox21(path, statistics=model.statistics)`), never with their own
statistics.
"""

import keras

from mmoeex_tf.models.conversion import converted
from mmoeex_tf.models.mmoeex_model import MMoEExModel


# Registered under the class's earlier name, `SequenceModel`, so that files
# saved under that name still load.
@keras.saving.register_keras_serializable(package="mmoeex_tf", name="SequenceModel")
class InputStatisticsModel(MMoEExModel):
    """An `MMoEExModel` with the statistics its inputs were encoded with.

    Args:
        tasks: The `Task` specs.
        statistics: The `info["statistics"]` of the training data (as from
            `from_long_table` or `load_moleculenet_csv`).
        **kwargs: `MMoEExModel` arguments.
    """

    def __init__(self, tasks, statistics, **kwargs):
        super().__init__(tasks, **kwargs)
        self.statistics = dict(statistics)

    @classmethod
    def from_model(cls, model, statistics):
        """A copy of `model` (layers, weights, compile config) with `statistics`.

        Args:
            model: A built `MMoEExModel`.
            statistics: As for `InputStatisticsModel`.

        Returns:
            The `InputStatisticsModel`.
        """
        return converted(model, cls, statistics=statistics)

    def get_config(self):
        return {**super().get_config(), "statistics": self.statistics}


#: The earlier name, for code written when only sequences carried statistics.
SequenceModel = InputStatisticsModel
