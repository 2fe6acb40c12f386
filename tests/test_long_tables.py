"""Tests of mmoeex_tf.datasets.from_long_table on small made-up long tables."""

import json

import numpy as np
import pandas as pd
import pytest

from mmoeex_tf import Task, datasets
from mmoeex_tf.errors import MMoEExError

COLUMNS = {"id": "id", "time": "time", "variable": "variable", "value": "value"}
DEATH = Task("death", "binary")
# `targets` and `outcomes` for every id of the tables below
OUTCOMES = {
    "targets": (DEATH,),
    "outcomes": pd.DataFrame({"death": [1, 0, 0, 1, 0]}, list("abcde")),
}
ALL_TRAIN = {"split": (100, 0), "steps": 3, "step": "1h"}


def long_table(rows):
    """A long table from `(id, "HH:MM", variable, value)` tuples."""
    return pd.DataFrame(rows, columns=["id", "time", "variable", "value"])


SERIES = long_table(
    [
        ("a", "00:00", "HR", 70),
        ("a", "00:20", "HR", 72),  # the last of step 0
        ("a", "01:10", "HR", 80),
        ("a", "02:00", "Temp", 37),
        ("a", "03:00", "HR", 90),  # the grid's end: the last step
        ("a", "03:01", "HR", 99),  # after the grid: left out
        ("b", "00:30", "Temp", 36),
    ]
)


def assert_close(actual, expected):
    """Equal up to float32 rounding."""
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def raw_inputs(data, split="train"):
    """The inputs before standardisation, from the returned statistics."""
    stats = data.info["statistics"]
    std = np.asarray(stats["std"])
    return data.x[split] * np.where(std > 0, std, 1.0) + np.asarray(stats["mean"])


def test_last_value_per_step_carried_forward_with_observed_masks():
    data = datasets.from_long_table(SERIES, **COLUMNS, **OUTCOMES, **ALL_TRAIN)
    assert data.feature_names == ["HR", "Temp", "HR_observed", "Temp_observed"]
    np.testing.assert_array_equal(data.info["ids"]["train"], ["a", "b"])
    means = data.info["statistics"]["series_means"]
    assert means == pytest.approx([(72 + 80 + 90) / 3, 36.5])
    expected = [
        [[72, means[1], 1, 0], [80, means[1], 1, 0], [90, 37, 1, 1]],
        [[means[0], 36, 0, 1], [means[0], 36, 0, 0], [means[0], 36, 0, 0]],
    ]
    assert_close(raw_inputs(data), expected)
    flat = data.x["train"].reshape(-1, 4)
    np.testing.assert_allclose(flat.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(flat.std(axis=0), 1, rtol=1e-5)
    assert data.x["val"].shape == (0, 3, 4) and data.tasks == (DEATH,)


def test_times_as_timedeltas_hours_or_text():
    expected = datasets.from_long_table(SERIES, **COLUMNS, **OUTCOMES, **ALL_TRAIN)
    times = pd.to_timedelta(SERIES["time"] + ":00")
    # timedeltas, hours, and text such as "0 days 00:20:00"
    for converted in (times, times.dt.total_seconds() / 3600, times.astype(str)):
        frame = SERIES.assign(time=converted)
        data = datasets.from_long_table(frame, **COLUMNS, **OUTCOMES, **ALL_TRAIN)
        np.testing.assert_array_equal(data.x["train"], expected.x["train"])


def test_any_step_length():
    data = datasets.from_long_table(
        SERIES, **COLUMNS, **OUTCOMES, split=(100, 0), steps=2, step="30min"
    )
    raw = raw_inputs(data)
    # a: HR 72 in [0, 30 min); b: Temp at 00:30 opens the second step
    assert_close(raw[0, :, 0], [72, 72])
    assert_close(raw[1, :, 1], [36, 36])
    assert_close(raw[1, :, 3], [0, 1])
    assert datasets.from_long_table(
        SERIES, **COLUMNS, **OUTCOMES, split=(100, 0), steps=1, step=0.5
    ).x["train"].shape == (2, 1, 4)


STATIC = long_table(
    [
        ("a", "00:00", "Age", 50),
        ("a", "00:00", "Unit", 2),
        ("a", "00:00", "Kind", 7),
        ("a", "00:00", "Weight", 80),  # the descriptor
        ("a", "00:00", "Weight", 81),  # a second value at 00:00: a series value
        ("a", "01:30", "Weight", -1),  # unknown
        ("b", "00:00", "Age", -1),  # unknown: the train mean
        ("b", "00:00", "Unit", 5),  # not a category: no column set
        ("b", "00:00", "Kind", 3),
        ("b", "00:10", "Weight", 70),  # not at 00:00: a series value only
        ("c", "00:00", "Age", 70),
        ("c", "00:00", "Weight", 60),
    ]
)


def test_static_descriptors_numeric_and_categorical():
    data = datasets.from_long_table(
        STATIC,
        **COLUMNS,
        **OUTCOMES,
        series=["Weight"],
        static=["Age", "Unit", "Weight", "Kind"],
        categorical={"Unit": (1, 2, 3), "Kind": None},
        na_values=(-1,),
        split=(67, 0),
        seed=0,  # permutation [2, 0, 1]: train a and c, test b
        steps=2,
        step="1h",
    )
    np.testing.assert_array_equal(data.info["ids"]["train"], ["a", "c"])
    stats = data.info["statistics"]
    assert stats["categories"] == {"Unit": [1, 2, 3], "Kind": [7.0]}
    assert stats["static_means"] == [60.0, 70.0]  # Age, Weight
    assert data.feature_names == [
        "Weight",
        "Weight_observed",
        "static_Age",
        "static_Unit_1",
        "static_Unit_2",
        "static_Unit_3",
        "static_Weight",
        "static_Kind_7",
    ]
    train, test = raw_inputs(data, "train"), raw_inputs(data, "test")
    assert_close(train[0], [[81, 1, 50, 0, 1, 0, 80, 1], [81, 0, 50, 0, 1, 0, 80, 1]])
    assert_close(train[1, :, 0], [81, 81])  # train mean
    assert_close(train[1, :, 2:], [[70, 0, 0, 0, 60, 0]] * 2)
    assert_close(test[0], [[70, 1, 60, 0, 0, 0, 70, 0], [70, 0, 60, 0, 0, 0, 70, 0]])


LABELS = long_table(
    [
        ("a", "00:05", "HR", 70),
        ("a", "00:00", "alarm", 1),  # t = 0: the first step
        ("a", "01:00", "alarm", 0),  # the end of step 0: replaces the 1
        ("a", "01:30", "alarm", 1),  # step 1
        ("a", "03:00", "alarm", 2),  # the grid's end: step 2
        ("b", "00:10", "HR", 60),
        ("c", "00:10", "HR", 65),
        ("c", "02:30", "alarm", -1),  # unknown
    ]
)
TARGETS = (
    Task("alarm", "multiclass", output_size=3, per_step=True),
    Task("death", "binary"),
)


@pytest.mark.parametrize("keyed_by", ["index", "column"])
def test_per_step_and_per_sequence_labels(keyed_by):
    outcomes = pd.DataFrame({"death": [1, -1, 0, 1]}, index=["a", "b", "c", "z"])
    if keyed_by == "column":
        outcomes = outcomes.rename_axis("id").reset_index()
    data = datasets.from_long_table(
        LABELS,
        **COLUMNS,
        targets=TARGETS,
        outcomes=outcomes,
        na_values=(-1,),
        **ALL_TRAIN,
    )
    assert data.feature_names == ["HR", "HR_observed"]
    assert list(data.y["train"]) == ["alarm", "death"]
    nan = np.nan
    np.testing.assert_array_equal(
        data.y["train"]["alarm"], [[0, 1, 2], [nan, nan, nan], [nan, nan, nan]]
    )
    np.testing.assert_array_equal(data.y["train"]["death"], [1, nan, 0])


def test_statistics_encode_another_table_as_the_first():
    first = datasets.from_long_table(SERIES, **COLUMNS, **OUTCOMES, **ALL_TRAIN)
    stats = json.loads(json.dumps(first.info["statistics"]))  # as saved
    other = long_table([("d", "00:00", "Temp", 38), ("e", "01:00", "HR", 100)])
    data = datasets.from_long_table(
        other, **COLUMNS, **OUTCOMES, statistics=stats, **ALL_TRAIN
    )
    assert data.info["statistics"] == first.info["statistics"]
    means = stats["series_means"]
    expected = [
        [[means[0], 38, 0, 1], [means[0], 38, 0, 0], [means[0], 38, 0, 0]],
        [[means[0], means[1], 0, 0], [100, means[1], 1, 0], [100, means[1], 0, 0]],
    ]
    assert_close(raw_inputs(data), expected)
    with (
        pytest.raises(MMoEExError, match=r"statistics are for the features"),
        pytest.warns(UserWarning, match="ignoring 1 rows"),
    ):
        datasets.from_long_table(
            other, **COLUMNS, **OUTCOMES, series=["HR"], statistics=stats, **ALL_TRAIN
        )
    with pytest.raises(MMoEExError, match=r"statistics lack \['mean'\]"):
        del stats["mean"]
        datasets.from_long_table(
            other, **COLUMNS, **OUTCOMES, statistics=stats, **ALL_TRAIN
        )


def test_unknown_variables_are_counted():
    with pytest.warns(UserWarning) as caught:
        datasets.from_long_table(
            SERIES, **COLUMNS, **OUTCOMES, series=["HR"], **ALL_TRAIN
        )
    (message,) = [str(w.message) for w in caught]
    assert message == "long_table: ignoring 2 rows of 1 unknown variable(s): Temp (2)."


BAD_INPUT = [  # (cells of row 1 changed, arguments, error)
    ({"id": 5}, {}, r"column 'id' mixes kinds of ids"),
    ({"time": "12h30"}, {}, r"column 'time' must hold times .* '12h30' in 1 row"),
    ({"value": "high"}, {}, r"column 'value' must hold numbers, found 'high'"),
    ({}, {"step": "often"}, r"step 'often' is not a duration"),
    ({}, {"step": "-1h"}, r"step must be positive"),
    (
        {},
        {"targets": TARGETS[1:], "outcomes": None},
        r"targets \['death'\] need an outcomes",
    ),
    ({}, {"targets": TARGETS[:1]}, r"per-step target 'alarm' has no value"),
    (
        {},
        {"targets": TARGETS[1:], "outcomes": pd.DataFrame({"death": [1]}, ["a"])},
        r"no row for 1 id\(s\) with data, e.g. \['b'\]",
    ),
    (
        {},
        {
            "targets": TARGETS[1:],
            "outcomes": pd.DataFrame({"dead": [1, 0]}, ["a", "b"]),
        },
        r"the outcomes lacks the columns \['death'\]",
    ),
    (
        {},
        {
            "targets": TARGETS[1:],
            "outcomes": pd.DataFrame({"death": [1, "x"]}, ["a", "b"]),
        },
        r"outcome column 'death' must hold numbers, found 'x' for id 'b'",
    ),
]


def test_bad_input():
    for change, arguments, match in BAD_INPUT:
        frame = SERIES.astype(object)
        for column, text in change.items():
            frame.loc[1, column] = text
        kwargs = {**COLUMNS, **OUTCOMES, **ALL_TRAIN, **arguments}
        with pytest.raises(MMoEExError, match=match):
            datasets.from_long_table(frame, **kwargs)
    with pytest.raises(MMoEExError, match=r"lacks the columns \['time'\]"):
        datasets.from_long_table(SERIES.drop(columns="time"), **kwargs)
