"""Piecewise-linear encoding of numeric columns on train-split quantile bins.

A network sees a min-max or standardised column as one number; a skewed one
(capital gains: mostly 0, a few up to 99,999) is then nearly constant. The
piecewise-linear encoding (Gorishniy, Rubachev and Babenko, "On Embeddings
for Numerical Features in Tabular Deep Learning", NeurIPS 2022) gives each
bin `[lo, hi)` of the column one feature, `clip((x - lo) / (hi - lo), 0, 1)`:
1 above the bin, 0 below it, linear inside, so a linear layer on it is any
piecewise-linear function of the column with knots at the bin edges (the
thresholds that decision trees split on).

`load_census3` encodes its numeric columns so; `TableEncoder` does it for
a table's number columns when given `numeric_bins`, and `SummaryExperts`
for the running summaries of a sequence (`edge_matrix`,
`piecewise_linear_columns`: every column at once).
"""

import numpy as np
import tensorflow as tf

#: Quantile bins per numeric column.
NUM_BINS = 128


def quantile_edges(values, num_bins=NUM_BINS):
    """Bin edges of one column at its quantiles, repeats merged.

    Args:
        values: The column's train-split values (1-D, finite).
        num_bins: Bins before merging: edges at the `k / num_bins`
            quantiles, `k = 0, ..., num_bins`.

    Returns:
        The distinct edges, ascending (fewer than `num_bins + 1` where
        quantiles coincide; one edge, so no bin, for a constant column).
    """
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, num_bins + 1)))


def piecewise_linear(values, edges):
    """The piecewise-linear encoding of one column.

    Computed in float64 with TensorFlow ops, so the same function encodes
    NumPy arrays (eagerly) and a model's input tensors (in its graph).

    Args:
        values: The column's values, any rows (1-D, or `(rows, 1)`).
        edges: Its `quantile_edges`.

    Returns:
        `float32` tensor `(rows, len(edges) - 1)`: for bin `k`,
        `clip((x - edges[k]) / (edges[k + 1] - edges[k]), 0, 1)`.
    """
    values = tf.reshape(tf.cast(values, tf.float64), (-1, 1))
    edges = tf.constant([edges], tf.float64)  # one column's edge matrix
    return tf.cast(piecewise_linear_columns(values, edges), tf.float32)


def bin_names(name, edges):
    """Feature names of a column's bins: `"<name> in [lo, hi)"`."""
    return [f"{name} in [{low:g}, {high:g})" for low, high in zip(edges, edges[1:])]


def edge_matrix(values, num_bins):
    """Every column's `quantile_edges` as the rows of one matrix.

    Columns with fewer distinct edges repeat their last edge; those empty
    bins (zero width) encode as 0 in `piecewise_linear_columns`.

    Args:
        values: `(rows, columns)` train-split values, finite.
        num_bins: Bins per column before merging.

    Returns:
        `float32` array `(columns, num_bins + 1)`, each row ascending.
    """
    rows = []
    for column in np.asarray(values, np.float64).T:
        edges = quantile_edges(column, num_bins)
        rows.append(np.pad(edges, (0, num_bins + 1 - len(edges)), mode="edge"))
    return np.array(rows, np.float32)


def piecewise_linear_columns(values, edges):
    """The piecewise-linear encoding of every column at once.

    Args:
        values: `(..., columns)` tensor.
        edges: `(columns, bins + 1)` edges (`edge_matrix`).

    Returns:
        `(..., columns * bins)`: column `c`'s bins at `c * bins + k`, each
        `clip((x - lo) / (hi - lo), 0, 1)`, 0 for an empty bin (`lo == hi`).
    """
    low, high = edges[:, :-1], edges[:, 1:]
    width = high - low
    empty = width <= 0
    safe_width = tf.where(empty, tf.ones_like(width), width)
    encoded = tf.clip_by_value((values[..., None] - low) / safe_width, 0.0, 1.0)
    encoded = tf.where(empty, tf.zeros_like(encoded), encoded)
    columns, bins = edges.shape[0], edges.shape[1] - 1
    shape = tf.concat([tf.shape(values)[:-1], [columns * bins]], axis=0)
    return tf.reshape(encoded, shape)
