"""Fast settings a run picks itself: `steps_per_execution="auto"`, one trace."""

import keras
import numpy as np
import pytest
import yaml

from mmoeex_tf import MMoEExModel, Task, runs
from mmoeex_tf.cli import main
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.layers import DenseExperts
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.factory import AUTO_STEPS_PER_EXECUTION, steps_per_execution
from mmoeex_tf.training.maml import MAMLMTL
from tests.helpers import TINY_RUN

# TINY_RUN for three epochs: 4 steps per epoch.
TINY = {**TINY_RUN, "epochs": 3}


def test_auto_is_the_default():
    assert RunConfig().steps_per_execution == "auto"


@pytest.mark.parametrize(
    "steps, expected",
    [
        (1, 1),
        (4, 4),
        (16, 16),
        (20, 10),
        (32, 16),
        (117, 13),  # census3 at batch 512
        (17, 1),  # a prime above the limit: only 1 divides it
    ],
)
def test_auto_is_the_largest_divisor_of_the_steps_up_to_the_limit(steps, expected):
    assert AUTO_STEPS_PER_EXECUTION == 16
    config = RunConfig(batch_size=10)
    # the last batch of an epoch may be smaller: 10 * steps - 3 rows
    assert steps_per_execution(config, 10 * steps - 3) == expected


def test_auto_counts_maml_steps_like_joint_ones():
    config = RunConfig(optimization="maml", batch_size=512)
    assert steps_per_execution(config, 59_604) == 13  # census3: 117 steps


def test_auto_is_one_where_a_step_must_act_on_its_own():
    assert steps_per_execution(RunConfig(non_finite="stop"), 10_000) == 1
    assert steps_per_execution(RunConfig(strategy="multi-worker"), 10_000) == 1
    assert steps_per_execution(RunConfig(strategy="mirrored"), 10_000) == 1
    assert steps_per_execution(RunConfig(), None) == 1


def test_an_integer_is_used_as_it_is():
    config = RunConfig(steps_per_execution=3, batch_size=10)
    assert steps_per_execution(config, 298) == 3  # 30 steps per epoch
    assert steps_per_execution(RunConfig(steps_per_execution="7"), None) == 7
    assert RunConfig.from_dict({"steps_per_execution": 5}).steps_per_execution == 5


def test_an_integer_must_divide_the_steps_per_epoch():
    config = RunConfig(steps_per_execution=16, batch_size=512)
    with pytest.raises(MMoEExError) as error:
        steps_per_execution(config, 59_604)  # census3: 117 steps
    message = str(error.value)
    assert "steps_per_execution 16 does not divide the 117 training steps" in message
    assert "59604 rows in batches of 512" in message
    assert "(e.g. 13) or 'auto'" in message


@pytest.mark.parametrize("value", [0, -1, "fast", "0", 2.5, True, None])
def test_bad_values_are_named(value):
    with pytest.raises(MMoEExError, match="steps_per_execution") as error:
        RunConfig.from_dict({"steps_per_execution": value})
    assert "a positive integer or 'auto'" in str(error.value)
    assert repr(value) in str(error.value)


def _trained(steps, **changes):
    config = RunConfig.from_dict({**TINY, **changes, "steps_per_execution": steps})
    data = runs.load_run_data(config)
    model = runs.build_model(config, data.tasks, (10,), len(data.x["train"]))
    result = runs.train(model, data, config, verbose=0)
    return model, result


@pytest.mark.parametrize(
    "changes",
    [{}, {"optimization": "maml", "maml": {"order": 2}}],
    ids=["joint", "maml"],
)
def test_auto_trains_as_one_step_per_execution(changes):
    auto, auto_result = _trained("auto", **changes)
    one, one_result = _trained(1, **changes)
    assert (auto.steps_per_execution, one.steps_per_execution) == (4, 1)
    # every epoch runs its own 4 steps: none runs into the next epoch's batches
    assert int(auto.optimizer.iterations.numpy()) == 3 * 4
    assert len(auto_result.history) == len(one_result.history) == 3
    for a, b in zip(auto.get_weights(), one.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        auto_result.history["loss"], one_result.history["loss"], rtol=1e-5
    )


def test_the_command_takes_auto_and_saves_it(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY, "epochs": 1}))
    output = tmp_path / "run"
    args = ["train", "--config", str(config), "--steps-per-execution", "auto"]
    assert main([*args, "--output", str(output), "-q"]) == 0
    saved = yaml.safe_load((output / "config.yaml").read_text())
    assert saved["steps_per_execution"] == "auto"
    model = runs.load_saved_model(output / "model.keras")
    assert model.steps_per_execution == 4


@pytest.mark.parametrize("value", ["0", "-1", "fast"])
def test_the_command_names_a_bad_value(tmp_path, capsys, value):
    output = tmp_path / "run"
    args = ["train", "--steps-per-execution", value, "--output", str(output)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Invalid steps_per_execution" in err and repr(value) in err
    assert not output.exists()


class CountingModel(MMoEExModel):
    """An `MMoEExModel` counting how often its train step is traced."""

    traces = 0

    def train_step(self, data):
        CountingModel.traces += 1  # Python runs only while tracing
        return super().train_step(data)


@pytest.mark.parametrize("optimization", [None, MAMLMTL(order=2)])
def test_fit_traces_the_train_step_once(optimization):
    # The optimizer is built before the first step; built inside it, its new
    # variables would make tf.function trace the step a second time.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = {"a": (x[:, 0] > 0).astype("float32"), "b": x[:, 1].astype("float32")}
    tasks = [Task("a", "binary"), Task("b", "regression")]
    model = CountingModel(tasks, DenseExperts(2, 4), optimization=optimization)
    model.build((None, 3))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    CountingModel.traces = 0
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)  # last batch: 8 rows
    assert model.optimizer.built
    assert CountingModel.traces == 1
