"""Non-finite training steps: skipped, counted, optionally stopping training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmoeex_tf as mt
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.training.maml import MAMLMTL
from tests.helpers import run_on_two_cpu_replicas

TASKS = [mt.Task("flag", "binary"), mt.Task("value", "regression")]
BATCH = 16


def batches(poisoned=None, poison=np.inf):
    """Four batches of 16 rows; batch `poisoned` gets one `poison` feature."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * BATCH, 5)).astype("float32")
    y = {"flag": (x[:, 0] > 0).astype("float32"), "value": x[:, 1] * 2}
    if poisoned is not None:
        x[poisoned * BATCH + 3, 2] = poison
    return x, y


def dataset(x, y, keep=None):
    """The rows as a batched `tf.data` pipeline (it bypasses the input checks).

    Args:
        keep: Batch numbers to keep (all by default).
    """
    keep = range(len(x) // BATCH) if keep is None else keep
    rows = np.concatenate([np.arange(b * BATCH, (b + 1) * BATCH) for b in keep])
    pairs = (x[rows], {name: labels[rows] for name, labels in y.items()})
    return tf.data.Dataset.from_tensor_slices(pairs).batch(BATCH)


def make_model(optimization=None, non_finite="skip"):
    keras.utils.set_random_seed(3)
    model = mt.MMoEExModel(
        TASKS, mt.DenseExperts(4, 8), alpha=0.5, optimization=optimization
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), non_finite=non_finite)
    return model


@pytest.mark.parametrize("poison", [np.inf, np.nan])
@pytest.mark.parametrize(
    "optimization", [None, MAMLMTL(order=2, split_ratio=None)], ids=["joint", "maml"]
)
def test_a_non_finite_step_is_skipped_exactly(optimization, poison):
    x, y = batches(poisoned=2, poison=poison)
    model = make_model(optimization)
    with pytest.warns(RuntimeWarning, match="1 training step"):
        history = model.fit(dataset(x, y), epochs=1, verbose=0)
    clean = make_model(optimization)
    clean.fit(dataset(x, y, keep=[0, 1, 3]), epochs=1, verbose=0)
    assert history.history["non_finite_steps"] == [1.0]
    assert np.isfinite(history.history["loss"][0])
    assert int(model.optimizer.iterations) == 3
    for got, want in zip(model.get_weights(), clean.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_skipped_steps_are_left_out_of_the_logged_loss():
    x, y = batches(poisoned=0)
    model = make_model()
    with pytest.warns(RuntimeWarning):
        logs = model.fit(dataset(x, y), epochs=1, verbose=0).history
    clean = make_model()
    clean_logs = clean.fit(dataset(x, y, keep=[1, 2, 3]), epochs=1, verbose=0)
    np.testing.assert_allclose(logs["loss"], clean_logs.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(
        logs["flag_auc"], clean_logs.history["flag_auc"], rtol=1e-6
    )


def test_stop_policy_ends_training_after_the_first_bad_step():
    x, y = batches(poisoned=1)
    model = make_model(non_finite="stop")
    with pytest.warns(RuntimeWarning, match="training stopped"):
        history = model.fit(dataset(x, y), epochs=3, verbose=0)
    before = make_model()
    before.fit(dataset(x, y, keep=[0]), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    assert int(model.optimizer.iterations) == 1
    for got, want in zip(model.get_weights(), before.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_every_step_non_finite_leaves_the_weights_as_they_were():
    x, y = batches()
    y["value"][:] = np.inf  # an infinite label: every loss is infinite
    model = make_model()
    model(x[:2])
    initial = model.get_weights()
    with pytest.warns(RuntimeWarning, match="4 training step"):
        model.fit(dataset(x, y), epochs=1, verbose=0)
    for got, want in zip(model.get_weights(), initial):
        np.testing.assert_array_equal(got, want)


def test_clean_training_counts_no_skipped_step():
    x, y = batches()
    model = make_model()
    logs = model.fit(
        dataset(x, y), validation_data=dataset(x, y), epochs=2, verbose=0
    ).history
    assert logs["non_finite_steps"] == logs["val_non_finite_steps"] == [0.0, 0.0]


def test_policy_is_checked_and_saved(tmp_path):
    with pytest.raises(MMoEExError, match="non_finite must be one of"):
        make_model(non_finite="ignore")
    x, y = batches()
    model = make_model(non_finite="stop")
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    model.save(tmp_path / "model.keras")
    assert keras.saving.load_model(tmp_path / "model.keras").non_finite == "stop"


TWO_REPLICAS = """
import warnings
import keras
import numpy as np
import mmoeex_tf as mt

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 5)).astype("float32")
y = {"flag": (x[:, 0] > 0).astype("float32"), "value": x[:, 1] * 2}
x[40, 2] = np.inf  # batch 1, second replica's half

def train(strategy, batches):
    rows = np.concatenate([np.arange(32 * b, 32 * b + 32) for b in batches])
    data = tf.data.Dataset.from_tensor_slices(
        (x[rows], {k: v[rows] for k, v in y.items()})
    ).batch(32)
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = mt.MMoEExModel(
            [mt.Task("flag", "binary"), mt.Task("value", "regression")],
            mt.DenseExperts(4, 8),
            alpha=0.5,
        )
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        model(x[:2])
    logs = model.fit(data, epochs=1, verbose=0).history
    return logs["non_finite_steps"][0], model.get_weights()

skipped, two = train(mirrored, [0, 1, 2])
_, one = train(tf.distribute.get_strategy(), [0, 2])
print(skipped, max(np.abs(a - b).max() for a, b in zip(one, two)))
"""


def test_two_replicas_skip_together():
    skipped, error = run_on_two_cpu_replicas(TWO_REPLICAS)
    assert skipped == 1.0
    assert error < 1e-5
