"""SavedModel export in the layout TF Serving watches.

`export_saved_model` writes `<base_dir>/<name>/<version>/`, a SavedModel with
two signatures:

- `serving_default`: input `features` (float32, `(batch, features)` or
  `(batch, steps, features)`), one output per task named after the task:
  probabilities for classification tasks, values for regression tasks.
- `with_gates`: the same, plus `gates`, the gate weights
  `(batch, tasks, experts)` (`(batch, steps, tasks, experts)` for sequences).

The SavedModel holds the traced TensorFlow graph only, so it loads with
`tf.saved_model.load`, `saved_model_cli` or TF Serving without this package.
Features are float32. A request with another number of features, steps or
axes fails naming the expected shape (`Shape of tensor features [2,5] is not
compatible with expected shape [?,6]`); a tensor of another dtype is refused
before the graph runs (`... expected to be a float tensor but is a double
tensor`). TF Serving's REST API converts the JSON numbers to float32 itself.

A REST request to TF Serving for this model looks like

    POST /v1/models/<name>:predict
    {"signature_name": "serving_default", "instances": [[0.1, 0.2, ...], ...]}

each instance being one example's features.

A model trained on a table (`mmoeex_tf.datasets.TableModel`) carries its
preprocessing: its signatures take one input per raw column, named after the
column (float32 for numbers and booleans as 0/1, `NaN` = missing; strings
otherwise, `""` = missing), and answer per task the probability of the
positive value (binary), the class label and `<task>_probabilities`
(multiclass), the label probabilities (multilabel) or the value in the
target's units (regression):

    {"instances": [{"age": 39, "job": "clerk", "union": 1.0}, ...]}
"""

import pathlib
import shutil
import tempfile

import keras
import tensorflow as tf

from mmoeex_tf._checks import check_positive_integer
from mmoeex_tf.datasets.table_model import TableModel
from mmoeex_tf.errors import MMoEExError

INPUT_NAME = "features"
GATES_NAME = "gates"
DEFAULT_SIGNATURE = "serving_default"
GATES_SIGNATURE = "with_gates"


def export_saved_model(
    model, name, version=None, base_dir="saved_models", overwrite=False
):
    """Exports a model as a versioned SavedModel for TF Serving.

    The SavedModel is written to a hidden temporary folder next to the
    version folders and renamed into place only once complete, so a server
    watching `<base_dir>/<name>` never sees a partial version.

    Args:
        model: A built `MMoEExModel`.
        name: The model name (the folder TF Serving serves as `<name>`).
        version: A positive integer; `None` takes the next one after the
            largest version already there (1 for the first).
        base_dir: The folder holding the served models.
        overwrite: Replace an existing version instead of refusing.

    Returns:
        The `Path` of the version folder.

    Raises:
        MMoEExError: if the model is not built, a task is named `gates`, the
            name or version is invalid, or the version exists and
            `overwrite` is not set.
    """
    model_dir = pathlib.Path(base_dir) / _checked_name(name)
    version = check_positive_integer(
        version, "SavedModel version", none_means="the next free version"
    )
    if version is None:
        version = next_version(model_dir)
    target = model_dir / str(version)
    if target.exists() and not overwrite:
        raise MMoEExError(
            f"Version {version} of {name!r} already exists at {str(target)!r}; "
            "pass another version or overwrite=True."
        )
    archive = serving_archive(model)
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{version}-", dir=model_dir))
    try:
        archive.write_out(str(staging), verbose=False)
        if target.exists():
            replaced = staging.with_name(staging.name + ".old")
            target.rename(replaced)
            try:
                staging.rename(target)
            except OSError:
                replaced.rename(target)  # keep the old version
                raise
            shutil.rmtree(replaced)
        else:
            staging.rename(target)
    except OSError as err:
        raise MMoEExError(f"Could not write {str(target)!r}: {err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def serving_archive(model):
    """The `keras.export.ExportArchive` of a model's two signatures.

    Args:
        model: A built `MMoEExModel`.

    Returns:
        The archive, ready for `write_out`.

    Raises:
        MMoEExError: if the model is not built or a task is named `gates`.
    """
    if not model.built:
        raise MMoEExError(
            "Build the model (call it, fit it or model.build(input_shape)) "
            "before exporting it."
        )
    if GATES_NAME in model.task_names:
        raise MMoEExError(
            f"A task named {GATES_NAME!r} would clash with the gate output of "
            f"the {GATES_SIGNATURE!r} signature; rename the task."
        )
    archive = keras.export.ExportArchive()
    archive.track(model)
    if isinstance(model, TableModel):
        _add_raw_row_endpoints(archive, model)
        return archive
    example_shape = _example_shape(model)
    spec = tf.TensorSpec((None, *example_shape), tf.float32, name=INPUT_NAME)

    def predict(features):
        return model(_checked_features(features, example_shape), training=False)

    def predict_with_gates(features):
        features = _checked_features(features, example_shape)
        outputs, gates = model(features, training=False, return_gates=True)
        return {**outputs, GATES_NAME: gates}

    archive.add_endpoint(DEFAULT_SIGNATURE, predict, input_signature=[spec])
    archive.add_endpoint(GATES_SIGNATURE, predict_with_gates, input_signature=[spec])
    return archive


def _add_raw_row_endpoints(archive, model):
    """The two signatures of a `TableModel`: one input per raw column."""
    specs = model.encoder.input_specs()

    def predict(columns):
        return model.predict_labels(columns)

    def predict_with_gates(columns):
        return model.predict_labels(columns, return_gates=True)

    archive.add_endpoint(DEFAULT_SIGNATURE, predict, input_signature=[specs])
    archive.add_endpoint(GATES_SIGNATURE, predict_with_gates, input_signature=[specs])


def _example_shape(model):
    """The shape of one example the built model takes."""
    return tuple(model.get_build_config()["input_shape"][1:])


def _checked_features(features, example_shape):
    """Fails at run time, naming the expected shape, if the shape is wrong.

    The signature's static shape does not stop a wrong shape from reaching
    the graph (TF Serving and loaded signatures feed it directly); this run
    time check does.
    """
    return tf.ensure_shape(features, (None, *example_shape), name=INPUT_NAME)


def next_version(model_dir):
    """The next free version number of a model folder.

    Args:
        model_dir: `<base_dir>/<name>`; it need not exist.

    Returns:
        1 plus the largest integer-named subfolder, or 1 if there is none.
    """
    model_dir = pathlib.Path(model_dir)
    versions = [
        int(item.name)
        for item in (model_dir.iterdir() if model_dir.is_dir() else ())
        if item.is_dir() and item.name.isdigit()
    ]
    return max(versions, default=0) + 1


def _checked_name(name):
    if not isinstance(name, str) or not name or pathlib.Path(name).name != name:
        raise MMoEExError(
            f"A model name must be one folder name (no '/'), got {name!r}."
        )
    if name.startswith("."):
        raise MMoEExError(f"A model name must not start with '.', got {name!r}.")
    return name


def describe_signatures(model):
    """One line per signature of the export of `model`: inputs -> outputs.

    Args:
        model: A built `MMoEExModel`.

    Returns:
        The text, two indented lines such as `serving_default: features
        (batch, 6) -> income, marital`.
    """
    if isinstance(model, TableModel):
        inputs = f"{len(model.encoder.input_names)} raw columns (batch,)"
        outputs = ", ".join(model.output_names_for_labels())
    else:
        example_shape = ", ".join(map(str, _example_shape(model)))
        inputs = f"{INPUT_NAME} (batch, {example_shape})"
        outputs = ", ".join(model.task_names)
    return (
        f"  {DEFAULT_SIGNATURE}: {inputs} -> {outputs}\n"
        f"  {GATES_SIGNATURE}: {inputs} -> {outputs}, {GATES_NAME}"
    )
