"""A parallel Keras Tuner search on localhost: one chief, two workers.

Every trial runs once, on one of the workers, and the chief exports the best
model. A chief without workers, a worker without a chief, a worker with
another config and a port in use are named errors within a bounded wait.
Every process is killed at the end of its test.
"""

import json
import os
import socket

import pytest
import yaml

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.integrations.parallel_tuning import SearchRole
from tests.helpers import SCRIPTS, finish, free_ports, start_process

TIMEOUT_S = 240
MAX_TRIALS = 3
CONFIG = {
    "data": "synthetic",
    "data_options": {"sizes": [256, 64, 64], "num_features": 8},
    "epochs": 1,
    "batch_size": 64,
}


def _config_file(folder, name="config.yaml", **changes):
    path = folder / name
    path.write_text(yaml.safe_dump({**CONFIG, **changes}), encoding="utf-8")
    return path


def _tuner(folder, config, port, tuner_id, **env):
    arguments = [SCRIPTS / "tuner_process.py", config, "search", MAX_TRIALS, "saved"]
    return start_process(
        arguments,
        folder,
        KERASTUNER_TUNER_ID=tuner_id,
        KERASTUNER_ORACLE_IP="localhost",
        KERASTUNER_ORACLE_PORT=str(port),
        **env,
    )


def _summary(log):
    return json.loads(log.strip().splitlines()[-1])


@pytest.mark.cluster
def test_a_chief_and_two_workers_run_every_trial_once(tmp_path):
    config = _config_file(tmp_path)
    (port,) = free_ports(1)
    processes = [
        _tuner(tmp_path, config, port, tuner_id)
        for tuner_id in ("chief", "worker0", "worker1")
    ]
    results = finish(processes, TIMEOUT_S)
    for code, log in results:
        assert code == 0, log[-3000:]
    chief, *workers = (_summary(log) for _, log in results)
    assert chief["ran"] == []  # the chief serves the oracle only
    assert chief["trials"] == {str(i): "COMPLETED" for i in range(MAX_TRIALS)}
    ran = sorted(trial for worker in workers for trial in worker["ran"])
    assert ran == sorted(chief["trials"])  # each trial once, none repeated
    export = tmp_path / chief["export"]
    assert (export / "saved_model.pb").is_file()
    assert (tmp_path / "search" / "synthetic" / "best_model.keras").is_file()


@pytest.mark.cluster
def test_a_worker_with_another_config_and_a_chief_without_workers_stop(tmp_path):
    (port,) = free_ports(1)
    wait = {"MMOEEX_JOIN_TIMEOUT": "10"}
    chief = _tuner(tmp_path, _config_file(tmp_path), port, "chief", **wait)
    other = _config_file(tmp_path, "other.yaml", batch_size=32)
    worker = _tuner(tmp_path, other, port, "worker0", **wait)
    (chief_code, chief_log), (worker_code, worker_log) = finish([chief, worker], 120)
    assert worker_code != 0
    assert "started with another config than the chief's" in worker_log
    assert chief_code != 0
    assert "No tuner worker joined at localhost" in chief_log
    assert not (tmp_path / "saved").exists()


TUNER_VARIABLES = (
    "KERASTUNER_TUNER_ID",
    "KERASTUNER_ORACLE_IP",
    "KERASTUNER_ORACLE_PORT",
)


@pytest.fixture
def tuner_variables(monkeypatch):
    """Keras Tuner's variables, unset now and restored after the test.

    A search with a role sets them in `os.environ` (Keras Tuner reads them
    there), so they are put back by hand: `monkeypatch.delenv` of an unset
    variable would not remove one the test's code sets.
    """
    saved = {name: os.environ.pop(name, None) for name in TUNER_VARIABLES}
    yield monkeypatch
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


def test_a_worker_without_a_chief_stops_after_the_wait(tuner_variables):
    (port,) = free_ports(1)
    with pytest.raises(
        MMoEExError, match=f"No tuner chief answered at localhost:{port}"
    ):
        SearchRole.of("settings", "worker", f"localhost:{port}", timeout=1)
    assert os.environ["KERASTUNER_TUNER_ID"].startswith("worker-")
    assert os.environ["KERASTUNER_ORACLE_PORT"] == str(port)


def test_a_chief_whose_port_is_in_use_is_named(tuner_variables):
    with socket.socket() as busy:
        busy.bind(("localhost", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(MMoEExError, match=f"Port {port} .* is in use"):
            SearchRole.of("settings", "chief", f"localhost:{port}", timeout=1)


def test_roles_from_keras_tuner_variables(tuner_variables):
    assert SearchRole.of("settings") is None
    tuner_variables.setenv("KERASTUNER_ORACLE_IP", "localhost")
    with pytest.raises(MMoEExError, match="without KERASTUNER_ORACLE_PORT"):
        SearchRole.of("settings")
    (port,) = free_ports(1)
    tuner_variables.setenv("KERASTUNER_ORACLE_PORT", str(port))
    tuner_variables.setenv("KERASTUNER_TUNER_ID", "chief")
    chief = SearchRole.of("settings", timeout=1)
    assert (chief.role, chief.address) == ("chief", f"localhost:{port}")
    assert chief.hyperparameters().values == {"config_fingerprint": chief.fingerprint}
    with pytest.raises(MMoEExError, match="Unknown tuner role 'boss'"):
        SearchRole.of("settings", "boss", f"localhost:{port}")
    with pytest.raises(MMoEExError, match="needs the oracle's host:port"):
        SearchRole.of("settings", "worker")
