"""Checks of features, labels and arguments before training or evaluation.

Shapes and task names are also checked when a step is traced (for
`tf.data` inputs, `check_label_keys`); the value checks here (NaN features,
labels out of range) need the data in memory and run once per
`fit`/`evaluate` call (`check_in_memory`).
"""

import numpy as np

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.training.losses import describe_shape


def check_in_memory(model, x, y):
    """Checks in-memory features (and labels) against a model, once per call.

    Data that is not a NumPy array, a list or a DataFrame (a `tf.data`
    pipeline, a generator) is left to the checks of the traced step.

    Args:
        model: The `MMoEExModel`.
        x: The features.
        y: The labels, or `None`.

    Raises:
        MMoEExError: naming the problem.
    """
    if not isinstance(x, (np.ndarray, list)) and not hasattr(x, "to_numpy"):
        return
    sequence = model.mixture.experts.requires_sequence or any(
        task.per_step for task in model.tasks
    )
    check_features(x, sequence_input=True if sequence else None)
    if model.built:
        check_built_shape(np.shape(x)[1:], model.get_build_config())
    if y is not None:
        check_labels(model.tasks, y, len(x))


def check_built_shape(example_shape, build_config):
    """Fails, naming both shapes, if examples do not fit the built model.

    Args:
        example_shape: The shape of one example (without the batch axis).
        build_config: The model's `get_build_config()`.

    Raises:
        MMoEExError: if the shapes differ.
    """
    built = tuple((build_config or {}).get("input_shape") or ())[1:]
    if not built:
        return
    fits = len(example_shape) == len(built) and all(
        b is None or b == s for b, s in zip(built, example_shape)
    )
    if not fits:
        raise MMoEExError(
            f"Features have shape {describe_shape((None, *example_shape))}; "
            f"the model was built for {describe_shape((None, *built))}."
        )


def check_label_keys(task_names, y):
    """Checks that labels are a dict keyed by exactly the model's tasks.

    Args:
        task_names: The model's task names.
        y: The labels.

    Raises:
        MMoEExError: if `y` is not a dict, or names an unknown task, or has
            no labels for a task.
    """
    if not isinstance(y, dict):
        raise MMoEExError(
            "Labels must be a dict mapping task name to labels, got "
            f"{type(y).__name__}."
        )
    unknown = sorted(set(y) - set(task_names))
    missing = [name for name in task_names if name not in y]
    if unknown or missing:
        raise MMoEExError(
            f"Label keys must be the model's tasks {list(task_names)}; unknown "
            f"task(s) {unknown}, labels missing for task(s) {missing} (pass NaN "
            "for labels that are not known)."
        )


def check_features(x, sequence_input=None):
    """Checks a feature array: numeric, non-empty, finite, right rank.

    Args:
        x: Array-like features.
        sequence_input: `True` if `(batch, steps, features)` is required,
            `False` if `(batch, features)` is, `None` if either will do.

    Raises:
        MMoEExError: naming the problem.
    """
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as error:
        raise MMoEExError(f"Features could not be read as an array: {error}") from error
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise MMoEExError(
            f"Features must be numeric, got dtype {array.dtype}; encode "
            "categorical columns first."
        )
    if array.ndim == 0 or array.shape[0] == 0:
        raise MMoEExError("Features are empty: there are no rows to use.")
    expected_rank = {True: (3,), False: (2,), None: (2, 3)}[sequence_input]
    if array.ndim not in expected_rank:
        wanted = " or ".join(
            {2: "(batch, features)", 3: "(batch, steps, features)"}[r]
            for r in expected_rank
        )
        raise MMoEExError(f"Features must have shape {wanted}, got {array.shape}.")
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise MMoEExError(
                f"Features contain NaN or inf in {rows.size} row(s), first "
                f"rows {rows[:5].tolist()}; impute or drop them (missing "
                "features are not masked, only missing labels are)."
            )


def check_labels(tasks, y, num_rows):
    """Checks a dict of labels against the tasks.

    Args:
        tasks: The model's `Task` specs.
        y: A dict mapping task name to label array (`NaN` = missing).
        num_rows: Number of feature rows.

    Raises:
        MMoEExError: for unknown or missing task names, wrong row counts,
            non-numeric labels, or label values that do not fit the task.
    """
    check_label_keys([task.name for task in tasks], y)
    for task in tasks:
        labels = np.asarray(y[task.name])
        if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
            raise MMoEExError(
                f"Task {task.name!r}: labels must be numeric, got dtype {labels.dtype}."
            )
        if labels.ndim == 0 or labels.shape[0] != num_rows:
            raise MMoEExError(
                f"Task {task.name!r}: {labels.shape[0] if labels.ndim else 0} "
                f"label rows for {num_rows} feature rows."
            )
        _check_label_values(task, labels.astype(np.float64))


def _check_label_values(task, labels):
    present = labels[~np.isnan(labels)]
    if np.isinf(present).any():
        raise MMoEExError(f"Task {task.name!r}: labels contain inf.")
    if task.kind == "multiclass":
        bad = present[
            (present < 0) | (present >= task.output_size) | (present % 1 != 0)
        ]
        if bad.size:
            raise MMoEExError(
                f"Task {task.name!r}: multiclass labels must be integers in "
                f"[0, {task.output_size}), got {bad[:5].tolist()}."
            )
    elif task.kind in ("binary", "multilabel"):
        bad = present[(present != 0) & (present != 1)]
        if bad.size:
            raise MMoEExError(
                f"Task {task.name!r}: {task.kind} labels must be 0 or 1 (NaN "
                f"if missing), got {bad[:5].tolist()}."
            )


def check_compile_arguments(loss=None, metrics=None, **kwargs):
    """Refuses the `compile` arguments that the tasks' specs replace.

    Args:
        loss: Must be `None`.
        metrics: Must be `None`.
        **kwargs: Further `compile` arguments; `loss_weights` and
            `weighted_metrics` must be `None` or absent.

    Raises:
        MMoEExError: naming the argument and what to use instead.
    """
    for name, value in (("loss", loss), ("metrics", metrics)):
        if value is not None:
            raise MMoEExError(
                f"compile(): {name} comes from the tasks' specs (Task.kind, "
                f"Task.metrics); do not pass {name}=."
            )
    for name in ("loss_weights", "weighted_metrics"):
        if kwargs.get(name) is not None:
            raise MMoEExError(
                f"compile(): {name} is not used; set Task.loss_weight or "
                "Task.metrics instead."
            )
