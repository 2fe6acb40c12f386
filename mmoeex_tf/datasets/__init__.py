"""Multi-task data sets: census3, physio4, tox21, toxcast, synthetic, tables, series.

The names import their module on first use: `DATASETS` (the `mmoeex`
parser's choices) does not import TensorFlow.
"""

from mmoeex_tf._lazy_import import lazy_package

__all__ = lazy_package(
    __name__,
    {
        "mmoeex_tf.datasets.base": ("MultiTaskData",),
        "mmoeex_tf.datasets.census": ("load_census3",),
        "mmoeex_tf.datasets.long_tables": ("from_long_table",),
        "mmoeex_tf.datasets.molecule_features": ("molecule_inputs",),
        "mmoeex_tf.datasets.molecules": (
            "load_moleculenet_csv",
            "load_tox21",
            "load_toxcast",
        ),
        "mmoeex_tf.datasets.physionet": ("load_physio4",),
        "mmoeex_tf.datasets.registry": ("DATASETS", "load"),
        "mmoeex_tf.datasets.input_statistics_model": (
            "InputStatisticsModel",
            "SequenceModel",
        ),
        "mmoeex_tf.datasets.synthetic": ("load_synthetic",),
        "mmoeex_tf.datasets.table_encoder": ("TableEncoder",),
        "mmoeex_tf.datasets.table_files": ("from_file", "load_table", "read_table"),
        "mmoeex_tf.datasets.table_model": ("TableModel",),
        "mmoeex_tf.datasets.tables": ("TableData", "from_dataframe"),
    },
)
