"""Saving and reloading models that were never trained.

A `.keras` file holds the optimizer's variables as they were when saved: an
optimizer that never took a step is unbuilt and holds only its iteration
count and learning rate. The reloaded model must get back what was saved: no
"Skipping variable loading for optimizer" mismatch, and no optimizer at all
for a model that was never compiled.
"""

import warnings

import keras
import numpy as np
import pytest

import mmoeex_tf as mt

X = np.random.default_rng(3).normal(size=(64, 6)).astype("float32")
TASKS = [mt.Task("flag", "binary"), mt.Task("value", "regression")]
Y = {"flag": (X[:, 0] > 0).astype("float32"), "value": X[:, 1] - X[:, 2]}


def _model():
    return mt.MMoEExModel(TASKS, mt.DenseExperts(3, 4), alpha=0.5, seed=1)


def _reload(model, tmp_path):
    """Saves and loads `model`; returns the copy and the warnings raised."""
    path = tmp_path / "model.keras"
    model.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(path)
    return loaded, [str(w.message) for w in caught]


def _assert_no_optimizer_mismatch(messages):
    assert not [m for m in messages if "Skipping variable loading" in m], messages


@pytest.mark.parametrize("built", ["build", "predict"])
def test_a_compiled_model_reloads_before_its_first_step(tmp_path, built):
    model = _model()
    if built == "build":
        model.build((None, 6))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    if built == "predict":
        model.predict(X, verbose=0)
    loaded, messages = _reload(model, tmp_path)
    _assert_no_optimizer_mismatch(messages)
    assert loaded.compiled and not loaded.optimizer.built
    np.testing.assert_allclose(
        loaded.predict(X, verbose=0)["value"], model.predict(X, verbose=0)["value"]
    )
    loaded.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    assert int(loaded.optimizer.iterations) == 2


def test_an_uncompiled_model_reloads_uncompiled(tmp_path):
    model = _model()
    model.build((None, 6))
    loaded, messages = _reload(model, tmp_path)
    _assert_no_optimizer_mismatch(messages)
    assert not loaded.compiled


def test_a_trained_model_reloads_its_optimizer_state(tmp_path):
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), non_finite="stop")
    model.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    loaded, messages = _reload(model, tmp_path)
    _assert_no_optimizer_mismatch(messages)
    assert loaded.optimizer.built and loaded.non_finite == "stop"
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(saved))
