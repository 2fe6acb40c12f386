"""Multi-task data sets: census3, physio4, tox21, toxcast and synthetic."""

from mmoeex_tf.datasets.base import MultiTaskData
from mmoeex_tf.datasets.census import load_census3
from mmoeex_tf.datasets.molecules import load_moleculenet_csv, load_tox21, load_toxcast
from mmoeex_tf.datasets.physionet import load_physio4
from mmoeex_tf.datasets.registry import DATASETS, load
from mmoeex_tf.datasets.synthetic import load_synthetic

__all__ = [
    "DATASETS",
    "MultiTaskData",
    "load",
    "load_census3",
    "load_moleculenet_csv",
    "load_physio4",
    "load_synthetic",
    "load_tox21",
    "load_toxcast",
]
