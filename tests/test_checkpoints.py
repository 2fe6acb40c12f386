"""Checkpoints of training runs: resume after SIGKILL, never a half-written one."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

import mmoeex_tf as mt
from mmoeex_tf import runs
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs.checkpoints import Progress, RunCheckpoints
from mmoeex_tf.runs.config import RunConfig

KILLED_RUN = Path(__file__).parent / "scripts" / "killed_run.py"
# Dropout (seed states), MAML-MTL and a DWA balancer (state updated at epoch
# ends): every kind of state a resumed run must get back.
RUN = {
    "data": "census3",
    "limit_rows": 1500,
    "experts": 4,
    "expert_units": [8],
    "expert_dropout": 0.2,
    "tower_dropout": 0.1,
    "optimization": "maml",
    "maml": {"balancer": "dwa", "split_ratio": None},
    "batch_size": 256,
    "epochs": 3,
    "seed": 5,
}
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_DETERMINISTIC_OPS": "1"}


def mmoeex(*args):
    command = [sys.executable, "-m", "mmoeex_tf", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)


def test_a_run_killed_mid_epoch_resumes_to_the_result_of_a_straight_run(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(RUN))
    straight = mmoeex(
        "train", "--config", config, "--output", tmp_path / "straight", "-q"
    )
    assert straight.returncode == 0, straight.stderr[-2000:]

    folder = tmp_path / "killed"
    killed = subprocess.run(
        [sys.executable, KILLED_RUN, config, folder, "1", "2"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (folder / "checkpoint" / "latest").read_text() == "epoch-0001"
    assert not (folder / "model.keras").exists()

    again = mmoeex("train", "--config", config, "--output", folder)
    assert again.returncode == 2 and "--resume" in again.stderr

    resumed = mmoeex("train", "--resume", folder, "-q")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not (folder / "checkpoint").exists()
    want = keras.saving.load_model(tmp_path / "straight" / "model.keras")
    got = keras.saving.load_model(folder / "model.keras")
    for a, b in zip(want.get_weights(), got.get_weights()):
        np.testing.assert_array_equal(a, b)
    for name in ("history.csv", "metrics.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(folder / name), pd.read_csv(tmp_path / "straight" / name)
        )


def small_model():
    keras.utils.set_random_seed(0)
    model = mt.MMoEExModel(
        [mt.Task("flag", "binary")], mt.DenseExperts(2, 4, dropout=0.3), alpha=0.5
    )
    model.compile(optimizer=keras.optimizers.Adam(0.1))
    model.build((None, 3))
    return model


def train_a_step(model):
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    model.fit(x, {"flag": (x[:, 0] > 0).astype("float32")}, epochs=1, verbose=0)


def state(model):
    variables = [*model.variables, *model.optimizer.variables]
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def progress(epochs_done, model):
    history = [{"loss": 1.0 / (epoch + 1)} for epoch in range(epochs_done)]
    return Progress(epochs_done, 1, 0.5, model.get_weights(), history, 2.0)


def test_restore_gives_back_every_variable_and_the_progress(tmp_path):
    model = small_model()
    train_a_step(model)
    saved = state(model)
    checkpoints = RunCheckpoints(tmp_path, RunConfig(epochs=4))
    checkpoints.save(model, progress(1, model))
    train_a_step(model)

    fresh = small_model()
    restored = checkpoints.restore(fresh)
    for want, got in zip(saved, state(fresh)):
        np.testing.assert_array_equal(want, got)
    assert int(fresh.optimizer.iterations) == 1
    assert (restored.epochs_done, restored.best_epoch) == (1, 1)
    assert restored.history == [{"loss": 1.0}]
    assert checkpoints.config() == RunConfig(epochs=4)


def test_a_checkpoint_whose_write_dies_never_replaces_the_last_good_one(
    tmp_path, monkeypatch
):
    model = small_model()
    checkpoints = RunCheckpoints(tmp_path, RunConfig())
    checkpoints.save(model, progress(1, model))
    saved = state(model)
    train_a_step(model)
    real_fsync = os.fsync

    def dies_writing_progress(descriptor):
        # The disk fills up while progress.json is written: half of it lands.
        for path in (tmp_path / "checkpoint").glob(".*.partial/progress.json"):
            if os.path.samestat(os.fstat(descriptor), os.stat(path)):
                os.ftruncate(descriptor, os.fstat(descriptor).st_size // 2)
                raise OSError("No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", dies_writing_progress)
    with pytest.raises(OSError, match="No space"):
        checkpoints.save(model, progress(2, model))
    monkeypatch.undo()

    assert (tmp_path / "checkpoint" / "latest").read_text() == "epoch-0001"
    fresh = small_model()
    assert checkpoints.restore(fresh).epochs_done == 1
    for want, got in zip(saved, state(fresh)):
        np.testing.assert_array_equal(want, got)
    checkpoints.save(model, progress(2, model))  # the next save cleans up
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == [
        "epoch-0002",
        "latest",
    ]


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(MMoEExError, match="no checkpoint to resume from"):
        runs.resume(tmp_path)
    model = small_model()
    checkpoints = RunCheckpoints(tmp_path, RunConfig())
    checkpoints.save(model, progress(1, model))
    other = mt.MMoEExModel([mt.Task("flag", "binary")], mt.DenseExperts(3, 4))
    other.compile(optimizer="adam")
    other.build((None, 3))
    with pytest.raises(MMoEExError, match="does not fit this model"):
        checkpoints.restore(other)
    (tmp_path / "checkpoint" / "epoch-0001" / "variables.npz").write_bytes(b"junk")
    with pytest.raises(MMoEExError, match="cannot be read"):
        checkpoints.restore(small_model())


def test_resume_takes_no_other_run_option(tmp_path):
    result = mmoeex("train", "--resume", tmp_path, "--epochs", "3")
    assert result.returncode == 2
    assert "do not pass --epochs" in result.stderr
