"""Property-based tests: random models, labels and broken files.

Every case either works or raises `MMoEExError` naming the problem: no other
exception, no hang, no NaN loss.
"""

import gzip

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmoeex_tf as mt
from mmoeex_tf import MMoEExError, Task
from mmoeex_tf.datasets import load_census3, load_moleculenet_csv, load_physio4

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def task_specs(draw):
    kind = draw(st.sampled_from(["binary", "multiclass", "multilabel", "regression"]))
    size = None
    if kind in ("multiclass", "multilabel"):
        size = draw(st.integers(2, 4))
    elif kind == "regression":
        size = draw(st.integers(1, 2))
    return kind, size


def random_labels(rng, kind, size, rows, missing_rate):
    if kind == "binary":
        labels = (rng.random(rows) < 0.3).astype("float32")
    elif kind == "multiclass":
        labels = rng.integers(0, size, rows).astype("float32")
    elif kind == "multilabel":
        labels = (rng.random((rows, size)) < 0.3).astype("float32")
    else:
        labels = rng.normal(size=(rows, size) if size > 1 else rows).astype("float32")
    labels[rng.random(labels.shape) < missing_rate] = np.nan
    return labels


@FUZZ
@given(
    specs=st.lists(task_specs(), min_size=1, max_size=4),
    rows=st.integers(1, 40),
    features=st.integers(1, 7),
    experts=st.integers(1, 5),
    alpha=st.floats(0.0, 1.0),
    mode=st.sampled_from(["exclusivity", "exclusion"]),
    missing_rate=st.sampled_from([0.0, 0.3, 1.0]),
    constant_features=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_models_and_labels_train_or_refuse(
    specs, rows, features, experts, alpha, mode, missing_rate, constant_features, seed
):
    rng = np.random.default_rng(seed)
    tasks = [
        Task(f"t{i}", kind, output_size=size) for i, (kind, size) in enumerate(specs)
    ]
    x = rng.normal(size=(rows, features)).astype("float32")
    if constant_features:
        x[:] = 1.0
    y = {
        t.name: random_labels(rng, t.kind, size, rows, missing_rate)
        for t, (_, size) in zip(tasks, specs)
    }
    try:
        model = mt.MMoEExModel(
            tasks, mt.DenseExperts(experts, 3), alpha=alpha, mode=mode, seed=seed
        )
    except MMoEExError as error:
        assert "no open expert" in str(error)
        return
    labels, weights = model.prepare_batch(tf.constant(x), y, None)
    logits = model(x, training=True, return_logits=True)
    losses = model.compute_task_losses(labels, weights, logits).numpy()
    assert np.isfinite(losses).all()
    if missing_rate == 1.0:
        np.testing.assert_array_equal(losses, 0.0)
    _, gates = model(x, return_gates=True)
    np.testing.assert_array_equal(gates.numpy()[:, model.gate_mask == 0], 0.0)


@FUZZ
@given(
    label_shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    task=st.sampled_from(
        [
            Task("b", "binary"),
            Task("m", "multiclass", output_size=3),
            Task("l", "multilabel", output_size=2),
        ]
    ),
)
def test_wrong_label_shapes_are_refused_by_name(label_shape, task):
    model = mt.MMoEExModel([task], mt.DenseExperts(2, 2))
    x = tf.zeros((4, 3))
    labels = np.zeros([4, *label_shape], "float32")
    try:
        model.prepare_batch(x, {task.name: labels}, None)
    except MMoEExError as error:
        assert f"Task {task.name!r}" in str(error)


BROKEN_FILES = {
    "empty": b"",
    "wrong delimiter": b"smiles;a;b\nCCO;1;0\nCCN;0;1\n",
    "non-utf8": b"smiles,a\n\xff\xfe\xfa,1\n",
    "binary noise": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
@pytest.mark.parametrize("loader", ["census", "molecules"])
def test_broken_files_raise_the_library_error(tmp_path, name, loader):
    path = tmp_path / "data.csv"
    path.write_bytes(BROKEN_FILES[name])
    load = load_census3 if loader == "census" else load_moleculenet_csv
    with pytest.raises(MMoEExError):
        load(path)


@pytest.mark.parametrize("loader", [load_census3, load_moleculenet_csv])
def test_truncated_gzip_raises_the_library_error(tmp_path, loader):
    content = gzip.compress(b"smiles,a\n" + b"CCO,1\n" * 2000)
    path = tmp_path / "data.csv.gz"
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(MMoEExError, match="gzip|complete"):
        loader(path)


def test_physionet_folder_without_data_raises(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(MMoEExError):
        load_physio4(tmp_path)


@FUZZ
@given(
    column=st.sampled_from(["a", "b"]),
    values=st.lists(
        st.sampled_from(["0", "1", "", "2", "x", "nan"]), min_size=3, max_size=3
    ),
)
def test_molecule_labels_are_checked(tmp_path_factory, column, values):
    folder = tmp_path_factory.mktemp("mol")
    rows = ["smiles,a,b", *(f"CC{'C' * i}O,{v},1" for i, v in enumerate(values))]
    if column == "b":
        rows = ["smiles,a,b", *(f"CC{'C' * i}O,1,{v}" for i, v in enumerate(values))]
    path = folder / "mol.csv"
    path.write_text("\n".join(rows) + "\n")
    filled = [v for v in values if v not in ("", "nan")]
    numbers = [float(v) for v in filled if v != "x"]
    if 2 * len(numbers) <= len(filled):  # mostly text: an id or name column
        data = load_moleculenet_csv(path, cache_dir=folder)
        assert column in data.info["ignored_columns"]
        assert column not in {task.name for task in data.tasks}
        return
    if "x" in filled:
        with pytest.raises(MMoEExError, match=f"label column '{column}'.*'x'"):
            load_moleculenet_csv(path, cache_dir=folder)
        return
    data = load_moleculenet_csv(path, cache_dir=folder)
    kind = next(task.kind for task in data.tasks if task.name == column)
    assert kind == ("binary" if set(numbers) <= {0.0, 1.0} else "regression")
    present = np.concatenate([data.y[split][column] for split in data.y])
    assert sorted(present[~np.isnan(present)].tolist()) == sorted(numbers)
