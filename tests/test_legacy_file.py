"""A model file saved by version 0.1.0 still loads and predicts the same."""

import pathlib
import warnings

import keras
import numpy as np

import mmoeex_tf as mt

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def test_version_0_1_0_file_loads_and_predicts_identically():
    saved = np.load(FIXTURES / "legacy_v0_1_0.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a weight left unloaded only warns
        model = keras.saving.load_model(FIXTURES / "legacy_v0_1_0.keras")
    outputs = model.predict(saved["x"], verbose=0)
    assert sorted(outputs) == ["b", "m", "r"]
    for name, values in outputs.items():
        np.testing.assert_allclose(values, saved[f"out_{name}"], rtol=0, atol=1e-6)
    experts = model.mixture.experts
    assert isinstance(experts, mt.DenseExperts)
    assert experts.units == [8] and experts.output_units == 8
    assert experts.dropout == 0.0
    assert model.towers.units == [6]
