"""What the `mmoeex` command prints: -q, TensorFlow's start-up lines."""

import os
import subprocess
import sys

import yaml

from mmoeex_tf.cli import main

TINY = {
    "data": "synthetic",
    "data_options": {"sizes": [300, 60, 60], "num_features": 6},
    "experts": 2,
    "expert_units": [4],
    "tower_units": [],
    "epochs": 1,
}


def test_quiet_train_prints_the_run_folder_only(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY))
    folder = tmp_path / "run"
    assert main(["train", "--config", str(config), "--output", str(folder), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"Run folder: {folder}\n"
    assert captured.err == ""


def test_import_prints_nothing_at_the_default_log_level():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import mmoeex_tf, tensorflow as tf; tf.constant(1.0) + 1.0"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
