"""Runs: what `mmoeex train` and `mmoeex group` do and write to disk.

A run loads a data set (`load_data`), builds the model its `RunConfig`
describes (`build_model`), trains it keeping the best epoch (`train`), scores
every split with its Keras metrics (`score_split`) and writes its folder
(`run`, `resume`). The names import their module on first use: `RunConfig`
(the `mmoeex` parser's options) does not import TensorFlow.
"""

from mmoeex_tf._lazy_import import lazy_package

__all__ = lazy_package(
    __name__,
    {
        "mmoeex_tf.runs.config": ("RunConfig",),
        "mmoeex_tf.runs.data": ("load_data", "load_run_data"),
        "mmoeex_tf.runs.factory": ("adapt_model", "build_model"),
        "mmoeex_tf.runs.folders": (
            "load_saved_model",
            "new_output_folder",
            "staged_folder",
        ),
        "mmoeex_tf.runs.loop": ("BestWeights", "TrainResult", "train"),
        "mmoeex_tf.runs.report": (
            "check_compatible",
            "format_scores",
            "metrics_table",
            "score_split",
        ),
        "mmoeex_tf.runs.run": ("Run", "resume", "run"),
    },
)
