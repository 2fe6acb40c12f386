"""The `gate_mask` run option: a hand-made MMoEEx mask from a config file."""

import argparse

import keras
import numpy as np
import pytest
import yaml

from mmoeex_tf import MMoEExError, Task
from mmoeex_tf.cli import main, options
from mmoeex_tf.integrations.tuning import MMoEExHyperModel
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.config_files import over_recipe, recipe
from mmoeex_tf.runs.factory import build_model
from tests.helpers import TINY_RUN

TASKS = [
    Task("ihm", "binary"),
    Task("los", "multiclass", 3),
    Task("sofa", "regression"),
]


def test_named_tasks_open_their_experts_and_the_others_open_all():
    config = RunConfig(experts=4, gate_mask={"los": [0], "sofa": (3, 1, 3)})
    assert config.gate_mask == {"los": [0], "sofa": [1, 3]}
    model = build_model(config, TASKS, (5,))
    np.testing.assert_array_equal(
        model.gate_mask, [[1, 1, 1, 1], [1, 0, 0, 0], [0, 1, 0, 1]]
    )


def test_the_mask_replaces_the_draw_of_alpha():
    drawn = build_model(RunConfig(experts=4, alpha=0.5), TASKS, (5,)).gate_mask
    assert (np.asarray(drawn).sum(axis=0) == 1).sum() == 2  # two exclusive experts
    given = {"ihm": [0, 1], "los": [2], "sofa": [3]}
    model = build_model(RunConfig(experts=4, alpha=0.5, gate_mask=given), TASKS, (5,))
    np.testing.assert_array_equal(
        model.gate_mask, np.eye(4)[[[0, 1], [2, 2], [3, 3]]].max(1)
    )


@pytest.mark.parametrize(
    "values, fragments",
    [
        ({"gate_mask": ["los"]}, ["Invalid gate_mask", "mapping of task name"]),
        ({"gate_mask": {"los": []}}, ["Invalid gate_mask", "'los' has no expert"]),
        ({"gate_mask": {"los": [-1]}}, ["Invalid gate_mask", ">= 0"]),
        ({"gate_mask": {"los": 0}}, ["Invalid gate_mask", "list of expert indices"]),
        ({"gate_mask": {"los": [8]}}, ["'los' opens expert 8", "0 to 7"]),
    ],
)
def test_bad_masks_are_named(values, fragments):
    with pytest.raises(MMoEExError) as error:
        RunConfig.from_dict(values)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_a_name_that_is_not_a_task_is_named_with_the_tasks():
    config = RunConfig(experts=2, gate_mask={"los": [0], "lso": [1]})
    with pytest.raises(MMoEExError, match=r"\['lso'\].*'ihm', 'los', 'sofa'"):
        build_model(config, TASKS, (5,))


def test_train_command_keeps_the_mask_in_the_model_and_its_config(tmp_path):
    values = {**TINY_RUN, "gate_mask": {"y1": [0], "y2": [1, 2]}}
    config_file = tmp_path / "mask.yaml"
    config_file.write_text(yaml.safe_dump(values))
    output = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--output", str(output)]) == 0
    model = keras.saving.load_model(output / "model.keras")
    np.testing.assert_array_equal(model.gate_mask, [[1, 0, 0], [0, 1, 1]])
    saved = yaml.safe_load((output / "config.yaml").read_text())
    assert saved["gate_mask"] == {"y1": [0], "y2": [1, 2]}


def test_experts_open_to_no_task_are_named():
    config = RunConfig(experts=5, gate_mask={"ihm": [0], "los": [1], "sofa": [1, 3]})
    with pytest.raises(MMoEExError, match=r"expert\(s\) \[2, 4\] of the 5"):
        build_model(config, TASKS, (5,))


def test_other_models_ignore_the_mask_as_they_ignore_alpha():
    config = RunConfig(model="single-task", experts=2, gate_mask={"los": [5]})
    model = build_model(config, TASKS, (5,))
    np.testing.assert_array_equal(model.gate_mask, np.eye(3))


def test_tuner_draws_masks_from_alpha_even_with_a_mask_in_the_base_config():
    import keras_tuner

    base = RunConfig(experts=4, gate_mask={"los": [0]})
    hypermodel = MMoEExHyperModel(
        TASKS, (5,), base_config=base, optimizations=("joint",)
    )
    hp = keras_tuner.HyperParameters()
    hp.Fixed("experts", 4)
    hp.Fixed("alpha", 0.0)
    model = hypermodel.build(hp)
    np.testing.assert_array_equal(model.gate_mask, np.ones((3, 4)))


def test_group_command_trains_its_groups_without_the_mask(tmp_path):
    config_file = tmp_path / "mask.yaml"
    config_file.write_text(yaml.safe_dump({**TINY_RUN, "gate_mask": {"y1": [0]}}))
    output = tmp_path / "grouping"
    args = ["group", "--config", str(config_file), "--groups", "2"]
    assert main([*args, "--output", str(output)]) == 0
    assert (output / "groups.txt").read_text().count("y") == 2


@pytest.mark.parametrize(
    "given, mask_kept",
    [
        ({}, True),
        ({"epochs": 3}, True),
        ({"experts": 2}, False),
        ({"alpha": 0.25}, False),
    ],
)
def test_a_recipes_mask_holds_only_for_the_recipes_own_experts(given, mask_kept):
    values = over_recipe({"data": "physio4", **given})
    assert ("gate_mask" in values) == mask_kept
    config = recipe("physio4", given)
    assert bool(config.gate_mask) == mask_kept
    mine = {"ihm": [0], "los": [1]}
    assert recipe("physio4", {**given, "gate_mask": mine}).gate_mask == mine


def test_command_line_experts_draw_the_mask_instead_of_the_recipes():
    args = argparse.Namespace(config=None, recipe=True, data="physio4", experts=2)
    config = options.run_config(args)
    assert config.model == "mmoeex" and config.experts == 2 and not config.gate_mask
    args = argparse.Namespace(config=None, recipe=True, data="physio4", epochs=1)
    assert options.run_config(args).gate_mask["los"] == [0]
