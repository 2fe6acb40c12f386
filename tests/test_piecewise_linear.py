"""Piecewise-linear encoding of numeric columns: exact values by hand."""

import numpy as np

from mmoeex_tf.layers.piecewise_linear import (
    bin_names,
    piecewise_linear,
    quantile_edges,
)


def test_quantile_edges_at_the_quantiles_with_repeats_merged():
    np.testing.assert_array_equal(quantile_edges(np.arange(9.0), 4), [0, 2, 4, 6, 8])
    # Mostly zeros: the quantiles 0 to 0.75 coincide at 0.
    zeros = np.array([0, 0, 0, 0, 0, 0, 0, 10.0])
    np.testing.assert_array_equal(quantile_edges(zeros, 4), [0, 10])
    assert quantile_edges(np.full(5, 3.0), 4).tolist() == [3.0]


def test_encoding_is_one_above_zero_below_and_linear_inside_a_bin():
    edges = np.array([0.0, 2.0, 6.0])
    encoded = np.asarray(piecewise_linear([-1.0, 0.0, 1.0, 2.0, 3.0, 6.0, 9.0], edges))
    expected = [
        [0.0, 0.0],
        [0.0, 0.0],
        [0.5, 0.0],
        [1.0, 0.0],
        [1.0, 0.25],
        [1.0, 1.0],
        [1.0, 1.0],
    ]
    np.testing.assert_array_equal(encoded, expected)
    assert encoded.dtype == np.float32


def test_a_linear_layer_on_the_encoding_is_the_piecewise_linear_function():
    # Slopes 1 on [0, 2) and 3 on [2, 6): f(x) = x, then 2 + 3 (x - 2).
    edges = np.array([0.0, 2.0, 6.0])
    x = np.linspace(0.0, 6.0, 25)
    values = np.asarray(piecewise_linear(x, edges)) @ np.array([2.0, 12.0])
    np.testing.assert_allclose(values, np.where(x < 2, x, 2 + 3 * (x - 2)), atol=1e-6)


def test_constant_column_has_no_bins_and_names_give_the_edges():
    assert piecewise_linear([1.0, 2.0], np.array([3.0])).shape == (2, 0)
    assert bin_names("age", np.array([0.0, 2.5, 90.0])) == [
        "age in [0, 2.5)",
        "age in [2.5, 90)",
    ]
