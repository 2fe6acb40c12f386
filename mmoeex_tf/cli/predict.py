"""`mmoeex predict`: a saved model's predictions of a data set, as a CSV file."""

import os
import pathlib
import uuid

import numpy as np

from mmoeex_tf.choices import ALL_ROWS, SPLITS
from mmoeex_tf.cli.options import (
    add_model_and_data,
    data_options,
    load_model_and_data,
)
from mmoeex_tf.errors import MMoEExError

USAGE = (
    "mmoeex predict MODEL --data NAME [--data-path PATH] --output CSV [--split S]",
)


def add_command(commands):
    """Adds the `predict` parser to the sub-command parsers."""
    parser = commands.add_parser(
        "predict",
        help="write a saved model's predictions of a data set to a CSV file",
        description=(
            "Write one row per input row (in the file's order where the data "
            "set keeps it) with its id (a table's id column, a record id or "
            "the row number) and, per task: binary, the predicted label and "
            "<task>_probability of the positive one; multiclass, the "
            "predicted class and <task>=<class> probabilities; multilabel, "
            "the labels predicted (joined by |) and <task>=<label> "
            "probabilities; regression, the value. A model trained on a table "
            "answers in the targets' labels and reads a new table file with "
            "its own encoder: with --split all (the default) no target "
            "column is needed."
        ),
    )
    add_model_and_data(parser, all_rows=True, default_split=ALL_ROWS)
    parser.add_argument(
        "--output", required=True, metavar="CSV", help="the CSV file to write"
    )
    parser.set_defaults(handler=handle)


def handle(args):
    """Runs `mmoeex predict`; returns the exit code."""
    import pandas as pd

    output = pathlib.Path(args.output)
    if output.is_dir():
        raise MMoEExError(f"--output {str(output)!r} is a folder, not a file.")
    if args.data == "table" and args.split == ALL_ROWS:
        model, x, ids = _table_rows(args)
    else:
        model, data = load_model_and_data(args)
        x, ids = _split_rows(data, args.split)
    outputs = model.predict(x, batch_size=args.batch_size, verbose=0)
    frame = pd.concat([ids, pd.DataFrame(prediction_columns(model, outputs))], axis=1)
    write_csv(frame, output)
    print(f"Wrote {len(frame)} rows of {len(model.tasks)} tasks to {output}")
    return 0


def _table_rows(args):
    """Every row of a table file encoded by the model: `(model, x, ids)`."""
    import pandas as pd

    from mmoeex_tf.datasets.table_files import read_table
    from mmoeex_tf.datasets.tables import encode_rows
    from mmoeex_tf.runs.folders import load_saved_model

    if args.data_path is None:
        raise MMoEExError("--data table needs the table file (--data-path FILE).")
    model = load_saved_model(args.model_file)
    options = data_options(args, model)
    id_column = options.get("id_column", next(iter(model.id_columns), None))
    frame = read_table(args.data_path, options["na_values"])
    x, ids = encode_rows(
        frame,
        model.encoder,
        id_columns=() if id_column is None else (id_column,),
        na_values=options["na_values"],
        name=pathlib.Path(args.data_path).name,
    )
    return model, x, ids if id_column else pd.DataFrame({"row": np.arange(len(x))})


def _split_rows(data, split):
    """The inputs of a split (or all rows) and their ids, in the file's order."""
    import pandas as pd

    splits = SPLITS if split == ALL_ROWS else (split,)
    x = np.concatenate([data.x[s] for s in splits])
    info = data.info
    rows = np.concatenate([info["rows"][s] for s in splits]) if "rows" in info else None
    if "ids" in info and len(info["ids"][splits[0]].columns):  # a table's ids
        ids = pd.concat([info["ids"][s] for s in splits]).reset_index(drop=True)
    elif "record_ids" in info:
        ids = pd.DataFrame(
            {"RecordID": np.concatenate([info["record_ids"][s] for s in splits])}
        )
    else:
        ids = pd.DataFrame({"row": np.arange(len(x)) if rows is None else rows})
    if rows is None:
        return x, ids
    order = np.argsort(rows, kind="stable")
    return x[order], ids.iloc[order].reset_index(drop=True)


def prediction_columns(model, outputs):
    """The columns of `mmoeex predict`, in the targets' units and labels.

    Args:
        model: The `MMoEExModel` (a `TableModel` names its classes and
            binary values in its `targets`; other models use class ids and
            0/1).
        outputs: Its `predict` output, task name -> array.

    Returns:
        Dict column name -> one value per row. A per-step task gets the
        columns of each step, named with `@<step>` (from 1).
    """
    saved = getattr(model, "targets", {})
    columns = {}
    for task in model.tasks:
        values = np.asarray(outputs[task.name])
        labels = saved.get(task.name, {})
        if not task.per_step:
            columns.update(_task_columns(task, values, labels, task.name, ""))
            continue
        for step in range(values.shape[1]):
            columns.update(
                _task_columns(task, values[:, step], labels, task.name, f"@{step + 1}")
            )
    return columns


def _task_columns(task, values, labels, name, suffix):
    if task.kind == "binary":
        positive, negative = labels.get("positive", 1), labels.get("negative", 0)
        return {
            name + suffix: np.where(values >= 0.5, positive, negative),
            f"{name}_probability{suffix}": values,
        }
    if task.kind == "regression":
        if values.ndim == 1:
            return {name + suffix: values}
        return {f"{name}_{i}{suffix}": values[:, i] for i in range(values.shape[1])}
    classes = labels.get("classes", list(range(values.shape[-1])))
    probabilities = {f"{name}={c}{suffix}": values[:, i] for i, c in enumerate(classes)}
    if task.kind == "multiclass":
        predicted = np.asarray(classes, dtype=object)[values.argmax(axis=-1)]
    else:
        predicted = [
            "|".join(str(c) for c, p in zip(classes, row) if p >= 0.5) for row in values
        ]
    return {name + suffix: predicted, **probabilities}


def write_csv(frame, path):
    """Writes a CSV file whole or not at all (a temporary file, then a rename).

    Raises:
        MMoEExError: if the file cannot be written.
    """
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(partial, index=False)
        os.replace(partial, path)
    except OSError as err:
        raise MMoEExError(f"Could not write {str(path)!r}: {err}") from err
    finally:
        partial.unlink(missing_ok=True)
