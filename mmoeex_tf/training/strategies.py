"""`tf.distribute` strategies for training: one device, local replicas, workers.

`make_strategy(name)` builds the strategy a run's `strategy` setting names.
For `"multi-worker"` the cluster comes from `TF_CONFIG` or a Slurm
allocation; every worker first checks its own address (this host, a free
port) and waits a bounded time for the others to come up, so a wrong
`TF_CONFIG`, a port in use or a worker that never starts is a named
`MMoEExError` instead of a hang. `check_same` and `broadcast_from_chief` are
the two exchanges a run makes between workers: that all of them run the same
config, and the chief's checkpoint for all of them.
"""

import errno
import json
import os
import socket
import time
import zlib

import numpy as np
import tensorflow as tf

from mmoeex_tf.errors import MMoEExError

#: Seconds a worker waits for the others to start (`MMOEEX_JOIN_TIMEOUT`).
JOIN_TIMEOUT_S = 45.0
JOIN_TIMEOUT_VARIABLE = "MMOEEX_JOIN_TIMEOUT"


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`tf.distribute.MultiWorkerMirroredStrategy` that Keras 3 `fit` can use.

    Takes the same arguments. `reduce` maps over nested values and reduces a
    scalar given `axis=0` as with `axis=None` (over the replicas); anything
    else reduces as in the parent class. Keras 3.15 passes both to `reduce`
    in `fit` (keras-team/keras issue 20585), which the parent rejects.
    """

    def reduce(self, reduce_op, value, axis):
        """Reduces `value`, possibly nested, across replicas.

        Args:
            reduce_op: A `tf.distribute.ReduceOp` value or its name.
            value: A (nest of) `PerReplica` values or tensors.
            axis: The axis to reduce over within each replica's value as
                well, or `None`; ignored for scalars.

        Returns:
            The reduced value(s), with the structure of `value`.
        """
        parent = super()

        def reduce_one(item):
            rank = self.experimental_local_results(item)[0].shape.rank
            return parent.reduce(reduce_op, item, None if rank == 0 else axis)

        return tf.nest.map_structure(reduce_one, value)


def make_strategy(name, timeout=None):
    """The strategy of a run's `strategy` setting.

    Multi-worker strategies must be made before TensorFlow runs any op in
    the process.

    Args:
        name: `"auto"` (the current strategy, by default none), `"one-device"`
            (the first GPU, else the CPU), `"mirrored"` (replicas on all local
            GPUs, else on all logical CPU devices) or `"multi-worker"` (the
            workers of `TF_CONFIG`, else of the Slurm allocation).
        timeout: Seconds a worker waits for the others; `None` reads
            `MMOEEX_JOIN_TIMEOUT`, else `JOIN_TIMEOUT_S`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        MMoEExError: for an unknown name, a multi-worker strategy without a
            cluster, a cluster that does not name this process's host and
            port, a port in use, or workers that did not start in time.
    """
    if name == "auto":
        return tf.distribute.get_strategy()
    if name == "multi-worker":
        resolver = cluster_resolver()
        wait_for_workers(resolver, join_timeout(timeout))
        return MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    if name == "mirrored":
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(gpus or cpus)
    raise MMoEExError(
        f"Unknown strategy {name!r}; choose auto, one-device, mirrored or multi-worker."
    )


def cluster_resolver():
    """The cluster of this worker, from `TF_CONFIG` or a Slurm allocation.

    Raises:
        MMoEExError: if neither is there, `TF_CONFIG` is not valid JSON or
            has no cluster, or its task is not one of the cluster's.
    """
    if "TF_CONFIG" in os.environ:
        try:
            resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
            spec = resolver.cluster_spec().as_dict()
        except (ValueError, TypeError, AttributeError) as err:
            raise MMoEExError(f"TF_CONFIG is not a valid cluster: {err}") from err
        source = "TF_CONFIG"
    elif "SLURM_JOB_ID" in os.environ:
        try:
            resolver = tf.distribute.cluster_resolver.SlurmClusterResolver()
            spec = resolver.cluster_spec().as_dict()
        except (RuntimeError, ValueError, KeyError) as err:
            raise MMoEExError(f"The Slurm allocation is not usable: {err}") from err
        source = "the Slurm allocation"
    else:
        raise MMoEExError(
            "strategy multi-worker needs TF_CONFIG (as `tf_config` makes it) "
            "or a Slurm allocation."
        )
    tasks = spec.get(resolver.task_type)
    if not isinstance(tasks, list) or not 0 <= (resolver.task_id or 0) < len(tasks):
        jobs = {job: len(addresses) for job, addresses in spec.items()}
        raise MMoEExError(
            f"{source} names task {resolver.task_type!r} {resolver.task_id!r}, "
            f"which is not in its cluster {jobs}; give this worker its own "
            "type and index."
        )
    return resolver


def wait_for_workers(resolver, timeout):
    """Checks this worker's address, then waits until every worker is up.

    This worker listens on its own address while it waits, so that the
    others can see it; the strategy's server takes the port over after.

    Args:
        resolver: A `tf.distribute.cluster_resolver.ClusterResolver`.
        timeout: Seconds to wait for the other workers.

    Raises:
        MMoEExError: if this worker's address is not of this host, its port
            is in use, or a worker is not reachable within `timeout`.
    """
    spec = resolver.cluster_spec().as_dict()
    own = spec[resolver.task_type][resolver.task_id or 0]
    peers = {a for addresses in spec.values() for a in addresses if a != own}
    listener = listen_on(own, f"{resolver.task_type} {resolver.task_id}")
    try:
        missing = wait_until_reachable(peers, timeout)
    finally:
        listener.close()
    if missing:
        raise MMoEExError(
            f"Worker(s) {', '.join(sorted(missing))} did not start within "
            f"{timeout:g} s; start every worker of the cluster (the wait is "
            f"{JOIN_TIMEOUT_VARIABLE} seconds)."
        )


def listen_on(address, who):
    """Listens on `address` (`host:port`), which must be free on this host.

    Args:
        address: `"host:port"`.
        who: Whose address it is, for the messages.

    Returns:
        The listening socket; close it to free the port.

    Raises:
        MMoEExError: if the port is in use or the host is not this one.
    """
    host, port = split_address(address)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen()
    except OSError as err:
        listener.close()
        if err.errno == errno.EADDRINUSE:
            raise MMoEExError(
                f"Port {port} of {address} ({who}) is in use by another "
                "process; choose a free port."
            ) from err
        raise MMoEExError(
            f"{address} ({who}) is not an address of this host "
            f"({socket.gethostname()}): {err}; check its host and index."
        ) from err
    return listener


def wait_until_reachable(addresses, timeout):
    """Waits until a TCP connection to every address succeeds.

    Args:
        addresses: `"host:port"` strings.
        timeout: Seconds to wait at most.

    Returns:
        The set of addresses still unreachable after `timeout` (empty when
        all answered).
    """
    waiting = set(addresses)
    deadline = time.monotonic() + timeout
    while waiting:
        waiting = {address for address in waiting if not _reachable(address)}
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return waiting


#: What TensorFlow raises on the other workers when one of them stops.
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError)


def lost_worker():
    """The `MMoEExError` for a worker that stopped (`LOST_WORKER_ERRORS`)."""
    return MMoEExError(
        "A worker of the cluster stopped; start every worker again with the "
        "same command (the chief's run folder as --output): a run continues "
        "from the chief's last checkpoint."
    )


def is_multi_worker(strategy):
    """Whether `strategy` spans several processes."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the outputs (always, unless a worker)."""
    return strategy.extended.should_checkpoint


def check_same(strategy, text, what):
    """Checks that every worker passed the same `text`.

    Args:
        strategy: The strategy; a single-process one passes at once.
        text: A string that must be equal on all workers.
        what: What it is, for the message.

    Raises:
        MMoEExError: naming the replicas whose `text` differs from the
            chief's (every worker raises it).
    """
    if not is_multi_worker(strategy):
        return
    replicas = strategy.num_replicas_in_sync
    fingerprint = zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF

    def own_slot(value):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.one_hot(replica, replicas, dtype=tf.int32) * value

    values = _sum_over_replicas(strategy, own_slot, np.int32(fingerprint))
    others = [str(i) for i, value in enumerate(values) if value != values[0]]
    if others:
        raise MMoEExError(
            f"Replica(s) {', '.join(others)} of {replicas} were started with "
            f"another {what} than the chief's; start every worker with the "
            "same command."
        )


def broadcast_from_chief(strategy, arrays):
    """The chief's values of `arrays`, on every worker.

    Args:
        strategy: The strategy; a single-process one returns `arrays`.
        arrays: NumPy arrays of the same shapes and dtypes on every worker.

    Returns:
        The chief's arrays, bit for bit.
    """
    if not is_multi_worker(strategy):
        return list(arrays)
    arrays = [np.asarray(array) for array in arrays]
    raw = b"".join(array.tobytes() for array in arrays)
    words = np.frombuffer(raw + bytes(-len(raw) % 4), dtype=np.int32)

    def chief_only(values):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.where(tf.equal(replica, 0), values, tf.zeros_like(values))

    data, out, offset = _sum_over_replicas(strategy, chief_only, words).tobytes(), [], 0
    for array in arrays:
        out.append(
            np.frombuffer(data, array.dtype, array.size, offset).reshape(array.shape)
        )
        offset += array.nbytes
    return out


def tf_config(workers, index):
    """The `TF_CONFIG` value of one worker of a cluster.

    Args:
        workers: `"host:port"` of every worker, in the same order on all of
            them.
        index: This worker's position in `workers`; 0 is the chief.

    Returns:
        The JSON string to put in the `TF_CONFIG` environment variable.
    """
    return json.dumps(
        {
            "cluster": {"worker": list(workers)},
            "task": {"type": "worker", "index": index},
        }
    )


def shard_by_data(dataset):
    """Sets a dataset to be split between workers batch by batch.

    Each worker reads the whole dataset and keeps its share of every global
    batch (`tf.data.experimental.AutoShardPolicy.DATA`), which suits data in
    memory; the default policy would first try to split by files and warn.
    Without several workers the option changes nothing.

    Args:
        dataset: A `tf.data.Dataset`, batched with the global batch size.

    Returns:
        The dataset with the sharding option set.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options)


def _sum_over_replicas(strategy, per_replica, value):
    """Sums `per_replica(value)` over the replicas, as a NumPy array."""

    @tf.function
    def exchange(value):
        summed = strategy.run(per_replica, args=(value,))
        return strategy.reduce("SUM", summed, axis=None)

    try:
        return exchange(tf.constant(value)).numpy()
    except LOST_WORKER_ERRORS as err:
        raise lost_worker() from err


def join_timeout(timeout=None):
    """Seconds to wait for other processes: `timeout`, else the variable.

    Args:
        timeout: Seconds, or `None` for `MMOEEX_JOIN_TIMEOUT` (else
            `JOIN_TIMEOUT_S`).

    Raises:
        MMoEExError: if the variable is not a positive number.
    """
    if timeout is not None:
        return float(timeout)
    value = os.environ.get(JOIN_TIMEOUT_VARIABLE)
    if value is None:
        return JOIN_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise MMoEExError(
            f"{JOIN_TIMEOUT_VARIABLE} must be a positive number of seconds, "
            f"got {value!r}."
        )
    return seconds


def split_address(address):
    """`"host:port"` -> `(host, port)`; an `MMoEExError` for anything else."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit():
        raise MMoEExError(f"Address {address!r} is not host:port.")
    return host.strip("[]"), int(port)


def _reachable(address):
    try:
        socket.create_connection(split_address(address), timeout=1.0).close()
    except OSError:
        return False
    return True
