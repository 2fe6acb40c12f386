"""Small helpers shared by the tests."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np

TWO_CPU_REPLICAS = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
"""


def assert_config_round_trip(layer, inputs, **call_kwargs):
    """Rebuilds `layer` from its config, copies the weights, compares outputs."""
    expected = layer(inputs, **call_kwargs)
    clone = layer.__class__.from_config(layer.get_config())
    clone(inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    actual = clone(inputs, **call_kwargs)
    for want, got in zip(keras.tree.flatten(expected), keras.tree.flatten(actual)):
        np.testing.assert_array_equal(np.asarray(want), np.asarray(got))
    assert clone.get_config() == layer.get_config()
    return clone


@keras.saving.register_keras_serializable(package="tests")
class ScaledDense(keras.layers.Layer):
    """A user's own expert layer: a dense layer times a fixed scale."""

    def __init__(self, units, scale=2.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale
        self.dense = keras.layers.Dense(units)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        return self.scale * self.dense(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


def run_on_two_cpu_replicas(script, timeout=300):
    """Runs `script` in a fresh Python process whose CPU is two devices.

    The process splits its CPU into two logical devices before `script`
    runs, and defines `mirrored`, a `tf.distribute.MirroredStrategy` over
    them (the split must happen before TensorFlow initializes its devices,
    hence the separate process).

    Args:
        script: Python source (dedented here) that prints numbers.
        timeout: Seconds the process may run.

    Returns:
        The numbers the script printed, as floats, in order.
    """
    result = subprocess.run(
        [sys.executable, "-c", TWO_CPU_REPLICAS + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [float(value) for value in result.stdout.split()]


def free_ports(count):
    """`count` TCP ports of localhost that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_process(arguments, cwd, **env):
    """Starts `python ARGUMENTS` on the CPU, with `env` added to the environment.

    `TF_CONFIG` and Keras Tuner's variables are not inherited; the output
    (stdout and stderr together) is read by `finish`.
    """
    inherited = ("TF_CONFIG", "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP")
    environment = {k: v for k, v in os.environ.items() if k not in inherited}
    environment.update(CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", **env)
    return subprocess.Popen(
        [sys.executable, *map(str, arguments)],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(processes, timeout):
    """Waits for processes (at most `timeout` s each), kills any left over.

    Returns:
        `(returncode, output)` of each process, in order.
    """
    results = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=timeout)
            results.append((process.returncode, output))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def mmoeex(*arguments):
    """The arguments that run the `mmoeex` command line with `python`."""
    return ["-m", "mmoeex_tf", *arguments]


SCRIPTS = Path(__file__).parent / "scripts"
# A seconds-long run on synthetic data: 500 training rows in batches of 128
# (4 steps per epoch), a small model.
TINY_RUN = {
    "data": "synthetic",
    "data_options": {"sizes": [500, 100, 100], "num_features": 10},
    "experts": 3,
    "expert_units": [8],
    "tower_units": [4],
    "batch_size": 128,
    "epochs": 1,
}
