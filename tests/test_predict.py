"""`mmoeex predict`: one row per input row, in the targets' labels, written
whole or not at all; and its bad input."""

import numpy as np
import pandas as pd
import pytest

import mmoeex_tf as mt
from mmoeex_tf import datasets
from mmoeex_tf.cli import main
from mmoeex_tf.cli.predict import prediction_columns
from mmoeex_tf.datasets import MultiTaskData, load_synthetic


def assert_failed(capsys, code, fragment):
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert fragment in err, err


def saved_model(data, path):
    """An untrained model of a data set's tasks, saved: predictions are plumbing."""
    model = mt.MMoEExModel(data.tasks, mt.DenseExperts(2, 4), tower_units=())
    model.build((None, data.x["train"].shape[1]))
    model.save(path)
    return model


@pytest.fixture
def synthetic_file(tmp_path):
    saved_model(load_synthetic(), tmp_path / "synthetic.keras")
    return str(tmp_path / "synthetic.keras")


def shuffled_rows_data():
    """A small data set keeping its file's row numbers, as census3 does."""
    rng = np.random.default_rng(0)
    rows = rng.permutation(90)
    rows = {"train": rows[:60], "val": rows[60:75], "test": rows[75:]}
    tasks = (mt.Task("income", "binary"), mt.Task("marital", "binary"))
    x = {s: rng.normal(size=(len(r), 5)).astype(np.float32) for s, r in rows.items()}
    y = {
        s: {t.name: np.zeros(len(r), np.float32) for t in tasks}
        for s, r in rows.items()
    }
    return MultiTaskData("census3", tasks, x, y, list("abcde"), info={"rows": rows})


def test_predict_writes_a_row_per_example_in_the_file_order(tmp_path, monkeypatch):
    data = shuffled_rows_data()
    monkeypatch.setattr(datasets, "load", lambda name, **kwargs: data)
    model = saved_model(data, tmp_path / "census.keras")
    output = tmp_path / "out" / "test.csv"
    args = ["predict", str(tmp_path / "census.keras"), "--data", "census3"]
    assert main([*args, "--split", "test", "--output", str(output)]) == 0
    got = pd.read_csv(output)
    names = [task.name for task in data.tasks]
    assert list(got.columns) == [
        "row",
        *(c for name in names for c in (name, f"{name}_probability")),
    ]
    order = np.argsort(data.info["rows"]["test"])
    assert list(got["row"]) == sorted(data.info["rows"]["test"])
    expected = model.predict(data.x["test"], verbose=0)
    for name in names:
        probability = expected[name][order]
        np.testing.assert_allclose(got[f"{name}_probability"], probability, atol=1e-6)
        np.testing.assert_array_equal(got[name], (probability >= 0.5).astype(int))
    assert main([*args, "--output", str(output)]) == 0  # every row
    assert list(pd.read_csv(output)["row"]) == list(range(90))


def test_every_row_of_a_data_set_without_row_numbers(synthetic_file, tmp_path):
    output = tmp_path / "all.csv"
    assert (
        main(
            ["predict", synthetic_file, "--data", "synthetic", "--output", str(output)]
        )
        == 0
    )
    got = pd.read_csv(output)
    assert list(got.columns) == ["row", "y1", "y2"]
    assert list(got["row"]) == list(range(12000))


def test_prediction_columns_of_every_kind_and_per_step_tasks():
    tasks = [
        mt.Task("sick", "binary"),
        mt.Task("kind", "multiclass", output_size=3),
        mt.Task("tags", "multilabel", output_size=2),
        mt.Task("size", "regression", output_size=2),
        mt.Task("alarm", "binary", per_step=True),
    ]

    class Model:  # what prediction_columns reads of a model
        def __init__(self):
            self.tasks = tasks
            self.targets = {"kind": {"classes": ["a", "b", "c"]}}

    outputs = {
        "sick": np.array([0.2, 0.7]),
        "kind": np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]),
        "tags": np.array([[0.9, 0.6], [0.1, 0.2]]),
        "size": np.array([[1.5, -2.0], [0.0, 3.0]]),
        "alarm": np.array([[0.1, 0.9], [0.6, 0.4]]),
    }
    columns = {k: list(v) for k, v in prediction_columns(Model(), outputs).items()}
    assert columns == {
        "sick": [0, 1],
        "sick_probability": [0.2, 0.7],
        "kind": ["b", "a"],
        "kind=a": [0.1, 0.5],
        "kind=b": [0.6, 0.2],
        "kind=c": [0.3, 0.3],
        "tags": ["0|1", ""],
        "tags=0": [0.9, 0.1],
        "tags=1": [0.6, 0.2],
        "size_0": [1.5, 0.0],
        "size_1": [-2.0, 3.0],
        "alarm@1": [0, 1],
        "alarm_probability@1": [0.1, 0.6],
        "alarm@2": [1, 0],
        "alarm_probability@2": [0.9, 0.4],
    }


def test_a_failed_write_leaves_no_file(synthetic_file, tmp_path, monkeypatch, capsys):
    def dies_midway(self, path, **kwargs):
        pd.io.common.Path(path).write_text("row,income\n0,")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", dies_midway)
    output = tmp_path / "p.csv"
    args = ["predict", synthetic_file, "--data", "synthetic", "--split", "val"]
    assert_failed(capsys, main([*args, "--output", str(output)]), "disk full")
    assert list(tmp_path.iterdir()) == [tmp_path / "synthetic.keras"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--data", "synthetic", "--output", "."], "is a folder"),
        (
            ["--data", "table", "--data-path", "t.csv", "--output", "p.csv"],
            "not trained on a table",
        ),
        (
            ["--data", "synthetic", "--output", "p.csv", "--split", "dev"],
            "invalid choice: 'dev'",
        ),
        (["--data", "synthetic"], "the following arguments are required: --output"),
        (
            ["--data", "synthetic", "--smiles-column", "s", "--output", "p.csv"],
            "cannot be loaded with",
        ),
    ],
)
def test_bad_input_is_one_error_line(
    synthetic_file, tmp_path, monkeypatch, capsys, args, fragment
):
    monkeypatch.chdir(tmp_path)
    assert_failed(capsys, main(["predict", synthetic_file, *args]), fragment)
    assert not (tmp_path / "p.csv").exists()
