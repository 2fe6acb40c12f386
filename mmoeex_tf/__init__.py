"""mmoeex_tf: heterogeneous multi-task learning with mixtures of experts.

Keras 3 / TensorFlow implementation of MMoEEx (Aoki, Tung and Oliveira,
"Heterogeneous Multi-task Learning with Expert Diversity", IEEE/ACM TCBB
2022) and its baselines.

Importing the package does not import TensorFlow: the model classes below
(`mt.MMoEExModel`, `mt.DenseExperts`, ...) are loaded on first use (PEP 562),
so that `mmoeex --help` answers at once. Whenever TensorFlow is imported
after this package, by it or by the user, its native start-up lines are
silenced (see `_QuietTensorFlow`).
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.tasks import Task

# Keep TensorFlow's C++ start-up chatter (INFO and WARNING lines) off the
# console unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _QuietTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Loads TensorFlow, on its first import, with its native lines silenced.

    Some of the lines TensorFlow's native libraries write while loading
    (absl's "before absl::InitializeLog()" notice, plugin registration
    errors on GPU builds, oneDNN's notice) ignore `TF_CPP_MIN_LOG_LEVEL`.
    With that level at 2 or more (the default set above), whatever native
    code writes to the standard error while TensorFlow's module runs is
    dropped; a lower level shows it all. Python errors still reach the
    console. The finder steps aside after that one import.
    """

    def __init__(self):
        self.loader = None

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            self.loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            self.loader.exec_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


if "tensorflow" not in sys.modules and os.environ[
    "TF_CPP_MIN_LOG_LEVEL"
].strip() not in ("0", "1"):
    sys.meta_path.insert(0, _QuietTensorFlow())

# Public name -> the module defining it, imported on first use.
_LAZY = {
    "Conv1DExperts": "mmoeex_tf.layers",
    "DenseExperts": "mmoeex_tf.layers",
    "LayerExperts": "mmoeex_tf.layers",
    "MaskedSoftmaxGate": "mmoeex_tf.layers",
    "MMoEEx": "mmoeex_tf.layers",
    "RecurrentExperts": "mmoeex_tf.layers",
    "TaskHeads": "mmoeex_tf.layers",
    "TaskTowers": "mmoeex_tf.layers",
    "expert_assignment": "mmoeex_tf.layers.assignment",
    "mmoe": "mmoeex_tf.models.baselines",
    "shared_bottom": "mmoeex_tf.models.baselines",
    "single_task_models": "mmoeex_tf.models.baselines",
    "MMoEExModel": "mmoeex_tf.models.mmoeex_model",
    "DynamicWeightAverage": "mmoeex_tf.training.balancers",
    "EqualWeights": "mmoeex_tf.training.balancers",
    "LossBalancedTaskWeighting": "mmoeex_tf.training.balancers",
    "StaticWeights": "mmoeex_tf.training.balancers",
    "UncertaintyWeighting": "mmoeex_tf.training.balancers",
    "MAMLMTL": "mmoeex_tf.training.maml",
    "CohenKappa": "mmoeex_tf.training.metrics",
    "JointTraining": "mmoeex_tf.training.optimization",
}
# Sub-packages reachable as attributes (`mmoeex_tf.layers`) without an import.
_SUBPACKAGES = (
    "analysis",
    "cli",
    "datasets",
    "integrations",
    "layers",
    "models",
    "runs",
    "training",
)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})


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
