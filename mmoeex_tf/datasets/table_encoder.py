"""`TableEncoder`: raw table columns to a model's float features.

The encoder is made of Keras preprocessing layers whose statistics come from
the train split (`TableEncoder.adapt_columns`): `Normalization` for numbers
(and booleans, as 0/1); `StringLookup` for strings and `IntegerLookup` for
categorical columns of whole numbers, each one-hot with one
out-of-vocabulary bucket. With `numeric_bins`, each number column with more
than two distinct train values (not a 0/1 column) is also encoded
piecewise-linearly on its train-quantile bins (`piecewise_linear`), which
lets the network fit thresholds as trees do. Its config holds those
statistics, so it is saved and exported with the model that owns it
(`TableModel`) and loads without refitting.

Missing values never reach the model as `NaN`: a missing number becomes the
train mean (0 after normalisation, and the mean's bins), with a 0/1
indicator feature when the column had missing values in the train split; a
missing string (`""`, a `na_values` marker or pandas' missing value) is its
own category. An integer column has no missing cells in the train split (a
categorical column with gaps is read as strings); `MISSING_INTEGER` marks a
later missing cell, which goes to the out-of-vocabulary bucket.
"""

import keras
import numpy as np
import tensorflow as tf

from mmoeex_tf._checks import check_integer
from mmoeex_tf.choices import AUTO
from mmoeex_tf.layers.piecewise_linear import (
    bin_names,
    piecewise_linear,
    quantile_edges,
)

NUMBER, STRING, INTEGER = "number", "string", "integer"
#: The category of a missing string cell.
MISSING = ""
#: A missing cell of an integer column (out of every vocabulary).
MISSING_INTEGER = np.iinfo(np.int64).min
#: Column kind -> the lookup layer class of its categories.
LOOKUPS = {
    STRING: keras.layers.StringLookup,
    INTEGER: lambda **kwargs: keras.layers.IntegerLookup(
        oov_token=MISSING_INTEGER,
        **kwargs,  # -1, the default, may be a category
    ),
}
#: Bins per number column of `numeric_bins="auto"`, the most.
MAX_AUTO_BINS = 64
#: Bins of all number columns together of `numeric_bins="auto"`, the most.
AUTO_BIN_FEATURES = 4096
#: Column kind -> the dtype of its raw values.
DTYPES = {NUMBER: tf.float32, STRING: tf.string, INTEGER: tf.int64}


@keras.saving.register_keras_serializable(package="mmoeex_tf")
class TableEncoder(keras.layers.Layer):
    """Turns a dict of raw table columns into one float32 feature matrix.

    Args:
        columns: One dict per feature column, in feature order, with `name`
            (the input's name) and `kind` (`"number"`, `"string"` or
            `"integer"`); a number has `mean`, `variance` and `indicator`
            (whether a missing indicator follows it), a string or integer
            column its `vocabulary`.
        na_values: String cells that mean missing, besides `""`.
        **kwargs: `keras.layers.Layer` keyword arguments.

    Call arguments:
        inputs: Dict column name -> `(batch,)` or `(batch, 1)` values:
            float for numbers (`NaN` = missing), strings for strings
            (surrounding spaces are stripped), int64 for integers.
    """

    def __init__(self, columns, na_values=(), **kwargs):
        super().__init__(**kwargs)
        self.columns = [dict(column) for column in columns]
        self.na_values = [str(value) for value in na_values]
        self.lookups = {}
        self.normalizers = {}
        for column in self.columns:
            if column["kind"] in LOOKUPS:
                self.lookups[column["name"]] = LOOKUPS[column["kind"]](
                    vocabulary=list(column["vocabulary"]),
                    num_oov_indices=1,
                    output_mode="one_hot",
                )
            else:
                self.normalizers[column["name"]] = keras.layers.Normalization(
                    mean=column["mean"], variance=column["variance"]
                )
        # Built here, eagerly: their constants must not belong to the first
        # graph that calls the encoder (a `tf.data` map, a traced signature).
        for layer in [*self.lookups.values(), *self.normalizers.values()]:
            layer.build((None, 1))
        self.built = True

    @classmethod
    def adapt_columns(cls, train, kinds, na_values=(), numeric_bins=AUTO, **kwargs):
        """Creates an encoder from the train split's raw columns.

        Args:
            train: Dict column name -> raw train values (numbers as float
                with `NaN`, strings with `""` for missing), in feature order.
            kinds: Dict column name -> `"number"`, `"string"` or `"integer"`.
            na_values: String cells that mean missing.
            numeric_bins: Quantile bins of the piecewise-linear encoding of
                each number column with more than two distinct values
                (coinciding quantiles merge); 0 encodes numbers by their
                standardised value alone; `"auto"` gives each such column
                `MAX_AUTO_BINS`, fewer when there are so many columns that
                the bins would exceed `AUTO_BIN_FEATURES` in all (and none
                when that leaves fewer than 2).
            **kwargs: `keras.layers.Layer` keyword arguments.

        Returns:
            The `TableEncoder`.
        """
        columns, binned = [], {}
        for name, values in train.items():
            kind = kinds[name]
            if kind in LOOKUPS:
                lookup = LOOKUPS[kind](num_oov_indices=1)
                lookup.adapt(np.asarray(values, dtype=str if kind == STRING else int))
                vocabulary = [
                    value if kind == STRING else int(value)
                    for value in lookup.get_vocabulary(include_special_tokens=False)
                ]
                columns.append({"name": name, "kind": kind, "vocabulary": vocabulary})
                continue
            values = np.asarray(values, dtype=np.float32)
            missing = np.isnan(values)
            present = values[~missing]
            normalizer = keras.layers.Normalization(axis=None)
            normalizer.adapt(present)
            columns.append(
                {
                    "name": name,
                    "kind": NUMBER,
                    "mean": float(np.asarray(normalizer.mean).ravel()[0]),
                    "variance": float(np.asarray(normalizer.variance).ravel()[0]),
                    "indicator": bool(missing.any()),
                }
            )
            if numeric_bins and len(np.unique(present)) > 2:
                binned[name] = present
        bins = bins_per_column(numeric_bins, len(binned))
        for column in columns:
            if bins and column["name"] in binned:
                edges = quantile_edges(binned[column["name"]], bins)
                column["edges"] = edges.tolist()
        return cls(columns, na_values, **kwargs)

    @property
    def input_names(self):
        """The names of the raw columns the encoder takes, in order."""
        return [column["name"] for column in self.columns]

    def input_specs(self):
        """Dict column name -> `tf.TensorSpec` of a batch of raw values."""
        return {
            column["name"]: tf.TensorSpec(
                (None,), DTYPES[column["kind"]], name=column["name"]
            )
            for column in self.columns
        }

    def feature_names(self):
        """One name per output feature.

        `age`, `age=missing`, `age in [18, 25)` (a bin), `job=[UNK]`, ...
        """
        names = []
        for column in self.columns:
            name = column["name"]
            if column["kind"] in LOOKUPS:
                names.append(f"{name}=[UNK]")
                names.extend(
                    f"{name}={'(missing)' if value == MISSING else value}"
                    for value in column["vocabulary"]
                )
            else:
                names.append(name)
                if column["indicator"]:
                    names.append(f"{name}=missing")
                names.extend(bin_names(name, column.get("edges", ())))
        return names

    def call(self, inputs):
        features = []
        for column in self.columns:
            name = column["name"]
            values = tf.reshape(inputs[name], (-1, 1))
            if column["kind"] == STRING:
                features.append(self.lookups[name](self.clean_strings(values)))
                continue
            if column["kind"] == INTEGER:
                features.append(self.lookups[name](tf.cast(values, tf.int64)))
                continue
            values = tf.cast(values, tf.float32)
            missing = tf.math.is_nan(values)
            normalized = self.normalizers[name](tf.where(missing, 0.0, values))
            features.append(tf.where(missing, 0.0, normalized))
            if column["indicator"]:
                features.append(tf.cast(missing, tf.float32))
            if "edges" in column:
                filled = tf.where(missing, column["mean"], values)
                features.append(piecewise_linear(filled, column["edges"]))
        return tf.concat([tf.cast(f, tf.float32) for f in features], axis=-1)

    def clean_strings(self, values):
        """Strips spaces and turns the `na_values` markers into `""`."""
        values = tf.strings.strip(values)
        for marker in self.na_values:
            values = tf.where(tf.equal(values, marker), MISSING, values)
        return values

    def compute_output_shape(self, input_shape):
        return (None, len(self.feature_names()))

    def get_config(self):
        return {
            **super().get_config(),
            "columns": self.columns,
            "na_values": self.na_values,
        }


def bins_per_column(numeric_bins, columns):
    """The bins of each number column that gets bins.

    Args:
        numeric_bins: An integer >= 0, or `"auto"`.
        columns: How many number columns get bins (more than two values).

    Returns:
        `numeric_bins` itself; for `"auto"`, `MAX_AUTO_BINS`, or fewer so
        that all columns together have at most `AUTO_BIN_FEATURES` bins (0
        when that leaves fewer than 2 per column).

    Raises:
        MMoEExError: for another value than `"auto"` or an integer >= 0.
    """
    if numeric_bins != AUTO:
        return check_integer(numeric_bins, "numeric_bins", minimum=0)
    bins = min(MAX_AUTO_BINS, AUTO_BIN_FEATURES // max(columns, 1))
    return bins if bins >= 2 else 0
