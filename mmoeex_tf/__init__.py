"""mmoeex_tf: heterogeneous multi-task learning with mixtures of experts.

Keras 3 / TensorFlow implementation of MMoEEx (Aoki, Tung and Oliveira,
"Heterogeneous Multi-task Learning with Expert Diversity", IEEE/ACM TCBB
2022) and its baselines.
"""

# ruff: noqa: E402 (TensorFlow's logging is set up before it is imported)

import os
import sys

# Keep TensorFlow's C++ start-up chatter (INFO and WARNING lines) off the
# console unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
    """Imports TensorFlow with its native start-up lines silenced.

    Some of the lines TensorFlow's native libraries write while loading
    (absl's "before absl::InitializeLog()" notice, plugin registration
    errors on GPU builds, oneDNN's notice) ignore `TF_CPP_MIN_LOG_LEVEL`.
    With that level at 2 or more (the default set above) whatever native
    code writes to the standard error while TensorFlow loads is dropped; a
    lower level shows it all. Python errors still reach the console.
    """
    if os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() in ("0", "1"):
        import tensorflow  # noqa: F401

        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()
del _import_tensorflow_quietly

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers import (
    Conv1DExperts,
    DenseExperts,
    LayerExperts,
    MaskedSoftmaxGate,
    MMoEEx,
    RecurrentExperts,
    TaskHeads,
    TaskTowers,
)
from mmoeex_tf.layers.assignment import expert_assignment
from mmoeex_tf.models.baselines import mmoe, shared_bottom, single_task_models
from mmoeex_tf.models.mmoeex_model import MMoEExModel
from mmoeex_tf.tasks import Task
from mmoeex_tf.training.balancers import (
    DynamicWeightAverage,
    EqualWeights,
    LossBalancedTaskWeighting,
    StaticWeights,
    UncertaintyWeighting,
)
from mmoeex_tf.training.maml import MAMLMTL
from mmoeex_tf.training.metrics import CohenKappa
from mmoeex_tf.training.optimization import JointTraining

__version__ = "0.1.0"

__all__ = [
    "CohenKappa",
    "Conv1DExperts",
    "DenseExperts",
    "DynamicWeightAverage",
    "EqualWeights",
    "JointTraining",
    "LayerExperts",
    "LossBalancedTaskWeighting",
    "MAMLMTL",
    "MMoEEx",
    "MMoEExError",
    "MMoEExModel",
    "MaskedSoftmaxGate",
    "RecurrentExperts",
    "StaticWeights",
    "Task",
    "TaskHeads",
    "TaskTowers",
    "UncertaintyWeighting",
    "expert_assignment",
    "mmoe",
    "shared_bottom",
    "single_task_models",
]
