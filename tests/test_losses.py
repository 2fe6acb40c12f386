import numpy as np
import pytest
import tensorflow as tf

from mmoeex_tf import DenseExperts, MMoEExError, MMoEExModel, Task
from mmoeex_tf.training import losses

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 6)).astype("float32")
TASKS = [
    Task("flag", "binary", positive_weight=3.0),
    Task("grade", "multiclass", output_size=3, class_weights=(1.0, 2.0, 0.5)),
    Task("tags", "multilabel", output_size=2),
    Task("value", "regression"),
]


def make_labels(rows):
    return {
        "flag": (X[:rows, 0] > 0).astype("float32"),
        "grade": (np.abs(X[:rows, 1]) * 2).astype(int).clip(0, 2).astype("float32"),
        "tags": (X[:rows, 2:4] > 0).astype("float32"),
        "value": X[:rows, 4] * 3.0,
    }


def task_losses(model, x, y):
    labels, weights = model.prepare_batch(tf.constant(x), y, None)
    logits = model(x, training=False, return_logits=True)
    return model.compute_task_losses(labels, weights, logits).numpy()


@pytest.fixture
def model():
    model = MMoEExModel(TASKS, DenseExperts(4, 8), alpha=0.25, seed=3)
    model(X)
    return model


def test_masked_rows_count_as_dropped(model):
    labels = make_labels(64)
    missing = RNG.random(64) < 0.3
    masked = {name: value.copy() for name, value in labels.items()}
    for value in masked.values():
        value[missing] = np.nan
    kept = {name: value[~missing] for name, value in labels.items()}
    np.testing.assert_allclose(
        task_losses(model, X, masked), task_losses(model, X[~missing], kept), rtol=1e-6
    )


def test_masked_loss_equals_the_formula(model):
    labels = make_labels(64)
    labels["flag"][:10] = np.nan
    logits = model(X, return_logits=True)["flag"].numpy()[:, 0]
    y, z = labels["flag"][10:], logits[10:]
    per_row = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    per_row *= np.where(y == 1, 3.0, 1.0)
    np.testing.assert_allclose(
        task_losses(model, X, labels)[0], per_row.mean(), rtol=1e-5
    )


def test_multilabel_masks_single_entries(model):
    labels = make_labels(64)
    labels["tags"][:5, 1] = np.nan
    logits = model(X, return_logits=True)["tags"].numpy()
    y = labels["tags"]
    per_entry = (
        np.maximum(logits, 0)
        - logits * np.nan_to_num(y)
        + np.log1p(np.exp(-np.abs(logits)))
    )
    expected = per_entry[~np.isnan(y)].mean()
    np.testing.assert_allclose(task_losses(model, X, labels)[2], expected, rtol=1e-5)


def test_batch_without_labels_gives_zero_loss_and_finite_gradients(model):
    labels = make_labels(64)
    labels["value"][:] = np.nan
    x = tf.constant(X)
    prepared, weights = model.prepare_batch(x, labels, None)
    with tf.GradientTape() as tape:
        logits = model(x, training=True, return_logits=True)
        values = model.compute_task_losses(prepared, weights, logits)
    gradients = tape.gradient(values[3], model.trainable_variables)
    assert values.numpy()[3] == 0.0
    assert np.isfinite(values.numpy()).all()
    assert all(g is None or np.all(np.asarray(g) == 0) for g in gradients)


def test_sample_weight_zero_masks_like_nan(model):
    labels = make_labels(64)
    weight = (RNG.random(64) > 0.5).astype("float32")
    nan_labels = {k: v.copy() for k, v in labels.items()}
    nan_labels["grade"][weight == 0] = np.nan
    x = tf.constant(X)
    logits = model(X, return_logits=True)
    with_weight = model.compute_task_losses(
        *model.prepare_batch(x, labels, {"grade": weight}), logits
    )
    with_nan = model.compute_task_losses(
        *model.prepare_batch(x, nan_labels, None), logits
    )
    np.testing.assert_allclose(with_weight.numpy(), with_nan.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("grade", np.zeros((64, 3)), r"labels must have shape \(batch\)"),
        ("tags", np.zeros((64,)), r"labels must have shape \(batch, 2\)"),
        ("value", np.array(["a"] * 64), "numeric"),
    ],
)
def test_label_shape_and_dtype_errors_name_the_task(model, name, value, message):
    labels = make_labels(64)
    labels[name] = value
    with pytest.raises(MMoEExError, match=f"Task '{name}'.*{message}"):
        model.prepare_batch(tf.constant(X), labels, None)


def test_trailing_unit_axis_is_accepted(model):
    labels = make_labels(64)
    squeezed = task_losses(model, X, labels)
    labels["flag"] = labels["flag"][:, None]
    np.testing.assert_allclose(task_losses(model, X, labels), squeezed)


def test_activations():
    logits = tf.constant([[0.0], [2.0]])
    np.testing.assert_allclose(
        losses.activate(TASKS[0], logits), [0.5, 1 / (1 + np.exp(-2))], rtol=1e-6
    )
    np.testing.assert_allclose(losses.activate(TASKS[3], logits), [0.0, 2.0])
    probabilities = losses.activate(TASKS[1], tf.constant([[1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(probabilities, [[1 / 3] * 3], rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_labels_of_many_tasks_are_cleaned_as_by_hand(weighted):
    # Tasks of one label shape are cleaned as one stacked tensor; each comes
    # back as if cleaned alone: NaN -> 0, weight = present x sample weight.
    tasks = [*TASKS, Task("flag2", "binary"), Task("value2", "regression")]
    y = make_labels(16)
    y["flag2"], y["value2"] = y["flag"][::-1].copy(), y["value"] + 1.0
    for values in y.values():
        values[RNG.random(values.shape) < 0.3] = np.nan
    sample_weight = RNG.random(16).astype("float32") if weighted else None
    weights_in = dict.fromkeys([t.name for t in tasks], sample_weight)
    labels, weights = losses.prepare_labels(tasks, y, weights_in, (16, 6))
    assert list(labels) == list(weights) == [t.name for t in tasks]
    for name, values in y.items():
        present = ~np.isnan(values)
        expected = present.astype("float32")
        if weighted:
            expected = expected * sample_weight.reshape(-1, *[1] * (values.ndim - 1))
        np.testing.assert_array_equal(labels[name], np.where(present, values, 0.0))
        np.testing.assert_array_equal(weights[name], expected)
