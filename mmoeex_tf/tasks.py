"""Task specifications: what each head of a multi-task model predicts."""

import dataclasses
import re

import numpy as np

from mmoeex_tf._checks import (
    check_choice,
    check_integer,
    check_number,
    check_positive_integer,
)
from mmoeex_tf.errors import MMoEExError

KINDS = ("binary", "multiclass", "multilabel", "regression")
POOLINGS = ("last", "mean", "max", "summary")
#: Losses of a regression task, named as scikit-learn's: the squared error
#: (the prior and the best constant are the mean) or the absolute error (the
#: median; the loss of the MAE that scores regression).
REGRESSION_LOSSES = ("squared_error", "absolute_error")
DEFAULT_METRICS = {
    "binary": ("auc",),
    "multilabel": ("auc",),
    "multiclass": ("kappa", "accuracy"),
    "regression": ("mae", "rmse"),
}
METRICS_BY_KIND = {
    "binary": ("auc", "pr_auc", "accuracy"),
    "multilabel": ("auc", "pr_auc"),
    "multiclass": ("accuracy", "kappa", "quadratic_kappa"),
    "regression": ("mae", "rmse", "mse"),
}
#: Metrics where lower is better (errors and losses); every other is better
#: higher.
LOWER_IS_BETTER = ("mae", "rmse", "mse", "loss")
_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Task:
    """One prediction target of a multi-task model.

    Args:
        name: Identifier of the task; keys the model's outputs, the labels
            passed to `fit` and the logged metrics (`<name>_auc`, ...).
            Letters, digits and underscores, starting with a letter.
        kind: One of `"binary"`, `"multiclass"`, `"multilabel"` or
            `"regression"`.
        output_size: Number of classes (multiclass, required), labels
            (multilabel, required) or regression targets (default 1).
            Binary tasks always have 1.
        per_step: For sequence inputs, predict at every time step (labels
            shaped `(batch, steps, ...)`) instead of once per sequence.
        pooling: For sequence inputs and a sequence-level task, how the task's
            tower output is reduced over time before its output layer:
            `"last"` step, `"mean"`, `"max"`, or `"summary"` (the last step,
            the mean and the max side by side, like the per-stay summaries
            of a tree model; scores that depend on a stay's worst values,
            such as SOFA, need the max).
        pooling_steps: Pool over the first N steps only (for example the
            first 48 hours of a stay); `None` pools over all steps.
        loss_weight: Weight of this task's loss in the joint objective.
        regression_loss: Regression: `"squared_error"` (predicts the
            conditional mean) or `"absolute_error"` (the conditional median,
            which minimises the MAE).
        positive_weight: Binary and multilabel: weight of positive labels in
            the loss (one number, or one per label).
        class_weights: Multiclass: a weight per class in the loss.
        metrics: Metric names logged for the task; defaults by kind: `auc`
            for binary and multilabel, `accuracy` and `kappa` (Cohen's, linear
            weights) for multiclass, `mae` and `rmse` for regression.

    Labels are given per task as arrays; a missing label is `NaN` (or has a
    zero in the task's entry of `sample_weight`) and is left out of the
    task's loss and metrics.
    """

    name: str
    kind: str
    output_size: int | None = None
    per_step: bool = False
    pooling: str = "last"
    pooling_steps: int | None = None
    loss_weight: float = 1.0
    regression_loss: str = "squared_error"
    positive_weight: float | tuple[float, ...] | None = None
    class_weights: tuple[float, ...] | None = None
    metrics: tuple[str, ...] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_PATTERN.match(self.name):
            raise MMoEExError(
                f"Task name {self.name!r} is not valid: use letters, digits "
                "and underscores, starting with a letter."
            )
        check_choice(self.kind, f"Task {self.name!r}: kind", KINDS)
        object.__setattr__(self, "output_size", self._checked_output_size())
        check_choice(self.pooling, f"Task {self.name!r}: pooling", POOLINGS)
        pooling_steps = check_positive_integer(
            self.pooling_steps,
            f"Task {self.name!r}: pooling_steps",
            none_means="all steps",
        )
        object.__setattr__(self, "pooling_steps", pooling_steps)
        object.__setattr__(
            self,
            "loss_weight",
            check_number(self.loss_weight, f"Task {self.name!r}: loss_weight", 0),
        )
        check_choice(
            self.regression_loss,
            f"Task {self.name!r}: regression_loss",
            REGRESSION_LOSSES,
        )
        if self.kind != "regression" and self.regression_loss != "squared_error":
            raise MMoEExError(
                f"Task {self.name!r}: regression_loss applies to regression "
                f"tasks, not {self.kind}."
            )
        self._check_weights()
        object.__setattr__(self, "metrics", self._checked_metrics())

    def _checked_output_size(self):
        size = self.output_size
        if self.kind == "binary":
            if size not in (None, 1):
                raise MMoEExError(
                    f"Task {self.name!r}: a binary task has output_size 1, "
                    f"got {size!r}; use kind='multilabel' for several labels."
                )
            return 1
        if size is None:
            if self.kind == "regression":
                return 1
            raise MMoEExError(
                f"Task {self.name!r}: a {self.kind} task needs output_size "
                "(the number of classes or labels)."
            )
        minimum = 2 if self.kind == "multiclass" else 1
        name = f"Task {self.name!r} ({self.kind}): output_size"
        return check_integer(size, name, minimum=minimum)

    def _check_weights(self):
        if self.positive_weight is not None:
            if self.kind not in ("binary", "multilabel"):
                raise MMoEExError(
                    f"Task {self.name!r}: positive_weight applies to binary "
                    f"and multilabel tasks, not {self.kind}."
                )
            weights = _as_tuple(
                self.positive_weight, f"Task {self.name!r}: positive_weight"
            )
            if len(weights) not in (1, self.output_size) or min(weights) <= 0:
                raise MMoEExError(
                    f"Task {self.name!r}: positive_weight must be one positive "
                    f"number or {self.output_size} of them, got "
                    f"{self.positive_weight!r}."
                )
            object.__setattr__(self, "positive_weight", weights)
        if self.class_weights is not None:
            if self.kind != "multiclass":
                raise MMoEExError(
                    f"Task {self.name!r}: class_weights apply to multiclass "
                    f"tasks, not {self.kind}."
                )
            weights = _as_tuple(
                self.class_weights, f"Task {self.name!r}: class_weights"
            )
            if len(weights) != self.output_size or min(weights) < 0:
                raise MMoEExError(
                    f"Task {self.name!r}: class_weights must be "
                    f"{self.output_size} non-negative numbers, got "
                    f"{self.class_weights!r}."
                )
            object.__setattr__(self, "class_weights", weights)

    def _checked_metrics(self):
        if self.metrics is None:
            return DEFAULT_METRICS[self.kind]
        metrics = (self.metrics,) if isinstance(self.metrics, str) else self.metrics
        allowed = METRICS_BY_KIND[self.kind]
        for metric in metrics:
            if metric not in allowed:
                raise MMoEExError(
                    f"Task {self.name!r}: unknown metric {metric!r} for a "
                    f"{self.kind} task; choose from {allowed}."
                )
        return tuple(metrics)

    @property
    def label_rank(self):
        """Rank of one example's label: 0 for a scalar, 1 for a vector."""
        if self.kind == "multiclass":
            return 0
        return 0 if self.output_size == 1 and self.kind != "multilabel" else 1

    def get_config(self):
        """Returns the task as a JSON-friendly dict."""
        config = dataclasses.asdict(self)
        for key in ("positive_weight", "class_weights", "metrics"):
            if config[key] is not None:
                config[key] = list(config[key])
        return config

    @classmethod
    def from_config(cls, config):
        """Creates a task from the output of `get_config`."""
        return cls(**config)


def higher_is_better(metric):
    """Whether a larger value of a metric is better.

    Args:
        metric: A metric name (`"auc"`, `"roc_auc"`, `"kappa"`, `"mae"`,
            `"loss"`, ...).

    Returns:
        `False` for errors and losses (`LOWER_IS_BETTER`), else `True`.
    """
    return metric not in LOWER_IS_BETTER


def _as_tuple(value, name):
    """One number or a sequence of them as a tuple of floats (`True` is none)."""
    values = value if isinstance(value, (list, tuple, np.ndarray)) else (value,)
    return tuple(check_number(v, name) for v in values)


def check_tasks(tasks):
    """Validates a list of tasks and returns it as a tuple.

    Args:
        tasks: `Task` objects or their config dicts.

    Returns:
        A tuple of `Task`.

    Raises:
        MMoEExError: if the list is empty or two tasks share a name.
    """
    tasks = tuple(t if isinstance(t, Task) else Task.from_config(t) for t in tasks)
    if not tasks:
        raise MMoEExError("At least one task is needed, got none.")
    names = [task.name for task in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MMoEExError(f"Task names must be unique; repeated: {duplicates}.")
    return tasks
