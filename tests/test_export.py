import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError
from mmoeex_tf.cli import export as export_command
from mmoeex_tf.integrations.export import (
    export_saved_model,
    next_version,
    serving_archive,
)

SCRIPT = Path(__file__).parent / "scripts" / "serve_without_package.py"
TASKS = [
    mt.Task("flag", "binary"),
    mt.Task("grade", "multiclass", output_size=3),
    mt.Task("value", "regression"),
]
X = np.random.default_rng(5).normal(size=(7, 6)).astype("float32")


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = mt.MMoEExModel(TASKS, mt.DenseExperts(4, 8), alpha=0.5, seed=seed)
    model.build((None, 6))
    return model


def _outputs(model, x):
    outputs, gates = model(x, return_gates=True)
    return {
        **{k: np.asarray(v) for k, v in outputs.items()},
        "gates": np.asarray(gates),
    }


def _saved_model_cli():
    """The `saved_model_cli` installed with TensorFlow beside this Python."""
    beside = Path(sys.executable).with_name("saved_model_cli")
    return str(beside) if beside.is_file() else shutil.which("saved_model_cli")


def _tool_env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def test_export_writes_versions_in_the_tf_serving_layout(tmp_path):
    model = _model()
    first = export_saved_model(model, "toy", base_dir=tmp_path)
    assert first == tmp_path / "toy" / "1"
    assert (first / "saved_model.pb").is_file()
    assert (first / "variables" / "variables.index").is_file()
    assert export_saved_model(model, "toy", version=7, base_dir=tmp_path).name == "7"
    assert next_version(tmp_path / "toy") == 8
    assert export_saved_model(model, "toy", base_dir=tmp_path).name == "8"
    # Only complete versions are left: no staging folder stays behind.
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["1", "7", "8"]


def test_export_refuses_an_existing_version_unless_overwrite(tmp_path):
    export_saved_model(_model(0), "toy", version=1, base_dir=tmp_path)
    other = _model(1)
    with pytest.raises(MMoEExError, match="already exists"):
        export_saved_model(other, "toy", version=1, base_dir=tmp_path)
    export_saved_model(other, "toy", version=1, base_dir=tmp_path, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["1"]
    serve = tf.saved_model.load(str(tmp_path / "toy" / "1")).signatures
    got = serve["serving_default"](features=tf.constant(X))
    np.testing.assert_allclose(got["value"], _outputs(other, X)["value"], atol=1e-6)


def test_a_failed_export_leaves_the_served_versions_as_they_were(tmp_path, monkeypatch):
    model = _model(0)
    export_saved_model(model, "toy", version=1, base_dir=tmp_path)

    def dies_midway(self, folder, **kwargs):
        (Path(folder) / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    # keras.export.ExportArchive() makes an instance of a backend subclass
    archive_class = type(serving_archive(model))
    monkeypatch.setattr(archive_class, "write_out", dies_midway)
    for version, overwrite in ((1, True), (2, False)):
        with pytest.raises(MMoEExError, match="disk full"):
            export_saved_model(
                _model(1),
                "toy",
                version=version,
                base_dir=tmp_path,
                overwrite=overwrite,
            )
        assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["1"]
    serve = tf.saved_model.load(str(tmp_path / "toy" / "1")).signatures
    got = serve["serving_default"](features=tf.constant(X))
    np.testing.assert_allclose(got["value"], _outputs(model, X)["value"], atol=1e-6)


def test_a_numpy_integer_version_names_its_folder(tmp_path):
    path = export_saved_model(_model(), "toy", version=np.int64(3), base_dir=tmp_path)
    assert path == tmp_path / "toy" / "3"


def test_export_refuses_unbuilt_models_and_bad_names_or_versions(tmp_path):
    with pytest.raises(MMoEExError, match="Build the model"):
        export_saved_model(mt.MMoEExModel(TASKS), "toy", base_dir=tmp_path)
    model = _model()
    for name in ("a/b", "", ".hidden"):
        with pytest.raises(MMoEExError, match="model name"):
            export_saved_model(model, name, base_dir=tmp_path)
    for version in (0, -1, 1.5, 2.0, True, np.float32(2.0), "2"):
        expected = (
            r"SavedModel version must be None \(the next free version\) or a "
            f"positive integer, got {re.escape(repr(version))}\\.$"
        )
        with pytest.raises(MMoEExError, match=expected):
            export_saved_model(model, "toy", version=version, base_dir=tmp_path)
    assert not (tmp_path / "toy").exists()
    clash = mt.MMoEExModel([mt.Task("gates", "binary")], mt.DenseExperts(2, 4))
    clash.build((None, 6))
    with pytest.raises(MMoEExError, match="clash"):
        export_saved_model(clash, "toy", base_dir=tmp_path)


def test_saved_model_answers_rest_requests_without_mmoeex_tf(tmp_path):
    model = _model()
    path = export_saved_model(model, "toy", base_dir=tmp_path / "models")
    expected = _outputs(model, X)
    signatures = ("serving_default", "with_gates")
    arguments = []
    for name in signatures:
        request = tmp_path / f"{name}.request.json"
        # The body of POST /v1/models/toy:predict, in TF Serving's row format.
        body = {"signature_name": name, "instances": X.tolist()}
        request.write_text(json.dumps(body), encoding="utf-8")
        arguments += [str(request), str(tmp_path / f"{name}.response.json")]
    environment = {k: v for k, v in _tool_env().items() if k != "PYTHONPATH"}
    # -I: isolated mode, without the script's folder on sys.path; the script
    # also blocks mmoeex_tf and keras, which the venv could still import.
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), *arguments],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in signatures:
        response = json.loads((tmp_path / f"{name}.response.json").read_text())
        rows = response["predictions"]
        assert len(rows) == len(X)
        outputs = [*model.task_names, *(["gates"] if name == "with_gates" else [])]
        assert sorted(rows[0]) == sorted(outputs)
        for output in outputs:
            got = np.array([row[output] for row in rows], dtype=np.float32)
            np.testing.assert_allclose(got, expected[output], atol=1e-6)


def test_saved_model_cli_shows_and_runs_the_named_signatures(tmp_path):
    model = _model()
    path = export_saved_model(model, "toy", base_dir=tmp_path)
    show = subprocess.run(
        [_saved_model_cli(), "show", "--dir", str(path), "--all"],
        env=_tool_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert show.returncode == 0, show.stderr[-3000:]
    blocks = show.stdout.split("signature_def[")
    default = next(b for b in blocks if b.startswith("'serving_default'"))
    gates = next(b for b in blocks if b.startswith("'with_gates'"))
    for block in (default, gates):
        assert "inputs['features']" in block
        assert "shape: (-1, 6)" in block
        for task in model.task_names:
            assert f"outputs['{task}']" in block
    assert "outputs['gates']" in gates and "outputs['gates']" not in default
    run = subprocess.run(
        [
            _saved_model_cli(),
            "run",
            "--dir",
            str(path),
            "--tag_set",
            "serve",
            "--signature_def",
            "with_gates",
            "--input_exprs",
            f"features={X[:2].tolist()}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        env=_tool_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    expected = _outputs(model, X[:2])
    for output, want in expected.items():
        got = np.load(tmp_path / "out" / f"{output}.npy")
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_wrong_shape_or_dtype_fails_naming_what_is_expected(tmp_path):
    path = export_saved_model(_model(), "toy", base_dir=tmp_path)
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    for shape in [(2, 5), (6,), (2, 3, 6)]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[\?,6\]"):
            serve(features=tf.zeros(shape))
    with pytest.raises(tf.errors.InvalidArgumentError, match="float"):
        serve(features=tf.zeros((2, 6), tf.float64))


@pytest.mark.parametrize(
    "experts",
    [
        lambda: mt.RecurrentExperts(3, 4, cell="gru"),
        lambda: mt.SummaryExperts(3, 4, bins=2),
    ],
    ids=["gru", "summary"],
)
def test_sequence_model_exports_steps_and_per_step_outputs(tmp_path, experts):
    tasks = [
        mt.Task("ihm", "binary"),
        mt.Task("decomp", "binary", per_step=True),
        mt.Task("sofa", "regression", pooling="mean"),
    ]
    model = mt.MMoEExModel(tasks, experts(), alpha=0.3)
    model.build((None, 5, 2))
    x = np.random.default_rng(0).normal(size=(4, 5, 2)).astype("float32")
    model.mixture.experts.adapt(x)  # bins placed: the exported edges too
    path = export_saved_model(model, "seq", base_dir=tmp_path)
    serve = tf.saved_model.load(str(path)).signatures["with_gates"]
    assert serve.structured_input_signature[1]["features"].shape.as_list() == [
        None,
        5,
        2,
    ]
    got = serve(features=tf.constant(x))
    assert got["decomp"].shape == (4, 5) and got["gates"].shape == (4, 5, 3, 3)
    for output, want in _outputs(model, x).items():
        np.testing.assert_allclose(got[output], want, atol=1e-6)


def test_export_command_exports_a_keras_file(tmp_path, capsys):
    model = _model()
    model.save(tmp_path / "model.keras")
    parser = argparse.ArgumentParser()
    export_command.add_arguments(parser)
    args = parser.parse_args(
        [str(tmp_path / "model.keras"), "--name", "toy", "--base-dir", str(tmp_path)]
    )
    assert export_command.handle(args) == 0
    assert export_command.handle(args) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "toy" / "2") in printed
    assert "with_gates: features (batch, 6) -> flag, grade, value, gates" in printed
    serve = tf.saved_model.load(str(tmp_path / "toy" / "2")).signatures
    got = serve["serving_default"](features=tf.constant(X))
    np.testing.assert_allclose(got["grade"], _outputs(model, X)["grade"], atol=1e-6)
    args.version, args.overwrite = 1, False
    with pytest.raises(MMoEExError, match="already exists"):
        export_command.handle(args)
