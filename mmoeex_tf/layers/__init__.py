"""Keras layers of mmoeex_tf."""

from mmoeex_tf.layers.experts import (
    Conv1DExperts,
    DenseExperts,
    ExpertStack,
    LayerExperts,
    RecurrentExperts,
)
from mmoeex_tf.layers.gate import MaskedSoftmaxGate
from mmoeex_tf.layers.mixture import MMoEEx
from mmoeex_tf.layers.summary_experts import SummaryExperts
from mmoeex_tf.layers.towers import TaskHeads, TaskTowers

__all__ = [
    "Conv1DExperts",
    "DenseExperts",
    "ExpertStack",
    "LayerExperts",
    "MMoEEx",
    "MaskedSoftmaxGate",
    "RecurrentExperts",
    "SummaryExperts",
    "TaskHeads",
    "TaskTowers",
]
