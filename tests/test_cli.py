"""The `mmoeex` command, mostly run in-process through `main`."""

import argparse
import dataclasses
import importlib
import importlib.util
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from mmoeex_tf import runs
from mmoeex_tf.analysis.scores import score_model
from mmoeex_tf.cli import main, options
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.config_files import RECIPES, read_config_file
from tests.helpers import TINY_RUN

# The module: the package attribute `mmoeex_tf.runs.run` is the function.
run_module = importlib.import_module("mmoeex_tf.runs.run")

RUN_FILES = {
    "model.keras",
    "metrics.json",
    "metrics.csv",
    "history.csv",
    "learning_curves.png",
    "config.yaml",
}
TINY = TINY_RUN


def write_config(path, values):
    if path.suffix == ".json":
        path.write_text(json.dumps(values))
    else:
        path.write_text(yaml.safe_dump(values))
    return path


def assert_failed(capsys, code, *fragments):
    """Exit code 2 and a one-line `error: ...` naming the problem."""
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def only_entries(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def census_run(tmp_path_factory):
    """One quick census3 run with the default folder name; returns the folder."""
    root = tmp_path_factory.mktemp("census")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        keras.utils.set_random_seed(0)
        args = ["train", "--limit-rows", "3000", "--epochs", "1", "--quiet"]
        args += ["--batch-size", "128", "--learning-rate", "0.005"]
        assert main(args) == 0
    (folder,) = (root / "runs").iterdir()
    return folder


def test_train_writes_every_output(census_run, capsys):
    assert census_run.name.startswith("census3-mmoeex-")
    assert set(only_entries(census_run)) == RUN_FILES
    summary = json.loads((census_run / "metrics.json").read_text())
    assert summary["interrupted"] is False
    assert summary["best_epoch"] == summary["epochs_run"] == 1
    test = summary["metrics"]["test"]
    assert set(test) == {"income", "marital", "education"}
    assert all(0.6 < test[task]["auc"] <= 1.0 for task in test)
    mean = summary["mean_over_tasks"]["test"]["auc"]
    assert mean == pytest.approx(np.mean([test[task]["auc"] for task in test]))
    model = keras.saving.load_model(census_run / "model.keras")
    saved = yaml.safe_load((census_run / "config.yaml").read_text())
    data = runs.load_run_data(RunConfig.from_dict(saved))  # its 3,000 train rows
    for split, exact in summary["exact"].items():
        assert exact == pytest.approx(score_model(model, *data.split(split)))
        # Keras' estimate from 1,000 thresholds, close to the exact value here
        for task, value in exact.items():
            assert summary["metrics"][split][task]["auc"] == pytest.approx(
                value, abs=0.01
            )
    table = pd.read_csv(census_run / "metrics.csv")
    assert len(table) == 9 and {"split", "task", "loss", "auc"} <= set(table)
    assert list(pd.read_csv(census_run / "history.csv")["epoch"]) == [1]
    config = yaml.safe_load((census_run / "config.yaml").read_text())
    resolved = RunConfig.from_dict(config)
    assert resolved.limit_rows == 3000 and resolved.epochs == 1
    assert resolved.output == str(Path("runs") / census_run.name)
    png = (census_run / "learning_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_train_prints_a_table_per_task(tmp_path, capsys):
    code = main(
        ["train", "--config", str(write_config(tmp_path / "c.yaml", TINY))]
        + ["--output", str(tmp_path / "run")]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Test metrics at epoch 1 of 1" in out
    assert "y1" in out and "y2" in out and "mae" in out


def test_evaluate_scores_a_saved_model(census_run, capsys):
    model = str(census_run / "model.keras")
    assert main(["evaluate", model, "--data", "census3", "--split", "val"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((census_run / "metrics.json").read_text())
    for task, values in summary["metrics"]["val"].items():
        assert f"{values['auc']:.4f}" in next(
            line for line in out.splitlines() if line.startswith(task)
        )


def test_diversity_prints_and_saves(census_run, tmp_path, capsys):
    model = str(census_run / "model.keras")
    output = tmp_path / "diversity"
    assert main(["diversity", model, "--data", "census3", "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "Diversity score on census3 test:" in out
    assert set(only_entries(output)) == {
        "diversity.png",
        "distance_matrix.csv",
        "gate_usage.csv",
    }
    distances = pd.read_csv(output / "distance_matrix.csv", index_col=0)
    assert distances.shape == (8, 8)
    assert distances.to_numpy().max() == pytest.approx(1.0)
    usage = pd.read_csv(output / "gate_usage.csv", index_col=0)
    assert list(usage.index) == ["income", "marital", "education"]
    assert usage.sum(axis=1).to_numpy() == pytest.approx(1.0)


def test_evaluate_refuses_a_model_of_other_tasks(census_run, capsys):
    model = str(census_run / "model.keras")
    code = main(["evaluate", model, "--data", "synthetic"])
    assert_failed(capsys, code, "The model predicts tasks")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_with_command_line_overrides(tmp_path, suffix):
    values = {**TINY, "learning_rate": "1e-3", "model": "mmoe"}
    config = write_config(tmp_path / f"run{suffix}", values)
    output = tmp_path / "run"
    code = main(
        ["train", "--config", str(config), "--epochs", "2"]
        + ["--output", str(output), "-q"]
    )
    assert code == 0
    resolved = yaml.safe_load((output / "config.yaml").read_text())
    assert resolved["epochs"] == 2  # the option wins over the file
    assert resolved["model"] == "mmoe" and resolved["experts"] == 3
    assert resolved["learning_rate"] == 1e-3
    assert resolved["data_options"]["sizes"] == [500, 100, 100]
    assert len(pd.read_csv(output / "history.csv")) == 2
    assert keras.saving.load_model(output / "model.keras").task_names == ["y1", "y2"]


@pytest.mark.parametrize("model, experts", [("shared-bottom", 1), ("single-task", 2)])
def test_every_model_trains(tmp_path, model, experts):
    config = write_config(tmp_path / "c.yaml", {**TINY, "model": model})
    output = tmp_path / "run"
    assert main(["train", "--config", str(config), "--output", str(output), "-q"]) == 0
    saved = runs.load_saved_model(output / "model.keras")
    assert saved.mixture.num_experts == experts
    if model == "single-task":
        assert saved.gate_mask.tolist() == [[1, 0], [0, 1]]


def test_maml_optimization(tmp_path, capsys):
    values = {**TINY, "optimization": "maml", "maml": {"order": 1}}
    config = write_config(tmp_path / "c.yaml", values)
    output = tmp_path / "run"
    code = main(["train", "--config", str(config), "--output", str(output), "-q"])
    if importlib.util.find_spec("mmoeex_tf.training.maml") is None:
        assert_failed(capsys, code, "mmoeex_tf.training.maml")
        assert not output.exists()
    else:
        assert code == 0
        saved = runs.load_saved_model(output / "model.keras")
        assert type(saved.optimization).__name__ == "MAMLMTL"


def test_xla_and_steps_per_execution(tmp_path, capsys):
    values = {**TINY, "epochs": 2, "jit_compile": True}
    config = write_config(tmp_path / "c.yaml", values)
    output = tmp_path / "run"
    args = ["train", "--config", str(config), "--steps-per-execution", "2"]
    assert main([*args, "--output", str(output), "-q"]) == 0
    resolved = RunConfig.from_dict(yaml.safe_load((output / "config.yaml").read_text()))
    assert (resolved.steps_per_execution, resolved.jit_compile) == (2, True)
    assert len(pd.read_csv(output / "history.csv")) == 2
    model = runs.build_model(resolved, runs.load_run_data(resolved).tasks, (10,))
    assert (model.steps_per_execution, model.jit_compile) == (2, True)
    code = main(["train", "--config", str(config), "--steps-per-execution", "3"])
    assert_failed(capsys, code, "steps_per_execution 3 does not divide the 4")
    bad = write_config(tmp_path / "bad.yaml", {**TINY, "jit_compile": "yes"})
    code = main(["train", "--config", str(bad), "--output", str(tmp_path / "r")])
    assert_failed(capsys, code, "Invalid jit_compile", "true or false")


def test_unknown_config_key_names_the_closest(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {**TINY, "learning_rat": 0.01})
    output = tmp_path / "run"
    code = main(["train", "--config", str(config), "--output", str(output)])
    assert_failed(capsys, code, "'learning_rat'", "Did you mean 'learning_rate'?")
    assert only_entries(tmp_path) == ["c.yaml"]


def test_malformed_yaml(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: [1, 2\nseed: 3\n")
    code = main(["train", "--config", str(config), "--output", str(tmp_path / "r")])
    assert_failed(capsys, code, "not valid YAML", "line")
    assert only_entries(tmp_path) == ["c.yaml"]


def test_malformed_json_and_missing_file(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text('{"epochs": 1,}')
    assert_failed(capsys, main(["train", "--config", str(config)]), "not valid JSON")
    missing = str(tmp_path / "nope.yaml")
    assert_failed(capsys, main(["train", "--config", missing]), "cannot be read")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--data", "census"], ["Invalid data", "did you mean 'census3'?"]),
        (["--model", "mmoex"], ["Invalid model", "did you mean 'mmoeex'?"]),
        (["--alpha", "2"], ["Invalid alpha", "[0, 1]"]),
        (["--steps-per-execution", "0"], ["Invalid steps_per_execution"]),
        (["--numeric-bins", "-1"], ["Invalid numeric_bins", ">= 0"]),
        (["--numeric-bins", "8"], ["numeric_bins apply to the table data set"]),
        (["--expert-units"], ["expected at least one argument"]),
        (["--data", "synthetic", "--expert-kind", "gru"], ["needs sequence data"]),
        (["--data", "tox21"], ["tox21", "data_path"]),
        (["--data", "synthetic", "--data-path", "x"], ["synthetic", "path"]),
    ],
)
def test_invalid_options(tmp_path, capsys, args, fragments):
    output = tmp_path / "run"
    code = main(["train", *args, "--limit-rows", "10", "--output", str(output)])
    assert_failed(capsys, code, *fragments)
    assert only_entries(tmp_path) == []


def test_missing_or_wrong_data_path(tmp_path, capsys):
    output = tmp_path / "run"
    missing = str(tmp_path / "nowhere.csv")
    code = main(["train", "--data-path", missing, "--output", str(output)])
    assert_failed(capsys, code, "nowhere.csv", "does not exist")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b,c\n1,2,3\n")
    code = main(["train", "--data-path", str(wrong), "--output", str(output)])
    assert_failed(capsys, code, "columns")
    assert only_entries(tmp_path) == ["wrong.csv"]


def test_existing_output_folder_is_refused(tmp_path, capsys):
    output = tmp_path / "run"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    code = main(["train", "--data", "synthetic", "--output", str(output)])
    assert_failed(capsys, code, "already exists")
    assert only_entries(output) == ["keep.txt"]


def test_a_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args):
        raise OSError("disk full")

    # model.keras and config.yaml are written by then
    monkeypatch.setattr(run_module, "plot_learning_curves", broken)
    config = RunConfig.from_dict({**TINY, "output": str(tmp_path / "run")})
    with pytest.raises(OSError, match="disk full"):
        runs.run(config, verbose=0)
    # no partial output, only the checkpoint to finish the run from
    assert only_entries(tmp_path / "run") == ["checkpoint"]
    monkeypatch.undo()
    finished = runs.resume(tmp_path / "run", verbose=0)
    assert set(only_entries(finished.folder)) == RUN_FILES
    assert len(finished.result.history) == 1


def test_ctrl_c_keeps_the_best_epoch_and_writes_outputs(tmp_path, monkeypatch, capsys):
    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            # `batch`: the last of an execution's steps (steps_per_execution)
            if self.epoch == 1 and batch >= 1:
                raise KeyboardInterrupt

    train = runs.train

    def train_with_ctrl_c(model, data, config, callbacks, verbose, checkpoints):
        return train(model, data, config, [CtrlC()], verbose, checkpoints)

    monkeypatch.setattr(run_module, "train", train_with_ctrl_c)
    config = write_config(tmp_path / "c.yaml", {**TINY, "epochs": 3})
    output = tmp_path / "run"
    assert (
        main(["train", "--config", str(config), "--output", str(output), "-q"]) == 130
    )
    assert f"--resume {output}" in capsys.readouterr().err
    assert set(only_entries(output)) == RUN_FILES | {"checkpoint"}
    summary = json.loads((output / "metrics.json").read_text())
    assert summary["interrupted"] is True
    assert summary["epochs_run"] == summary["best_epoch"] == 1
    saved = runs.load_saved_model(output / "model.keras")
    data = runs.load_data("synthetic", options=TINY["data_options"])
    for task, values in runs.score_split(saved, data, "val").items():
        assert values == pytest.approx(summary["metrics"]["val"][task])
    # the checkpoint of epoch 0 finishes the run, replacing the outputs
    monkeypatch.setattr(run_module, "train", train)
    assert main(["train", "--resume", str(output), "-q"]) == 0
    assert set(only_entries(output)) == RUN_FILES
    summary = json.loads((output / "metrics.json").read_text())
    assert summary["interrupted"] is False and summary["epochs_run"] == 3


def test_evaluate_errors(tmp_path, capsys):
    missing = str(tmp_path / "model.keras")
    assert_failed(capsys, main(["evaluate", missing, "--data", "census3"]), "exist")
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    code = main(["diversity", str(junk), "--data", "census3"])
    assert_failed(capsys, code, "not a saved Keras model")
    code = main(["evaluate", missing, "--data", "census3", "--split", "dev"])
    assert_failed(capsys, code, "invalid choice: 'dev'")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, relative, options",
    [
        ("tox21", "moleculenet/tox21.csv", ["--limit-rows", "300"]),
        (
            "physio4",
            "physionet2012",
            ["--limit-rows", "64", "--expert-kind", "gru", "--expert-units", "4"],
        ),
        (
            "physio4",
            "physionet2012",
            ["--limit-rows", "64", "--expert-kind", "summary", "--expert-bins", "2"],
        ),
    ],
    ids=["tox21", "physio4-gru", "physio4-summary"],
)
def test_train_on_shared_real_data(
    shared_data, tmp_path, monkeypatch, name, relative, options
):
    monkeypatch.setenv("MMOEEX_CACHE", str(tmp_path / "cache"))
    output = tmp_path / "run"
    args = ["train", "--data", name, "--data-path", str(shared_data / relative)]
    args += ["--experts", "2", "--epochs", "1", "--output", str(output), "-q"]
    assert main(args + options) == 0
    summary = json.loads((output / "metrics.json").read_text())
    assert len(summary["metrics"]["test"]) == {"tox21": 12, "physio4": 4}[name]


def test_console_script():
    script = Path(sys.executable).with_name("mmoeex")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [str(script), "train", "--help"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "--limit-rows N" in result.stdout and "--config FILE" in result.stdout


def test_python_dash_m(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["mmoeex", "train", "--epochs", "zero"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("mmoeex_tf", run_name="__main__")
    assert stop.value.code == 2
    assert (
        "error: argument --epochs: invalid int value: 'zero'" in capsys.readouterr().err
    )


# The run options as the README and users write them (each a RunConfig field).
RUN_OPTIONS = {
    "--data",
    "--data-path",
    "--limit-rows",
    "--model",
    "--experts",
    "--expert-units",
    "--expert-kind",
    "--expert-dropout",
    "--alpha",
    "--mode",
    "--tower-units",
    "--tower-dropout",
    "--optimization",
    "--learning-rate",
    "--weight-decay",
    "--batch-size",
    "--epochs",
    "--seed",
    "--non-finite",
    "--steps-per-execution",
    "--jit-compile",
    "--output",
}


def run_option_flags(exclude=()):
    parser = argparse.ArgumentParser(add_help=False)
    options.add_run_options(parser, exclude)
    return {action.option_strings[0] for action in parser._actions}


def test_every_run_config_field_but_mappings_is_an_option():
    fields = dataclasses.fields(RunConfig)
    expected = {
        "--" + field.name.replace("_", "-")
        for field in fields
        if not isinstance(getattr(RunConfig(), field.name), dict)
    }
    assert run_option_flags() == expected
    assert RUN_OPTIONS <= expected
    assert run_option_flags(exclude=("output",)) == expected - {"--output"}


def test_run_options_parse_lists_booleans_and_numbers(tmp_path):
    parser = cli_main_module().build_parser()
    args = parser.parse_args(
        ["train", "--expert-units", "8", "4", "--tower-units", "--no-jit-compile"]
        + ["--learning-rate", "0.01", "--data-path", "p", "--seed", "3"]
    )
    assert options.given_run_options(args) == {
        "expert_units": [8, 4],
        "tower_units": [],
        "jit_compile": False,
        "learning_rate": 0.01,
        "data_path": "p",
        "seed": 3,
    }
    file = write_config(tmp_path / "c.yaml", {"seed": 1, "epochs": 2, "maml": {}})
    args = parser.parse_args(["train", "--config", str(file), "--jit-compile"])
    config = options.run_config(args)
    assert (config.seed, config.epochs, config.jit_compile) == (1, 2, True)
    assert parser.parse_args(["train"]).__dict__.keys().isdisjoint(options.CONFIG_KEYS)


def test_train_starts_from_the_data_set_recipe(tmp_path):
    parser = cli_main_module().build_parser()
    recipe = read_config_file(RECIPES / "tox21.yaml")

    def resolve(*argv):
        return options.run_config(parser.parse_args(["train", *argv]))

    config = resolve("--data", "tox21")
    assert config.expert_units == tuple(recipe["expert_units"])
    assert config.epochs == recipe["epochs"] != RunConfig.epochs
    # options and the config file override the recipe; --no-recipe drops it
    assert resolve("--data", "tox21", "--epochs", "3").epochs == 3
    file = write_config(tmp_path / "c.yaml", {"data": "tox21", "epochs": 2})
    assert resolve("--config", str(file)).epochs == 2
    assert resolve("--config", str(file)).expert_units == config.expert_units
    assert resolve("--data", "tox21", "--no-recipe") == RunConfig(data="tox21")
    # a data set without a recipe trains from the defaults
    assert resolve("--data", "synthetic") == RunConfig(data="synthetic")


def test_a_field_without_metadata_gets_an_option_from_its_name_and_type():
    @dataclasses.dataclass
    class Fields:
        warmup_epochs: int | None = None
        label_smoothing: float = 0.1
        shuffle_rows: bool = True
        task_names: tuple[str, ...] = ("a", "b")
        extra: dict = dataclasses.field(default_factory=dict)

    made = {f.name: options.option_arguments(f) for f in dataclasses.fields(Fields)}
    assert made["warmup_epochs"] == {
        "help": "warmup epochs",
        "metavar": "N",
        "type": int,
    }
    assert made["label_smoothing"]["type"] is float
    assert made["label_smoothing"]["help"] == "label smoothing (0.1)"
    assert made["shuffle_rows"]["action"] is argparse.BooleanOptionalAction
    assert made["task_names"]["nargs"] == "+" and "type" not in made["task_names"]
    assert made["task_names"]["help"] == "task names (a b)"
    assert made["extra"] is None


def cli_main_module():
    return importlib.import_module("mmoeex_tf.cli.main")


def test_help_lists_every_command_and_its_usage(capsys):
    module = cli_main_module()
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in module.COMMANDS:
        name = command.__name__.rsplit(".", 1)[-1]
        assert f"\n    {name} " in out or f"\n    {name}\n" in out, name
        for line in command.USAGE:
            assert line.startswith(f"mmoeex {name} ")
            assert line in out and line in module.__doc__


# Importing the command and writing reports must not switch matplotlib's
# backend (a user's interactive one stays) nor need a display.
BACKEND_CHECK = """
import pathlib
import sys

import matplotlib

matplotlib.use("svg")
import numpy as np

import mmoeex_tf.cli
from mmoeex_tf.analysis.grouping import TaskGrouping
from mmoeex_tf.analysis.plots import plot_heatmap
from mmoeex_tf.runs.grouping_report import GroupingComparison, write_report

folder = pathlib.Path(sys.argv[1])
grouping = TaskGrouping(["a", "b", "c"], [["a", "c"], ["b"]], np.eye(3))
scores = {"all-in-one": {"a": 0.7, "b": 0.6, "c": 0.8}}
write_report(GroupingComparison(scores, {"all-in-one": 1.0}, grouping, {}), folder)
plot_heatmap(np.eye(2), folder / "heatmap.png")
print(matplotlib.get_backend())
"""


def test_cli_and_reports_leave_the_matplotlib_backend_alone(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MPLBACKEND", None)
    result = subprocess.run(
        [sys.executable, "-c", BACKEND_CHECK, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "svg"
    for png in ("similarity.png", "heatmap.png"):
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")
