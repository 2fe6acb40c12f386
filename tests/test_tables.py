"""Your own tables: from_dataframe / from_file, the encoder inside the model,
`mmoeex train --data table`, and raw-row serving of the export."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError
from mmoeex_tf.cli import main
from mmoeex_tf.datasets import (
    TableModel,
    from_dataframe,
    from_file,
    load,
)
from mmoeex_tf.datasets.table_encoder import bins_per_column
from mmoeex_tf.integrations.export import export_saved_model

SCRIPT = Path(__file__).parent / "scripts" / "serve_table_rows.py"
TARGETS = {
    "income": "binary",
    "occupation": "multiclass",
    "tags": "multilabel",
    "hours per week": "regression",
}


def make_frame(rows=240, seed=0):
    """Strings with spaces and `?`, numbers, booleans, gaps; four targets."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    age[::9] = np.nan
    frame = pd.DataFrame(
        {
            "person": [f"p{i}" for i in range(rows)],
            "age": age,
            "job": rng.choice([" clerk", "nurse ", "pilot", "?"], rows),
            "union": rng.choice([True, False], rows),
            "hours per week": rng.normal(40, 8, rows).round(1),
            "income": rng.choice(["<=50K", ">50K"], rows, p=[0.75, 0.25]),
            "occupation": rng.choice(["sales", "tech", "craft"], rows),
            "tags": rng.choice(["red|blue", "blue", "green", "green|red"], rows),
        }
    )
    frame.loc[::6, "income"] = None
    frame.loc[::11, "hours per week"] = np.nan
    frame.loc[::13, "tags"] = None
    return frame


def table(frame=None, targets=TARGETS, **kwargs):
    kwargs.setdefault("na_values", ["?"])
    kwargs.setdefault("id_columns", ["person"])
    return from_dataframe(make_frame() if frame is None else frame, targets, **kwargs)


def assert_same_data(one, other):
    assert one.feature_names == other.feature_names
    assert [t.get_config() for t in one.tasks] == [t.get_config() for t in other.tasks]
    assert one.targets == other.targets
    for split in ("train", "val", "test"):
        np.testing.assert_allclose(one.x[split], other.x[split], atol=1e-6)
        for task, labels in one.y[split].items():
            np.testing.assert_array_equal(labels, other.y[split][task])


def test_from_dataframe_encodes_every_column_kind_and_keeps_missing_labels():
    data = table()
    tasks = {task.name: task for task in data.tasks}
    assert {n: t.kind for n, t in tasks.items()} == {
        "income": "binary",
        "occupation": "multiclass",
        "tags": "multilabel",
        "hours_per_week": "regression",
    }
    assert data.label_columns["hours_per_week"] == "hours per week"
    assert data.targets["income"] == {
        "column": "income",
        "positive": ">50K",
        "negative": "<=50K",
        "chosen": True,
    }
    assert data.targets["hours_per_week"] == {"column": "hours per week"}
    assert data.targets["occupation"]["classes"] == ["craft", "sales", "tech"]
    assert data.targets["tags"]["classes"] == ["blue", "green", "red"]
    # Spaces stripped, `?` a missing value, numbers with a missing indicator.
    assert data.feature_names[:2] == ["age", "age=missing"]
    jobs = sorted(n for n in data.feature_names if n.startswith("job="))
    assert jobs == ["job=(missing)", "job=[UNK]", "job=clerk", "job=nurse", "job=pilot"]
    assert "union" in data.feature_names and "person" not in str(data.feature_names)
    for split in ("train", "val", "test"):
        assert np.isfinite(data.x[split]).all()
        assert data.x[split].shape[1] == len(data.feature_names)
    labels = np.concatenate([data.y[s]["income"] for s in ("train", "val", "test")])
    assert np.isnan(labels).sum() == 40 and set(labels[~np.isnan(labels)]) == {0, 1}
    assert data.y["train"]["tags"].shape[1] == 3
    assert "positive value '>50K' (the less frequent value)" in data.summary()
    # The train split alone sets the statistics: the normalised age has mean 0.
    train_age = data.x["train"][:, 0][data.x["train"][:, 1] == 0]
    assert abs(train_age.mean()) < 1e-5


def test_a_regression_target_may_be_trained_on_the_absolute_error():
    data = table(numeric_bins=0)
    targets = {**TARGETS, "hours per week": "regression:absolute_error"}
    median = table(make_frame(), numeric_bins=0, targets=targets)
    tasks = {task.name: task for task in median.tasks}
    assert tasks["hours_per_week"].regression_loss == "absolute_error"
    assert {t.regression_loss for t in data.tasks} == {"squared_error"}
    np.testing.assert_array_equal(median.x["train"], data.x["train"])


def test_csv_parquet_and_dataframe_give_the_same_data(tmp_path):
    frame = make_frame()
    expected = table(frame)
    csv = tmp_path / "people.csv.gz"
    frame.to_csv(csv, sep=";", index=False)
    assert_same_data(
        from_file(csv, TARGETS, na_values=["?"], id_columns=["person"]), expected
    )
    pytest.importorskip("pyarrow")
    for path, write in (
        (tmp_path / "people.parquet", frame.to_parquet),
        (tmp_path / "people.feather", frame.to_feather),
    ):
        write(path)
        got = from_file(path, TARGETS, na_values=["?"], id_columns=["person"])
        assert got.name == "people"
        assert_same_data(got, expected)


def test_a_split_column_and_the_positive_value_are_honoured():
    frame = make_frame()
    frame["part"] = np.where(np.arange(len(frame)) % 5 == 0, "test", "train")
    frame.loc[1::10, "part"] = " VAL "
    data = from_dataframe(
        frame,
        {"income": "binary:<=50K", "age": "regression"},
        id_columns=["person"],
        split="part",
    )
    assert [len(data.x[s]) for s in ("train", "val", "test")] == [168, 24, 48]
    assert data.targets["income"]["positive"] == "<=50K"
    assert data.targets["income"]["negative"] == ">50K"
    assert data.targets["income"]["chosen"] is False
    assert "part" not in str(data.feature_names)


def test_an_id_like_column_used_as_a_feature_is_warned_about():
    with pytest.warns(UserWarning, match="'person' has a different value on every row"):
        from_dataframe(make_frame(), {"income": "binary"})


@pytest.mark.parametrize(
    ("targets", "change", "message"),
    [
        ({"incme": "binary"}, None, "no column 'incme'; did you mean 'income'"),
        ({"job": "regression"}, None, "'job' is declared regression"),
        ({"income": "binary"}, ("income", ">50K"), "'income' (binary) has 1 distinct"),
        ({"occupation": "binary"}, None, "'occupation' is declared binary but has 3"),
        ({"income": "binary:rich"}, None, "positive value 'rich' is not one of"),
        ({"income": "ordinal"}, None, "kind must be one of"),
        ({"age": "regression:huber"}, None, "'age': a regression target's loss"),
        ({"occupation": "multiclass:sales"}, None, "only a binary target takes"),
        ({"income": "binary"}, ("age", "abc"), "'age' mixes numbers and text"),
    ],
)
def test_bad_targets_and_columns_are_named(targets, change, message):
    frame = make_frame()
    if change is not None:
        column, value = change
        frame[column] = frame[column].astype(object)
        frame.loc[3 if column == "age" else slice(None), column] = value
    with pytest.raises(
        MMoEExError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        from_dataframe(frame, targets, id_columns=["person"])


def test_bad_files_and_splits_are_named(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    with pytest.raises(MMoEExError, match="empty.csv' has no rows"):
        from_file(empty, {"a": "binary"})
    with pytest.raises(MMoEExError, match="does not exist"):
        from_file(tmp_path / "nope.csv", {"a": "binary"})
    frame = make_frame()
    frame["part"] = "training"
    with pytest.raises(MMoEExError, match="Split column 'part' must hold"):
        from_dataframe(frame, {"income": "binary"}, id_columns=["person"], split="part")
    with pytest.raises(MMoEExError, match="table data set needs targets"):
        load("table", path=str(empty))


def test_unseen_categories_go_to_the_oov_bucket_and_are_counted():
    data = table()
    frame = make_frame(seed=1)
    frame.loc[:4, "job"] = "astronaut"
    with pytest.warns(
        UserWarning, match="'job': 5 value.*'astronaut'.*out-of-vocabulary"
    ):
        new = table(frame, encoder=data.encoder)
    assert new.info["unseen"] == {"job": 5}
    assert new.feature_names == data.feature_names
    oov = data.feature_names.index("job=[UNK]")
    rows = np.concatenate([new.info["rows"][s] for s in ("train", "val", "test")])
    x = np.concatenate([new.x[s] for s in ("train", "val", "test")])
    assert (x[np.isin(rows, range(5)), oov] == 1).all()


def trained_table_model(data):
    keras.utils.set_random_seed(0)
    model = mt.MMoEExModel(
        data.tasks, mt.DenseExperts(3, 8), alpha=0.5, tower_units=(4,)
    )
    model.build((None, data.x["train"].shape[1]))
    model.compile(keras.optimizers.AdamW(1e-2))
    model.adapt(data.y["train"])
    model.fit(data.tf_dataset("train", 64), epochs=2, verbose=0)
    return model, TableModel.from_model(model, data.encoder, data.targets)


def test_numeric_bins_follow_a_number_column_with_its_piecewise_linear_encoding():
    data = table(numeric_bins=4)
    train = data.raw["train"]["age"]
    present = train[~np.isnan(train)]
    edges = np.quantile(present, [0.0, 0.25, 0.5, 0.75, 1.0])
    assert len(np.unique(edges)) == 5
    start = data.feature_names.index("age=missing") + 1
    assert data.feature_names[start - 2 : start + 4] == [
        "age",
        "age=missing",
        *(f"age in [{low:g}, {high:g})" for low, high in zip(edges, edges[1:])),
    ]
    # A 0/1 column is its own encoding: it gets no bins.
    assert not [name for name in data.feature_names if name.startswith("union in")]
    assert len(data.feature_names) == len(table(numeric_bins=0).feature_names) + 4
    for split in ("train", "val", "test"):
        age = data.raw[split]["age"]
        filled = np.where(np.isnan(age), present.mean(), age)  # missing: the mean
        expected = np.clip((filled[:, None] - edges[:-1]) / np.diff(edges), 0, 1)
        np.testing.assert_allclose(
            data.x[split][:, start : start + 4], expected, atol=1e-6
        )
    # The edges are in the encoder's config: a copy encodes the same features.
    copy = type(data.encoder).from_config(data.encoder.get_config())
    raw = {name: tf.constant(values) for name, values in data.raw["test"].items()}
    np.testing.assert_array_equal(copy(raw), data.x["test"])


def test_automatic_bins_are_64_per_column_and_4096_in_all():
    assert [bins_per_column("auto", n) for n in (0, 1, 9, 64, 100, 2048, 3000)] == [
        64,
        64,
        64,
        64,
        40,
        2,
        0,
    ]
    assert bins_per_column(7, 3000) == 7 and bins_per_column(0, 1) == 0
    with pytest.raises(MMoEExError, match="numeric_bins must be an integer >= 0"):
        table(numeric_bins=-2)
    # The default: age, the one number column with more than two values,
    # gets the distinct ones of its 65 train quantiles as edges.
    data = table()
    train = data.raw["train"]["age"]
    edges = np.unique(np.quantile(train[~np.isnan(train)], np.linspace(0, 1, 65)))
    bins = [name for name in data.feature_names if " in [" in name]
    assert len(bins) == len(edges) - 1 > 32
    assert all(name.startswith("age in [") for name in bins)


@pytest.mark.parametrize("numeric_bins", [0, 4])
def test_raw_rows_predict_what_the_encoded_arrays_predict(tmp_path, numeric_bins):
    data = table(numeric_bins=numeric_bins)
    model, table_model = trained_table_model(data)
    expected = model.predict(data.x["test"], verbose=0)
    raw = {name: tf.constant(values) for name, values in data.raw["test"].items()}
    got = table_model.predict_labels(raw)
    classes = np.array(data.targets["occupation"]["classes"])
    for task in model.task_names:
        want = expected[task]
        key = task + "_probabilities" if task == "occupation" else task
        np.testing.assert_allclose(got[key], want, atol=1e-6)
    np.testing.assert_array_equal(
        got["occupation"].numpy().astype(str),
        classes[expected["occupation"].argmax(-1)],
    )
    assert float(np.std(got["hours_per_week"])) > 0  # regression in hours
    table_model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded, TableModel)
    for key, values in loaded.predict_labels(raw).items():
        np.testing.assert_array_equal(np.asarray(values), np.asarray(got[key]))
    # The pipeline with the encoder in a tf.data map feeds the same features.
    x, _ = next(iter(data.raw_dataset("test", batch_size=len(data.x["test"]))))
    np.testing.assert_allclose(x, data.x["test"], atol=1e-6)
    # Encoded once and cached, then shuffled: the batches of the arrays.
    raw_batches = data.raw_dataset("train", 64, shuffle=True, seed=3)
    batches = data.tf_dataset("train", 64, shuffle=True, seed=3)
    assert raw_batches.cardinality() == batches.cardinality() == 3
    for (raw_x, raw_y), (x, y) in zip(raw_batches, batches):
        np.testing.assert_allclose(raw_x, x, atol=1e-6)
        np.testing.assert_array_equal(raw_y["income"], y["income"])
    streamed, _ = next(iter(data.raw_dataset("test", 1000, cache=False)))
    np.testing.assert_allclose(streamed, data.x["test"], atol=1e-6)


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """One tiny `mmoeex train --data table` run; returns (folder, frame)."""
    root = tmp_path_factory.mktemp("table")
    frame = make_frame()
    frame.to_csv(root / "people.csv", index=False)
    config = root / "run.yaml"
    config.write_text(
        f"data: table\ndata_path: {root / 'people.csv'}\nid_column: person\n"
    )
    keras.utils.set_random_seed(0)
    args = ["train", "--config", str(config), "--na-values", "?", "--epochs", "2"]
    args += ["--target", "income:binary:>50K", "occupation:multiclass", "--target"]
    args += ["tags:multilabel", "--target", "hours per week:regression"]
    args += ["--numeric-bins", "4"]  # the bins' edges travel in the export
    args += [
        "--experts",
        "3",
        "--batch-size",
        "64",
        "-q",
        "--output",
        str(root / "run"),
    ]
    assert main(args) == 0
    return root / "run", frame


def test_train_command_on_a_table_writes_a_raw_row_model(table_run):
    folder, _ = table_run
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["metrics"]["test"]) == {
        "income",
        "occupation",
        "tags",
        "hours_per_week",
    }
    model = keras.saving.load_model(folder / "model.keras")
    assert isinstance(model, TableModel)
    assert model.encoder.input_names == ["age", "job", "union"]
    assert model.targets["income"]["positive"] == ">50K"


def test_exported_table_model_answers_raw_rows_without_mmoeex_tf(table_run, tmp_path):
    folder, frame = table_run
    model = keras.saving.load_model(folder / "model.keras")
    path = export_saved_model(model, "people", base_dir=tmp_path)
    rows = frame.head(12)
    instances = [
        {
            "age": "NaN" if pd.isna(row.age) else row.age,
            "job": row.job,  # untrimmed, `?` for missing: the model cleans it
            "union": float(row.union),
        }
        for row in rows.itertuples()
    ]
    instances[0]["job"] = "astronaut"  # unseen: the out-of-vocabulary bucket
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"signature_name": "serving_default", "instances": instances})
    )
    environment = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    response = tmp_path / "response.json"
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), str(request), str(response)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(response.read_text())["predictions"]
    raw = {
        "age": tf.constant(rows["age"].to_numpy(np.float32)),
        "job": tf.constant(["astronaut", *rows["job"].iloc[1:]]),
        "union": tf.constant(rows["union"].to_numpy(np.float32)),
    }
    expected = model.predict_labels(raw)
    assert sorted(served[0]) == sorted(model.output_names_for_labels())
    for name, values in expected.items():
        got = [row[name] for row in served]
        if name == "occupation":
            assert got == [v.decode() for v in values.numpy()]
        else:
            np.testing.assert_allclose(np.array(got, np.float32), values, atol=1e-5)


def new_rows():
    """Rows the model never saw: older people, two occupations, one income."""
    frame = make_frame(rows=40, seed=2)
    frame["age"] += 30
    frame["occupation"] = np.where(frame.index % 2, "tech", "sales")
    frame["income"] = "<=50K"
    return frame


def raw_columns(frame):
    """The model's inputs from a frame, by hand: `?` and spaces as it cleans them."""
    return {
        "age": tf.constant(frame["age"].to_numpy(np.float32)),
        "job": tf.constant(frame["job"].to_numpy(str)),
        "union": tf.constant(frame["union"].to_numpy(np.float32)),
    }


def test_a_new_table_is_read_with_the_model_encoder_and_labels(table_run):
    folder, _ = table_run
    model = keras.saving.load_model(folder / "model.keras")
    frame = new_rows()
    data = from_dataframe(frame, **model.table_options(), id_columns=["person"])
    rows = np.concatenate([data.info["rows"][s] for s in ("train", "val", "test")])
    x = np.concatenate([data.x[s] for s in ("train", "val", "test")])
    expected = model.encoder(raw_columns(frame.iloc[rows]))
    np.testing.assert_allclose(x, expected, atol=1e-6)
    assert abs(x[:, 0].mean()) > 1  # the training mean, not the new rows'
    occupation = np.concatenate([data.y[s]["occupation"] for s in data.y])
    classes = model.targets["occupation"]["classes"]
    np.testing.assert_array_equal(
        occupation, [classes.index(v) for v in frame["occupation"].iloc[rows]]
    )
    income = np.concatenate([data.y[s]["income"] for s in data.y])
    np.testing.assert_array_equal(income, np.zeros(40))
    frame.loc[3, "occupation"] = "pilot"
    with pytest.raises(MMoEExError, match="'occupation' has values the model does"):
        from_dataframe(frame, **model.table_options())


def test_evaluate_and_predict_a_new_table_file(table_run, tmp_path, capsys):
    folder, _ = table_run
    model_file = str(folder / "model.keras")
    frame = new_rows()
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    args = ["--data", "table", "--data-path", str(path)]
    assert main(["evaluate", model_file, *args, "--split", "all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"new all metrics of {model_file}:")
    assert "income" in out and "hours_per_week" in out
    # Predictions need no target column, keep the id column and file order.
    frame.drop(columns=list(TARGETS)).to_csv(path, index=False)
    output = tmp_path / "predictions.csv"
    predict = ["predict", model_file, *args, "--id-column", "person"]
    assert main([*predict, "--output", str(output)]) == 0
    got = pd.read_csv(output, keep_default_na=False)
    model = keras.saving.load_model(model_file)
    expected = model.predict_labels(raw_columns(frame))
    classes = model.targets["occupation"]["classes"]
    assert list(got.columns) == [
        "person",
        "income",
        "income_probability",
        "occupation",
        *(f"occupation={c}" for c in classes),
        "tags",
        "tags=blue",
        "tags=green",
        "tags=red",
        "hours_per_week",
    ]
    assert list(got["person"]) == list(frame["person"])
    probability = expected["income"].numpy()
    np.testing.assert_allclose(got["income_probability"], probability, atol=1e-6)
    assert list(got["income"]) == [">50K" if p >= 0.5 else "<=50K" for p in probability]
    assert list(got["occupation"]) == [
        v.decode() for v in expected["occupation"].numpy()
    ]
    np.testing.assert_allclose(
        got[[f"occupation={c}" for c in classes]],
        expected["occupation_probabilities"],
        atol=1e-6,
    )
    tags = expected["tags"].numpy()
    np.testing.assert_allclose(
        got[["tags=blue", "tags=green", "tags=red"]], tags, atol=1e-6
    )
    assert list(got["tags"]) == [
        "|".join(c for c, p in zip(("blue", "green", "red"), row) if p >= 0.5)
        for row in tags
    ]
    np.testing.assert_allclose(
        got["hours_per_week"], expected["hours_per_week"], rtol=1e-5
    )
    # A model that saved its id column keeps it without --id-column.
    with_ids = TableModel.from_model(model, model.encoder, model.targets, ["person"])
    with_ids.save(tmp_path / "with_ids.keras")
    again = tmp_path / "again.csv"
    predict = ["predict", str(tmp_path / "with_ids.keras"), *args]
    assert main([*predict, "--output", str(again)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(again, keep_default_na=False), got)


def test_integer_categories_use_an_integer_lookup():
    frame = make_frame()
    frame["code"] = np.arange(len(frame)) % 3 * 10 - 10  # -10, 0, 10
    data = table(frame, categorical=["code"])
    column = next(c for c in data.encoder.columns if c["name"] == "code")
    assert column["kind"] == "integer" and sorted(column["vocabulary"]) == [-10, 0, 10]
    vocabulary = column["vocabulary"]  # by frequency in the train split
    codes = [n for n in data.feature_names if n.startswith("code=")]
    assert codes == ["code=[UNK]", *(f"code={v}" for v in vocabulary)]
    assert data.encoder.input_specs()["code"].dtype == tf.int64
    start = data.feature_names.index("code=[UNK]")
    one_hot = data.x["train"][:, start : start + 4]
    rows = data.info["rows"]["train"]
    expected = np.eye(4)[[1 + vocabulary.index(v) for v in frame["code"][rows]]]
    np.testing.assert_array_equal(one_hot, expected)
    new = frame.copy()
    new["code"] = new["code"].astype(float)
    new.loc[:2, "code"] = [20, np.nan, 0.5]  # unseen, missing, not whole
    with pytest.warns(UserWarning, match="'code': 3 value.*out-of-vocabulary"):
        again = table(new, encoder=data.encoder)
    assert again.info["unseen"] == {"code": 3}
    rows = np.concatenate([again.info["rows"][s] for s in ("train", "val", "test")])
    x = np.concatenate([again.x[s] for s in ("train", "val", "test")])
    assert (x[np.isin(rows, range(3)), start] == 1).all()
    # With a gap in the training rows the column is read as strings.
    frame.loc[5, "code"] = np.nan
    gappy = table(frame, categorical=["code"])
    assert "code=(missing)" in gappy.feature_names
