"""Runs: what `mmoeex train` and `mmoeex group` do and write to disk.

A run loads a data set (`load_data`), builds the model its `RunConfig`
describes (`build_model`), trains it keeping the best epoch (`train`), scores
every split with its Keras metrics (`score_split`) and writes its folder
(`run`, `resume`).
"""

from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.data import load_data, load_run_data
from mmoeex_tf.runs.factory import adapt_model, build_model
from mmoeex_tf.runs.folders import load_saved_model, new_output_folder, staged_folder
from mmoeex_tf.runs.loop import BestWeights, TrainResult, train
from mmoeex_tf.runs.report import (
    check_compatible,
    format_scores,
    metrics_table,
    score_split,
)
from mmoeex_tf.runs.run import Run, resume, run

__all__ = [
    "BestWeights",
    "Run",
    "RunConfig",
    "TrainResult",
    "adapt_model",
    "build_model",
    "check_compatible",
    "format_scores",
    "load_data",
    "load_run_data",
    "load_saved_model",
    "metrics_table",
    "new_output_folder",
    "resume",
    "run",
    "score_split",
    "staged_folder",
    "train",
]
