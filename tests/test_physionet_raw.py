"""physio4 on small raw PhysioNet 2012 sets written here: one RECORDID.txt per stay."""

import json

import keras
import numpy as np
import pytest

import mmoeex_tf as mt
from mmoeex_tf import datasets, runs
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs.config import RunConfig
from mmoeex_tf.runs.data import model_to_save, saved_data_options

OUTCOMES_HEADER = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"


def write_physionet_set(folder, stays, outcomes_file=None):
    """Writes per-stay RECORDID.txt files and their outcomes.

    The outcomes go to `outcomes_file`, by default `Outcomes-a.txt` beside
    the folder.
    """
    folder.mkdir(parents=True)
    outcomes = [OUTCOMES_HEADER]
    for record, static in stays.items():
        lines = ["Time,Parameter,Value", f"00:00,RecordID,{record}"]
        lines += [f"00:00,{name},{value}" for name, value in static.items()]
        lines += [f"00:07,HR,{70 + record % 10}", f"05:30,HR,{90 + record % 7}"]
        lines += ["02:00,Temp,36.6", "47:59,Weight,80.5"]
        (folder / f"{record}.txt").write_text("\n".join(lines) + "\n")
        outcomes.append(f"{record},10,{record % 3},5,-1,{record % 2}")
    target = outcomes_file or folder.parent / "Outcomes-a.txt"
    target.write_text("\n".join(outcomes) + "\n")


def stays_with(descriptors):
    """20 stays with the given static descriptors (Height sometimes -1)."""
    values = {
        "Age": lambda i: 40 + 3 * i,
        "Gender": lambda i: i % 2,
        "Height": lambda i: -1 if i % 3 == 0 else 150 + 2 * i,
        "ICUType": lambda i: 1 + i % 4,
        "Weight": lambda i: 60.5 + i,
    }
    return {
        132539 + i: {name: values[name](i) for name in descriptors} for i in range(20)
    }


ALL = ("Age", "Gender", "Height", "ICUType", "Weight")
NO_ICU_TYPE = ("Age", "Gender", "Height", "Weight")


def all_rows(data):
    """The record ids and inputs of every split, in one array each."""
    records = np.concatenate([data.info["record_ids"][s] for s in data.x])
    return records, np.concatenate([data.x[s] for s in data.x])


@pytest.mark.parametrize("descriptors", [ALL, NO_ICU_TYPE], ids=["all", "no-icutype"])
def test_static_descriptors_of_every_stay(tmp_path, descriptors):
    """With every descriptor at 00:00 the descriptor table needs no reindexing
    (pandas then may hand out a read-only array); ICUType is one-hot."""
    stays = stays_with(descriptors)
    write_physionet_set(tmp_path / "set-a", stays)
    # only HR, Temp and Weight are measured
    never = r"'pH'\]" if "ICUType" in descriptors else r"'pH', 'ICUType'\]"
    with pytest.warns(UserWarning, match=never + " never observed"):
        data = datasets.load_physio4(tmp_path / "set-a")
    records, inputs = all_rows(data)
    assert len(records) == len(stays) and inputs.shape[1:] == (48, 82)
    assert np.isfinite(inputs).all()
    assert (inputs == inputs[:, :1])[..., 74:].all()  # static: the same every step
    names = data.feature_names
    for name in ("Age", "Weight"):
        column = inputs[:, 0, names.index(f"static_{name}")]
        raw = np.array([stays[r][name] for r in records], dtype=float)
        slope, intercept = np.polyfit(raw, column, 1)
        np.testing.assert_allclose(column, slope * raw + intercept, atol=1e-5)
        assert slope > 0
    height = inputs[:, 0, names.index("static_Height")]
    unknown = np.array([stays[r]["Height"] == -1 for r in records])
    np.testing.assert_allclose(height[unknown], 0.0, atol=1e-5)  # the train mean
    icu = inputs[:, 0, [names.index(f"static_ICUType_{t}") for t in (1, 2, 3, 4)]]
    if "ICUType" in descriptors:  # one-hot: the largest value marks the type
        types = np.array([stays[r]["ICUType"] for r in records])
        np.testing.assert_array_equal(icu.argmax(axis=1) + 1, types)
        assert data.info["statistics"]["categories"] == {"ICUType": [1, 2, 3, 4]}
    else:
        assert (icu == 0).all()
    hr = names.index("HR_observed")
    np.testing.assert_array_equal(
        np.flatnonzero(inputs[0, :, hr] > inputs[0, :, hr].min()), [0, 5]
    )


def test_counts_the_rows_of_unknown_parameters(tmp_path):
    write_physionet_set(tmp_path / "set-a", stays_with(("Age", "Gender")))
    record = tmp_path / "set-a" / "132539.txt"
    record.write_text(record.read_text() + "01:00,,3\n01:10,,4\n02:00,Foo,1\n")
    with pytest.warns(UserWarning) as caught:
        datasets.load_physio4(tmp_path / "set-a")
    (message,) = [str(w.message) for w in caught if "unknown" in str(w.message)]
    assert message == (
        "physio4: ignoring 3 rows of 2 unknown variable(s): nan (2), Foo (1)."
    )


def test_outcomes_file_given(tmp_path):
    elsewhere = tmp_path / "labels" / "mortality.csv"
    elsewhere.parent.mkdir()
    write_physionet_set(tmp_path / "set-b", stays_with(ALL), elsewhere)
    with pytest.raises(MMoEExError, match=r"no Outcomes\*\.txt file"):
        datasets.load_physio4(tmp_path / "set-b")
    with pytest.warns(UserWarning, match="never observed"):
        data = datasets.load_physio4(tmp_path / "set-b", outcomes=elsewhere)
    records, _ = all_rows(data)
    labels = np.concatenate([data.y[s]["ihm"] for s in data.x])
    np.testing.assert_array_equal(labels, records % 2)
    with pytest.raises(MMoEExError, match="physio4 outcomes file: .* does not exist"):
        datasets.load_physio4(tmp_path / "set-b", outcomes=tmp_path / "nothing.txt")
    config = RunConfig(
        data="physio4", data_path=str(tmp_path / "set-b"), outcomes=str(elsewhere)
    )
    with pytest.warns(UserWarning, match="never observed"):
        again = runs.load_run_data(config)
    np.testing.assert_array_equal(again.x["test"], data.x["test"])
    with pytest.raises(MMoEExError, match="outcomes apply to the physio4 data set"):
        runs.load_run_data(RunConfig(data="census3", outcomes=str(elsewhere)))


def test_statistics_travel_with_the_model(tmp_path):
    """A model trained on one set encodes another with the first set's statistics."""
    write_physionet_set(tmp_path / "a" / "set-a", stays_with(ALL))
    other = {r + 100: {**d, "Age": d["Age"] + 30} for r, d in stays_with(ALL).items()}
    write_physionet_set(tmp_path / "b" / "set-a", other)
    with pytest.warns(UserWarning, match="never observed"):
        first = datasets.load_physio4(tmp_path / "a" / "set-a")
    model = mt.MMoEExModel(first.tasks, mt.DenseExperts(2, 4), alpha=0.5)
    model.build((None, 48, 82))
    saved = model_to_save(model, first)
    assert isinstance(saved, datasets.InputStatisticsModel)
    saved.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    options = saved_data_options(loaded)
    assert json.loads(json.dumps(options)) == {"statistics": first.info["statistics"]}
    assert saved_data_options(model) == {}
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
    with pytest.warns(UserWarning, match="never observed"):
        own = runs.load_data("physio4", tmp_path / "b" / "set-a")
    encoded = runs.load_data("physio4", tmp_path / "b" / "set-a", options)
    age = first.feature_names.index("static_Age")
    stats = first.info["statistics"]
    raw = np.array([other[r]["Age"] for r in encoded.info["record_ids"]["train"]])
    np.testing.assert_allclose(
        encoded.x["train"][:, 0, age],
        (raw - stats["mean"][age]) / stats["std"][age],
        rtol=1e-6,
    )
    assert encoded.x["train"][:, 0, age].mean() > 1.5  # 30 years = 1.7 sd older
    assert abs(own.x["train"][:, 0, age].mean()) < 1e-5  # its own statistics
    with pytest.raises(MMoEExError, match="cannot be loaded with the arguments"):
        runs.load_data("synthetic", options=options)
