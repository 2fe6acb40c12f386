"""Same seed, same data, same machine: identical training logs and weights."""

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from mmoeex_tf import Task
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.factory import build_model

SCRIPT = Path(__file__).parent / "scripts" / "deterministic_fit.py"
TASKS = [Task("a", "binary"), Task("b", "regression")]


def run(seed):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_same_seed_gives_identical_runs():
    first, second = run(7), run(7)
    assert first == second
    assert first != run(8)


def weights_of(config):
    model = build_model(config, TASKS, (5,))
    return [(weight.name, np.asarray(weight)) for weight in model.trainable_weights]


def test_build_model_draws_the_weights_from_the_config_seed():
    config = RunConfig(experts=3, alpha=0.34, tower_units=[4], seed=5)
    first = weights_of(config)
    # the global generators move on in between
    random.random()
    np.random.random(10)
    keras.random.uniform((3,))
    second = weights_of(config)
    other = weights_of(dataclasses.replace(config, seed=6))
    for (name, weight), (_, same), (_, changed) in zip(
        first, second, other, strict=True
    ):
        np.testing.assert_array_equal(weight, same, err_msg=name)
        if name.startswith("kernel"):  # biases start at zero for every seed
            assert not np.array_equal(weight, changed), name
