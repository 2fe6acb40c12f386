"""Multi-task data sets: census3, physio4, tox21, toxcast, synthetic, tables, series."""

from mmoeex_tf.datasets.base import MultiTaskData
from mmoeex_tf.datasets.census import load_census3
from mmoeex_tf.datasets.long_tables import from_long_table
from mmoeex_tf.datasets.molecules import load_moleculenet_csv, load_tox21, load_toxcast
from mmoeex_tf.datasets.physionet import load_physio4
from mmoeex_tf.datasets.registry import DATASETS, load
from mmoeex_tf.datasets.sequence_model import SequenceModel
from mmoeex_tf.datasets.synthetic import load_synthetic
from mmoeex_tf.datasets.table_encoder import TableEncoder
from mmoeex_tf.datasets.table_files import from_file, load_table, read_table
from mmoeex_tf.datasets.table_model import TableModel
from mmoeex_tf.datasets.tables import TableData, from_dataframe

__all__ = [
    "DATASETS",
    "MultiTaskData",
    "SequenceModel",
    "TableData",
    "TableEncoder",
    "TableModel",
    "from_dataframe",
    "from_file",
    "from_long_table",
    "load",
    "load_census3",
    "load_moleculenet_csv",
    "load_physio4",
    "load_synthetic",
    "load_table",
    "load_tox21",
    "load_toxcast",
    "read_table",
]
