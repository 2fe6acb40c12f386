"""`mmoeex train --strategy multi-worker` with two workers on localhost.

Two workers end with the weights of one process with the same global batch;
a worker killed with SIGKILL mid-epoch is survived (every worker started
again goes on from the chief's last checkpoint, or the chief with
`--resume`); only the chief writes. Bad clusters are named errors within a
bounded wait. Every process is killed at the end of its test.
"""

import json
import socket

import numpy as np
import pytest
import yaml

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs import load_saved_model
from mmoeex_tf.training.strategies import make_strategy, tf_config
from tests.helpers import SCRIPTS, finish, free_ports, mmoeex, start_process

TIMEOUT_S = 240
CONFIG = {
    "data": "synthetic",
    "data_options": {"sizes": [256, 64, 64], "num_features": 8},
    "experts": 4,
    "expert_units": [8],
    "tower_units": [8],
    "epochs": 3,
    "batch_size": 32,
    "strategy": "multi-worker",
}


def _config_file(folder, name="config.yaml", **changes):
    path = folder / name
    path.write_text(yaml.safe_dump({**CONFIG, **changes}), encoding="utf-8")
    return path


def _cluster():
    return [f"localhost:{port}" for port in free_ports(2)]


def _train(folder, workers, index, *arguments, script=None):
    """Starts worker `index` of `workers` in its own folder `folder/w<index>`."""
    cwd = folder / f"w{index}"
    cwd.mkdir(exist_ok=True)
    command = [script, *arguments] if script else mmoeex("train", *arguments)
    return start_process(command, cwd, TF_CONFIG=tf_config(workers, index))


def _weights(run_folder):
    return load_saved_model(run_folder / "model.keras").get_weights()


def _assert_same_weights(first, second, atol=1e-6):
    assert len(first) == len(second)
    for want, got in zip(first, second):
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """An uninterrupted two-worker run and a one-process run, side by side."""
    folder = tmp_path_factory.mktemp("two_workers")
    config = _config_file(folder)
    alone = _config_file(folder, "alone.yaml", strategy="auto")
    (folder / "alone").mkdir()
    workers = _cluster()
    output = folder / "run"
    processes = [
        _train(folder, workers, i, "--config", config, "--output", output, "-q")
        for i in (0, 1)
    ]
    processes.append(
        start_process(
            mmoeex("train", "--config", alone, "--output", folder / "one", "-q"),
            folder / "alone",
        )
    )
    for code, log in finish(processes, TIMEOUT_S):
        assert code == 0, log[-3000:]
    return folder


@pytest.mark.cluster
def test_two_workers_end_as_one_process_and_only_the_chief_writes(two_workers):
    _assert_same_weights(_weights(two_workers / "one"), _weights(two_workers / "run"))
    metrics = json.loads((two_workers / "run" / "metrics.json").read_text())
    assert metrics["epochs_run"] == CONFIG["epochs"]
    assert not (two_workers / "run" / "checkpoint").exists()
    assert list((two_workers / "w1").iterdir()) == []  # the worker wrote nothing


@pytest.mark.cluster
@pytest.mark.parametrize("restart", ["same command", "resume"])
def test_a_killed_worker_is_survived(two_workers, tmp_path, restart):
    config, output = _config_file(tmp_path), tmp_path / "run"
    workers = _cluster()
    chief = _train(tmp_path, workers, 0, "--config", config, "--output", output)
    killed = _train(
        tmp_path, workers, 1, config, output, 1, 3, script=SCRIPTS / "killed_run.py"
    )
    (chief_code, chief_log), (killed_code, _) = finish([chief, killed], TIMEOUT_S)
    assert killed_code == -9  # SIGKILL after batch 3 of epoch 1
    assert chief_code == 2 and "A worker of the cluster stopped" in chief_log
    assert (output / "checkpoint" / "latest").read_text() == "epoch-0001"
    assert not (output / "model.keras").exists()

    workers = _cluster()
    chief_arguments = (
        ["--resume", output]
        if restart == "resume"
        else ["--config", config, "--output", output]
    )
    processes = [
        _train(tmp_path, workers, 0, *chief_arguments, "-q"),
        _train(tmp_path, workers, 1, "--config", config, "--output", output, "-q"),
    ]
    for code, log in finish(processes, TIMEOUT_S):
        assert code == 0, log[-3000:]
    history = (output / "history.csv").read_text().splitlines()
    assert len(history) == 1 + CONFIG["epochs"]
    _assert_same_weights(_weights(two_workers / "run"), _weights(output))
    assert list((tmp_path / "w1").iterdir()) == []


@pytest.mark.cluster
def test_workers_with_different_configs_stop_with_a_named_error(tmp_path):
    workers = _cluster()
    processes = [
        _train(
            tmp_path,
            workers,
            i,
            "--config",
            _config_file(tmp_path, f"{i}.yaml", epochs=2 + i),
        )
        for i in (0, 1)
    ]
    for code, log in finish(processes, 120):
        assert code == 2, log[-3000:]
        assert "started with another config than the chief's" in log
    assert not (tmp_path / "w0" / "runs").exists()


def _tf_config(monkeypatch, workers, index):
    monkeypatch.setenv("TF_CONFIG", tf_config(workers, index))


def test_a_task_outside_the_cluster_is_named(monkeypatch):
    _tf_config(monkeypatch, _cluster(), 2)
    with pytest.raises(MMoEExError, match="names task 'worker' 2, which is not in"):
        make_strategy("multi-worker")


def test_an_address_of_another_host_is_named(monkeypatch):
    _tf_config(monkeypatch, ["192.0.2.1:2222", "localhost:2223"], 0)
    with pytest.raises(MMoEExError, match="not an address of this host"):
        make_strategy("multi-worker", timeout=1)


def test_a_port_in_use_is_named(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("localhost", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _tf_config(monkeypatch, [f"localhost:{port}", "localhost:2223"], 0)
        with pytest.raises(MMoEExError, match=f"Port {port} .* is in use"):
            make_strategy("multi-worker", timeout=1)


def test_a_worker_that_never_starts_is_named_after_the_wait(monkeypatch):
    workers = _cluster()
    _tf_config(monkeypatch, workers, 0)
    with pytest.raises(MMoEExError, match=f"{workers[1]} did not start within 2 s"):
        make_strategy("multi-worker", timeout=2)


def test_multi_worker_without_a_cluster_is_named(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(MMoEExError, match="needs TF_CONFIG"):
        make_strategy("multi-worker")
