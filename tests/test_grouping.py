import keras
import numpy as np
import pandas as pd
import pytest

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError, Task
from mmoeex_tf.analysis.grouping import (
    cluster_tasks,
    group_tasks,
    head_weights,
    task_similarity,
)
from mmoeex_tf.models.grouped import GroupedModel, fit_grouped

FAMILIES, PER_FAMILY, FEATURES = 3, 4, 20


def planted_tasks(rows=3000, seed=0):
    """Binary tasks from 3 latent families: near-copies of a family direction."""
    rng = np.random.default_rng(seed)
    directions = np.linalg.qr(rng.normal(size=(FEATURES, FAMILIES)))[0].T
    x = rng.normal(size=(rows, FEATURES)).astype("float32")
    y, family_of = {}, {}
    for f in range(FAMILIES):
        for k in range(PER_FAMILY):
            w = directions[f] + 0.1 * rng.normal(size=FEATURES)
            name = f"task_{f}_{k}"
            y[name] = (x @ w > 0).astype("float32")
            family_of[name] = f
    return x, y, family_of


def test_similarity_and_clustering_by_hand():
    weights = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    similarity = task_similarity(weights)
    np.testing.assert_allclose(similarity[0, 1], 2 / np.hypot(2, 0.1))
    np.testing.assert_allclose(np.diag(similarity), 1.0)
    assert cluster_tasks(similarity, 2) == [[0, 1], [2, 3]]
    centred = task_similarity([[1.0, 2.0, 3.0], [2.0, 4.0, 6.5]], "correlation")
    np.testing.assert_allclose(centred[0, 1], np.corrcoef([1, 2, 3], [2, 4, 6.5])[0, 1])
    with pytest.raises(MMoEExError, match="num_groups"):
        cluster_tasks(similarity, 5)


def test_grouping_recovers_planted_families():
    x, y, family_of = planted_tasks()
    tasks = [Task(name, "binary") for name in y]
    joint = mt.shared_bottom(tasks, [16], tower_units=[])
    joint.compile(optimizer=keras.optimizers.Adam(1e-2))
    joint.fit(x, y, epochs=10, batch_size=256, verbose=0)
    grouping = group_tasks(joint, FAMILIES)
    found = sorted(
        sorted(family_of[name] for name in group) for group in grouping.groups
    )
    assert found == [[f] * PER_FAMILY for f in range(FAMILIES)]
    assert grouping.similarity.shape == (12, 12)
    families = np.array([family_of[name] for name in y])
    same = families[:, None] == families[None, :]
    off_diagonal = ~np.eye(len(families), dtype=bool)
    within = grouping.similarity[same & off_diagonal]
    between = grouping.similarity[~same]
    assert within.mean() > between.mean() + 0.5


def test_grouping_needs_linear_heads():
    model = mt.shared_bottom([Task("a", "binary"), Task("b", "binary")], [4])
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(MMoEExError, match="tower_units=\\[\\]"):
        head_weights(model)


def test_grouped_model_keeps_task_order_and_round_trips(tmp_path):
    x, y, _ = planted_tasks(rows=600)
    tasks = [Task(name, "binary") for name in y]
    joint = mt.shared_bottom(tasks, [8], tower_units=[])
    joint(x[:1])
    grouping = group_tasks(joint, 3)

    def build(group_tasks):
        model = mt.MMoEExModel(group_tasks, mt.DenseExperts(2, 8), tower_units=[4])
        model.compile(optimizer="adam")
        return model

    y_missing = {k: v.copy() for k, v in y.items()}
    y_missing["task_0_0"][::2] = np.nan
    grouped, histories = fit_grouped(
        grouping,
        tasks,
        build,
        x,
        y_missing,
        epochs=1,
        verbose=0,
        validation_data=(x, y_missing),
    )
    assert all(np.isfinite(h.history["val_loss"]).all() for h in histories)
    outputs = grouped.predict(x, verbose=0)
    assert list(outputs) == list(y)
    path = tmp_path / "grouped.keras"
    grouped.save(path)
    loaded = keras.saving.load_model(path)
    reloaded = loaded.predict(x, verbose=0)
    assert list(reloaded) == list(y)
    for name in y:
        np.testing.assert_array_equal(reloaded[name], outputs[name])
    with pytest.raises(MMoEExError, match="exactly one member"):
        GroupedModel(grouped.members[:1], list(y))


def test_group_command_compares_settings(tmp_path, shared_data):
    from mmoeex_tf.cli import main

    output = tmp_path / "grouping"
    code = main(
        [
            "group",
            "--data",
            "tox21",
            "--data-path",
            str(shared_data / "moleculenet" / "tox21.csv"),
            "--limit-rows",
            "1500",
            "--epochs",
            "2",
            "--experts",
            "2",
            "--expert-units",
            "8",
            "--groups",
            "2",
            "3",
            "--single-task",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    assert {p.name for p in output.iterdir()} == {
        "summary.csv",
        "task_scores.csv",
        "groups.txt",
        "similarity.png",
    }
    summary = pd.read_csv(output / "summary.csv")
    assert summary["setting"].iloc[0] == "all-in-one"
    assert summary["setting"].iloc[2] == "single-task"
    assert summary["tasks scored"].tolist() == [12, 12, 12]
    groups = (output / "groups.txt").read_text().splitlines()
    assert len(groups) in (2, 3)
    assert sorted(n for line in groups for n in line.split(", ")) == sorted(
        pd.read_csv(output / "task_scores.csv", index_col=0).index
    )
