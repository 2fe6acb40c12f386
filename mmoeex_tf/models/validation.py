"""Checks of in-memory features and labels before training or evaluation.

Shapes and task names are also checked when a step is traced (for
`tf.data` inputs); the value checks here (NaN features, labels out of range)
need the data in memory and run once per `fit`/`evaluate` call.
"""

import numpy as np

from mmoeex_tf.errors import MMoEExError


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
    if not isinstance(y, dict):
        raise MMoEExError(
            "Labels must be a dict mapping task name to labels, got "
            f"{type(y).__name__}."
        )
    names = [task.name for task in tasks]
    unknown = sorted(set(y) - set(names))
    if unknown:
        raise MMoEExError(
            f"Labels name unknown task(s) {unknown}; the model's tasks are {names}."
        )
    missing = [name for name in names if name not in y]
    if missing:
        raise MMoEExError(
            f"Labels are missing for task(s) {missing}; pass NaN for labels "
            "that are not known."
        )
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
