import argparse

import keras_tuner as kt
import numpy as np
import pytest

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError
from mmoeex_tf.analysis.scores import validation_score
from mmoeex_tf.cli import tune as tune_command
from mmoeex_tf.integrations.tuning import MMoEExHyperModel, make_tuner, objective
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.training.maml import MAMLMTL

RNG = np.random.default_rng(2)
X = RNG.normal(size=(192, 6)).astype("float32")
Y = {"flag": (X[:, 0] > 0).astype("float32"), "value": 2 * X[:, 1] + X[:, 2]}
TRAIN, VAL = slice(0, 128), slice(128, None)
TASKS = [mt.Task("flag", "binary"), mt.Task("value", "regression")]


def _split(rows):
    return X[rows], {task: labels[rows] for task, labels in Y.items()}


def _small_space(optimization=None):
    """Narrows the space so that trials train in a second."""
    hp = kt.HyperParameters()
    hp.Choice("experts", [2, 4])
    hp.Fixed("expert_units", 8)
    hp.Fixed("tower_units", 8)
    if optimization:
        hp.Fixed("optimization", optimization)
    return hp


def test_search_space_covers_the_model_and_maml_settings():
    hypermodel = MMoEExHyperModel(TASKS, (6,))
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    assert {p.name for p in hp.space} == {
        "experts",
        "expert_units",
        "alpha",
        "mode",
        "tower_units",
        "learning_rate",
        "optimization",
        "inner_lr",
        "maml_order",
    }
    assert model.built and model.optimizer.built
    assert model.mixture.num_experts == hp.get("experts")
    hp = kt.HyperParameters()
    hp.Fixed("optimization", "maml")
    hp.Fixed("inner_lr", 0.01)
    hp.Fixed("maml_order", 1)
    hp.Fixed("alpha", 0.5)
    model = hypermodel.build(hp)
    assert isinstance(model.optimization, MAMLMTL)
    assert (model.optimization.inner_lr, model.optimization.order) == (0.01, 1)
    assert model.get_config()["alpha"] == 0.5
    joint_only = MMoEExHyperModel(TASKS, (6,), optimizations=("joint",))
    hp = kt.HyperParameters()
    joint_only.build(hp)
    assert "inner_lr" not in {p.name for p in hp.space}
    with pytest.raises(MMoEExError, match="optimizations"):
        MMoEExHyperModel(TASKS, (6,), optimizations=("sgd",))


@pytest.mark.parametrize(
    ("task", "metric", "name", "direction"),
    [
        ("flag", None, "val_flag_auc", "max"),
        ("flag", "loss", "val_flag_loss", "min"),
        ("value", None, "val_value_mae", "min"),
        ("value", "rmse", "val_value_rmse", "min"),
        ("grade", "accuracy", "val_grade_accuracy", "max"),
        ("grade", None, "val_grade_kappa", "max"),
        (None, None, "val_mean_score", "max"),
        (None, "auc", "val_mean_auc", "max"),
        (None, "loss", "val_mean_loss", "min"),
        (None, "mae", "val_mean_mae", "min"),
    ],
)
def test_objective_names_the_logged_metric_with_its_direction(
    task, metric, name, direction
):
    tasks = [*TASKS, mt.Task("grade", "multiclass", output_size=3)]
    assert objective(tasks, task, metric) == kt.Objective(name, direction)


def test_objective_refuses_unknown_tasks_and_metrics():
    with pytest.raises(MMoEExError, match="not one of the tasks"):
        objective(TASKS, "nope")
    with pytest.raises(MMoEExError, match="not 'kappa'"):
        objective(TASKS, "flag", "kappa")
    with pytest.raises(MMoEExError, match="No task logs metric"):
        objective(TASKS, None, "kappa")


@pytest.mark.parametrize(
    ("kind", "task", "space", "options"),
    [
        ("random", "flag", _small_space(), {}),
        ("bayesian", None, _small_space("maml"), {"num_initial_points": 1}),
        ("hyperband", "value", _small_space("joint"), {}),
    ],
)
def test_tiny_search_reloads_the_best_model(kind, task, space, options, tmp_path):
    hypermodel = MMoEExHyperModel(TASKS, (6,), objective_task=task)
    tuner = make_tuner(
        kind,
        hypermodel,
        max_trials=2,
        max_epochs=2,
        directory=tmp_path,
        seed=1,
        hyperparameters=space,
        **options,
    )
    tuner.search(
        *_split(TRAIN), validation_data=_split(VAL), epochs=2, batch_size=64, verbose=0
    )
    assert len(tuner.oracle.trials) >= 2
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best = tuner.get_best_models(1)[0]
    predictions = best.predict(X[VAL], verbose=0)
    assert {k: v.shape for k, v in predictions.items()} == {
        "flag": (64,),
        "value": (64,),
    }
    # The reloaded weights are those of the best epoch: they score the
    # trial's objective value again.
    logs = best.evaluate(*_split(VAL), batch_size=64, verbose=0, return_dict=True)
    logs = {f"val_{key}": value for key, value in logs.items()}
    if task is None:
        trivial = best.task_scaling.trivial_scores()
        logs["val_mean_score"] = validation_score(TASKS, logs, trivial)
    assert logs[hypermodel.objective.name] == pytest.approx(best_trial.score, abs=1e-5)


def test_tune_command_searches_a_data_set_and_exports_the_best(tmp_path, capsys):
    config = RunConfig(
        data="synthetic",
        data_options={"sizes": [128, 64, 64], "num_features": 6},
        epochs=1,
        batch_size=64,
    )
    parser = argparse.ArgumentParser()
    tune_command.add_arguments(parser)
    args = parser.parse_args(
        [
            "--max-trials",
            "1",
            "--objective-metric",
            "rmse",
            "--search-dir",
            str(tmp_path / "search"),
            "--base-dir",
            str(tmp_path / "models"),
        ]
    )
    assert tune_command.tune(config, args) == 0
    assert (tmp_path / "models" / "synthetic" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "search" / "synthetic" / "best_model.keras").is_file()
    printed = capsys.readouterr().out
    assert "Best val_mean_rmse:" in printed and "learning_rate:" in printed


def test_trials_place_the_bins_of_summary_experts_on_the_train_inputs():
    sequences = RNG.normal(size=(16, 5, 3)).astype("float32")
    labels = {"flag": (sequences[:, -1, 0] > 0).astype("float32")}
    labels["value"] = sequences[:, :, 1].max(axis=1)
    hypermodel = MMoEExHyperModel(
        TASKS,
        (5, 3),
        base_config=RunConfig(expert_kind="summary", expert_bins=2),
        optimizations=("joint",),
        train_labels=labels,
        train_inputs=sequences,
    )
    experts = hypermodel.build(_small_space()).mixture.experts
    reference = mt.SummaryExperts(2, 4, bins=2)
    reference.adapt(sequences)
    np.testing.assert_array_equal(experts.edges.numpy(), reference.edges.numpy())
