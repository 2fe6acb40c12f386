import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf.integrations.distributed import shard_by_data, tf_config

SCRIPT = Path(__file__).parent / "scripts" / "multi_worker_fit.py"
WORKER_TIMEOUT_S = 180

RNG = np.random.default_rng(3)
X = RNG.normal(size=(128, 6)).astype("float32")
Y = {"flag": (X[:, 0] > 0).astype("float32"), "value": X[:, 1] - X[:, 2]}
TASKS = [mt.Task("flag", "binary"), mt.Task("value", "regression")]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start(output, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    environment.update(CUDA_VISIBLE_DEVICES="", **env)
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(output)],
        cwd=output.parent,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_workers_end_with_the_same_weights_as_one_process(tmp_path):
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    outputs = [tmp_path / "worker0.npz", tmp_path / "worker1.npz", tmp_path / "one.npz"]
    processes = [
        _start(outputs[index], TF_CONFIG=tf_config(workers, index)) for index in (0, 1)
    ]
    processes.append(_start(outputs[2]))
    try:
        for process in processes:
            log, _ = process.communicate(timeout=WORKER_TIMEOUT_S)
            assert process.returncode == 0, log[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    first, second, alone = (np.load(path) for path in outputs)
    assert first.files == alone.files
    assert {"loss", "flag_auc", "value_mae", "val_loss", "val_flag_auc"} <= set(
        alone.files
    )
    for key in alone.files:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
        np.testing.assert_allclose(first[key], alone[key], atol=1e-5, err_msg=key)


def test_shard_by_data_sets_the_data_policy():
    dataset = shard_by_data(tf.data.Dataset.range(4))
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA


class _Crash(Exception):
    pass


class _CrashAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Crash(f"interrupted after epoch {epoch}")


def _model(init_seed):
    keras.utils.set_random_seed(init_seed)
    model = mt.MMoEExModel(TASKS, mt.DenseExperts(4, 8), alpha=0.5, seed=0)
    model.build((None, 6))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _fit(model, callbacks):
    return model.fit(
        X, Y, batch_size=32, epochs=4, shuffle=False, verbose=0, callbacks=callbacks
    )


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    reference = _model(init_seed=7)
    _fit(reference, [])
    backup = tmp_path / "backup"
    with pytest.raises(_Crash):
        _fit(
            _model(init_seed=7),
            [keras.callbacks.BackupAndRestore(backup), _CrashAfterEpoch(1)],
        )
    assert (backup / "training_metadata.json").is_file()
    # A new process would start from fresh weights: restoring must replace them.
    resumed = _model(init_seed=8)
    history = _fit(resumed, [keras.callbacks.BackupAndRestore(backup)])
    assert history.epoch == [2, 3]
    for want, got in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not backup.exists()  # deleted once training completes
