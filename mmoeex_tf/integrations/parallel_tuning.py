"""One process's part in a parallel Keras Tuner search, with bounded waits.

In Keras Tuner's distributed mode a chief serves the oracle and workers run
the trials it hands out. The role comes from Keras Tuner's variables
(`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`) or
from a role and the oracle's address (`SearchRole.of`). Keras Tuner itself
waits without end for a chief or a worker that is not there; here the chief's
port is checked first, every wait has a limit (`MMOEEX_JOIN_TIMEOUT`), and
each worker checks that it runs the chief's config (a fingerprint the chief
puts into the search space).
"""

import dataclasses
import os
import socket
import threading
import time
import zlib

import keras_tuner

from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.training.strategies import (
    JOIN_TIMEOUT_VARIABLE,
    join_timeout,
    listen_on,
    split_address,
    wait_until_reachable,
)

ROLES = ("chief", "worker")
VARIABLES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
#: The fixed hyperparameter by which workers check they run the chief's config.
FINGERPRINT = "config_fingerprint"


@dataclasses.dataclass(frozen=True)
class SearchRole:
    """This process's part in a parallel search.

    Attributes:
        role: `"chief"` or `"worker"`.
        address: The oracle's `"host:port"`.
        timeout: Seconds the chief waits for a first worker, and a worker
            for its chief.
        fingerprint: A number derived from the search's settings, equal on
            the chief and its workers.
    """

    role: str
    address: str
    timeout: float
    fingerprint: int

    @classmethod
    def of(cls, settings, role=None, oracle=None, timeout=None):
        """The part of this process, its variables set and its address checked.

        Args:
            settings: Text of every setting the chief and workers share.
            role: `"chief"` (serves the oracle at `oracle`), `"worker"` (runs
                the trials of the oracle at `oracle`) or `None`: Keras
                Tuner's variables say (`KERASTUNER_TUNER_ID` is `chief`, or
                a name of the worker's own).
            oracle: The oracle's `"host:port"`, with `role`.
            timeout: Seconds to wait; `None` reads `MMOEEX_JOIN_TIMEOUT`.

        Returns:
            A `SearchRole`, or `None` for a search on its own. With `role`,
            Keras Tuner's variables are set in `os.environ` (a worker's id
            from its host name and process id).

        Raises:
            MMoEExError: for an unknown role, a role without an oracle
                address (or the reverse), incomplete variables, the chief's
                port in use, or (worker) no chief within `timeout`.
        """
        role = tuner_role(role, oracle)
        if role is None:
            return None
        ip, port = os.environ[VARIABLES[1]], os.environ[VARIABLES[2]]
        fingerprint = zlib.crc32(settings.encode("utf-8")) & 0x7FFFFFFF
        part = cls(role, f"{ip}:{port}", join_timeout(timeout), fingerprint)
        if role == "chief":
            listen_on(part.address, "the tuner chief's oracle").close()
        elif wait_until_reachable([part.address], part.timeout):
            raise MMoEExError(
                f"No tuner chief answered at {part.address} within "
                f"{part.timeout:g} s; start the chief first (the wait is "
                f"{JOIN_TIMEOUT_VARIABLE} seconds)."
            )
        return part

    def hyperparameters(self):
        """A `keras_tuner.HyperParameters` holding the fingerprint, for the tuner."""
        space = keras_tuner.HyperParameters()
        space.Fixed(FINGERPRINT, self.fingerprint)
        return space

    def run(self, tuner, run_search):
        """Runs this part of the search; returns when it is done.

        The chief's part ends when every trial has ended and every worker has
        been stopped (Keras Tuner's own server would check that every 20 s).
        A worker first compares its fingerprint with the chief's.

        Args:
            tuner: The tuner, made with `hyperparameters()`.
            run_search: Calls `tuner.search` with the data.

        Raises:
            MMoEExError: if no trial starts within the timeout (chief), the
                chief's fingerprint differs or the chief is unreachable for
                the timeout (worker).
        """
        oracle = tuner.oracle
        if self.role == "worker":
            chief = oracle.get_space().values.get(FINGERPRINT)
            if chief != self.fingerprint:
                raise MMoEExError(
                    "This tuner worker was started with another config than the "
                    f"chief's at {self.address}; start it with the chief's options."
                )
        failure = []

        def target():
            try:
                run_search()
            except Exception as err:  # noqa: BLE001 - raised by the caller
                failure.append(err)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        started = last_seen = time.monotonic()
        while thread.is_alive():
            thread.join(1.0)
            if self.role == "chief":
                if oracle.trials and not (oracle.ongoing_trials or oracle.tuner_ids):
                    break
                self._check(not oracle.trials, started, "No tuner worker joined")
            elif not wait_until_reachable([self.address], 0):
                last_seen = time.monotonic()
            else:
                self._check(True, last_seen, "Lost the tuner chief")
        if failure:
            raise failure[0]

    def _check(self, waiting, since, what):
        if waiting and time.monotonic() - since > self.timeout:
            raise MMoEExError(
                f"{what} at {self.address} for {self.timeout:g} s; start the "
                "chief, then the workers, with the same options (the wait is "
                f"{JOIN_TIMEOUT_VARIABLE} seconds)."
            )


def tuner_role(role=None, oracle=None):
    """This process's role in a parallel search, set up for Keras Tuner.

    Args:
        role: `"chief"`, `"worker"` or `None` (Keras Tuner's variables say).
        oracle: The oracle's `"host:port"`, with `role`.

    Returns:
        `"chief"`, `"worker"`, or `None` for a search on its own. With
        `role`, Keras Tuner's variables are set in `os.environ`.

    Raises:
        MMoEExError: for an unknown role, a role without an oracle address
            (or the reverse), or incomplete variables.
    """
    if role is None:
        if oracle is not None:
            raise MMoEExError("An oracle address needs a tuner role (chief or worker).")
        given = [name for name in VARIABLES if name in os.environ]
        if not given:
            return None
        if len(given) < len(VARIABLES):
            missing = sorted(set(VARIABLES) - set(given))
            raise MMoEExError(
                f"{', '.join(given)} set without {', '.join(missing)}; a parallel "
                "search needs all three."
            )
        split_address(f"{os.environ[VARIABLES[1]]}:{os.environ[VARIABLES[2]]}")
        return "chief" if "chief" in os.environ[VARIABLES[0]] else "worker"
    if role not in ROLES:
        raise MMoEExError(f"Unknown tuner role {role!r}; choose chief or worker.")
    if oracle is None:
        raise MMoEExError(f"Tuner role {role!r} needs the oracle's host:port.")
    host, port = split_address(oracle)
    worker = f"worker-{socket.gethostname()}-{os.getpid()}"
    os.environ.update(
        KERASTUNER_TUNER_ID="chief" if role == "chief" else worker,
        KERASTUNER_ORACLE_IP=host,
        KERASTUNER_ORACLE_PORT=str(port),
    )
    return role
