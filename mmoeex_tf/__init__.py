"""mmoeex_tf: heterogeneous multi-task learning with mixtures of experts.

Keras 3 / TensorFlow implementation of MMoEEx (Aoki, Tung and Oliveira,
"Heterogeneous Multi-task Learning with Expert Diversity", IEEE/ACM TCBB
2022) and its baselines.

Importing the package imports neither TensorFlow nor Keras: the names below
(`mmoeex_tf.MMoEExModel`, ...) import their modules on first use, and as
soon as Keras is imported, by the package or by you, the modules of the
classes a saved model names are imported too, so `keras.saving.load_model`
finds them. TensorFlow's native start-up lines are silenced
(`mmoeex_tf._lazy_import`).
"""

import os

from mmoeex_tf import _lazy_import

# Keep TensorFlow's C++ start-up chatter (INFO and WARNING lines) off the
# console unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_PUBLIC = {
    "mmoeex_tf.errors": ("MMoEExError",),
    "mmoeex_tf.layers": (
        "Conv1DExperts",
        "DenseExperts",
        "LayerExperts",
        "MaskedSoftmaxGate",
        "MMoEEx",
        "RecurrentExperts",
        "SummaryExperts",
        "TaskHeads",
        "TaskTowers",
    ),
    "mmoeex_tf.layers.assignment": ("expert_assignment",),
    "mmoeex_tf.models.baselines": ("mmoe", "shared_bottom", "single_task_models"),
    "mmoeex_tf.models.mmoeex_model": ("MMoEExModel",),
    "mmoeex_tf.tasks": ("Task",),
    "mmoeex_tf.training.balancers": (
        "DynamicWeightAverage",
        "EqualWeights",
        "LossBalancedTaskWeighting",
        "StaticWeights",
        "UncertaintyWeighting",
    ),
    "mmoeex_tf.training.maml": ("MAMLMTL",),
    "mmoeex_tf.training.metrics": ("CohenKappa",),
    "mmoeex_tf.training.optimization": ("JointTraining",),
}

__all__ = _lazy_import.lazy_package(__name__, _PUBLIC)
_lazy_import.register_with_keras(tuple(_PUBLIC))
