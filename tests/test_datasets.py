"""Tests of mmoeex_tf.datasets on the shared real data and small made-up files."""

import dataclasses
import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mmoeex_tf import Task, datasets, runs
from mmoeex_tf.analysis.scores import score_model
from mmoeex_tf.datasets import molecule_features, physionet
from mmoeex_tf.errors import MMoEExError
from mmoeex_tf.runs.config_files import recipe

CENSUS_FILE = "census_income_kdd/census-income.test.gz"
CENSUS_SPLIT = "census_income_kdd/split_seed2021.npz"
PHYSIO = "physionet2012"
TOX21 = "moleculenet/tox21.csv"
TOXCAST = "moleculenet/toxcast.csv.gz"


def shared(shared_data, relative):
    """A file or folder of the shared data, or skips the test when it is missing."""
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"shared data {relative} not found")
    return path


@pytest.fixture(scope="module")
def census():
    return datasets.load_census3()


@pytest.fixture(scope="module")
def physio_path(shared_data):
    return shared(shared_data, PHYSIO)


@pytest.fixture(scope="module")
def physio(physio_path):
    with pytest.warns(UserWarning, match="ICUType"):  # absent from the packing
        return datasets.load_physio4(physio_path)


@pytest.fixture(scope="module")
def outcomes(physio_path):
    return pd.read_csv(physio_path / "Outcomes-a.txt").set_index("RecordID")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fingerprints")


@pytest.fixture(scope="module")
def tox21_path(shared_data):
    return shared(shared_data, TOX21)


@pytest.fixture(scope="module")
def tox21(tox21_path, cache_dir):
    with pytest.warns(UserWarning, match="could not parse 8 SMILES"):
        return datasets.load_tox21(tox21_path, cache_dir=cache_dir)


# census3


def test_census3_shapes_and_split(census, shared_data):
    assert [t.name for t in census.tasks] == ["income", "marital", "education"]
    assert {s: census.x[s].shape for s in census.x} == {
        "train": (59857, 620),
        "val": (19952, 620),
        "test": (19953, 620),
    }
    assert len(census.feature_names) == 620
    expected = np.load(shared(shared_data, CENSUS_SPLIT))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(census.info["rows"][split], expected[split])
        assert census.x[split].dtype == np.float32
        for labels in census.y[split].values():
            assert labels.shape == (len(census.x[split]),)


def test_census3_label_rates(census):
    measured = {"income": 0.06155, "marital": 0.43225, "education": 0.14643}
    for task, rate in measured.items():
        assert census.y["train"][task].mean() == pytest.approx(rate, abs=5e-4)
        assert census.y["test"][task].mean() == pytest.approx(rate, abs=0.01)


def test_census3_features_scaled_on_train(census):
    train = census.x["train"]
    assert train.min() == 0.0 and train.max() == 1.0
    numeric = [census.feature_names.index(n) for n in ("age", "capital gains")]
    assert (train[:, numeric].min(axis=0) == 0).all()
    assert (train[:, numeric].max(axis=0) == 1).all()
    one_hot = [i for i, n in enumerate(census.feature_names) if n.startswith("sex=")]
    assert (train[:, one_hot].sum(axis=1) == 1).all()


def test_census3_numeric_columns_encoded_on_train_quantile_bins(census):
    names = census.feature_names
    assert len(names) == 620
    bins = [i for i, n in enumerate(names) if n.startswith("age in [")]
    # 128 quantile bins of ages 0-90; quantiles that fall on the same age merge.
    assert 60 <= len(bins) <= 90
    assert bins == list(
        range(names.index("age") + 1, names.index("age") + 1 + len(bins))
    )
    low, high = (
        np.array(v, dtype=float) for v in zip(*(_edges(names[i]) for i in bins))
    )
    assert low[0] == 0 and high[-1] == 90
    np.testing.assert_array_equal(low[1:], high[:-1])  # the bins tile [0, 90]
    # Ages min-max scaled: bin [lo, hi) holds clip((age - lo) / (hi - lo), 0, 1).
    age = census.x["train"][:, names.index("age")] * 90.0
    expected = np.clip((age[:, None] - low) / (high - low), 0, 1)
    np.testing.assert_allclose(census.x["train"][:, bins], expected, atol=1e-5)
    # Each bin holds at most a few quantiles' worth of train rows.
    inside = ((age[:, None] >= low) & (age[:, None] < high)).mean(axis=0)
    assert inside.max() < 0.05
    # Capital gains are 0 in over 90 % of rows: its first bin starts at 0 and
    # the upper quantiles split the rest.
    gains = [n for n in names if n.startswith("capital gains in [")]
    assert gains[0].startswith("capital gains in [0, ") and gains[-1].endswith(
        ", 99999)"
    )


def _edges(name):
    """`(lo, hi)` of a bin feature named `"<column> in [lo, hi)"`."""
    low, high = name.split(" in [")[1].rstrip(")").split(", ")
    return float(low), float(high)


def test_census3_no_leakage_from_test_rows(census, tmp_path):
    """Changing a test row changes that row only, never the train arrays."""
    bundled = Path(datasets.census.__file__).parent / "data" / "census-income.test.gz"
    lines = gzip.decompress(bundled.read_bytes()).split(b"\n")
    row = census.info["rows"]["test"][0]
    fields = lines[row].split(b", ")
    fields[0], fields[1] = b"999", b"Martian"
    lines[row] = b", ".join(fields)
    changed = tmp_path / "census-income.test"
    changed.write_bytes(b"\n".join(lines))
    data = datasets.load_census3(changed)
    np.testing.assert_array_equal(data.x["train"], census.x["train"])
    np.testing.assert_array_equal(data.x["val"], census.x["val"])
    age = census.feature_names.index("age")
    workers = [
        i
        for i, n in enumerate(census.feature_names)
        if n.startswith("class of worker=")
    ]
    assert data.x["test"][0, age] > 1.0
    assert (data.x["test"][0, workers] == 0).all()
    age_bins = [i for i, n in enumerate(census.feature_names) if n.startswith("age in")]
    assert (data.x["test"][0, age_bins] == 1.0).all()  # above every train bin
    np.testing.assert_array_equal(data.x["test"][1:], census.x["test"][1:])


def test_census3_user_path_matches_bundled(census, shared_data):
    data = datasets.load_census3(shared(shared_data, CENSUS_FILE))
    for split in ("train", "test"):
        np.testing.assert_array_equal(data.x[split], census.x[split])
        np.testing.assert_array_equal(
            data.y[split]["income"], census.y[split]["income"]
        )


def _truncated_gzip(path):
    whole = gzip.compress(b"".join(b"%d, Private, 6\n" % i for i in range(20000)))
    path.write_bytes(whole[: len(whole) // 2])


@pytest.mark.parametrize(
    ("name", "write", "match"),
    [
        ("empty.csv", lambda p: p.write_text(""), "is empty"),
        ("three.csv", lambda p: p.write_text("1,2,3\n4,5,6\n"), "42"),
        ("tabs.csv", lambda p: p.write_text("\t".join(["1"] * 42) + "\n"), "42"),
        ("latin1.csv", lambda p: p.write_bytes(b"caf\xe9, 1\n"), "UTF-8"),
        ("cut.csv.gz", _truncated_gzip, "gzip"),
        ("labels.csv", lambda p: p.write_text(", ".join(["7"] * 42) + "\n"), "last"),
    ],
)
def test_census3_bad_files(tmp_path, name, write, match):
    path = tmp_path / name
    write(path)
    with pytest.raises(MMoEExError, match=match):
        datasets.load_census3(path)


def test_census3_missing_path(tmp_path):
    with pytest.raises(MMoEExError, match="does not exist"):
        datasets.load_census3(tmp_path / "nowhere.data.gz")


def test_tf_dataset_and_summary(census):
    dataset = census.tf_dataset("val", batch_size=1000, shuffle=True, seed=1)
    x_spec, y_spec = dataset.element_spec
    assert x_spec == tf.TensorSpec((None, 620), tf.float32)
    assert y_spec == {t: tf.TensorSpec((None,), tf.float32) for t in y_spec}
    assert list(y_spec) == ["income", "marital", "education"]
    first, second = (next(iter(dataset))[0].numpy() for _ in range(2))
    assert not np.array_equal(first, second)  # reshuffled on each iteration
    assert sum(1 for _ in dataset) == 20
    assert "train 59,857" in census.summary() and "education" in census.summary()
    with pytest.raises(MMoEExError, match="splits"):
        census.split("validation")


def test_shuffled_epochs_depend_on_seed_and_epoch_only(census):
    def epochs(first_epoch, seed=3):
        dataset, steps = census.shuffled_epochs("val", 1024, seed, 3, first_epoch)
        batches = [y["income"].numpy() for _, y in dataset]
        return steps, [np.concatenate(batches[i : i + steps]) for i in (0, steps)]

    steps, (epoch_0, epoch_1) = epochs(0)
    _, (resumed_epoch_1, resumed_epoch_2) = epochs(1)
    labels = census.split("val")[1]["income"]
    assert steps == -(-len(labels) // 1024)
    np.testing.assert_array_equal(epoch_1, resumed_epoch_1)
    for epoch in (epoch_0, epoch_1, resumed_epoch_2):  # whole permutations
        assert len(epoch) == len(labels) and epoch.sum() == labels.sum()
    assert not np.array_equal(epoch_0, epoch_1)
    assert not np.array_equal(epoch_1, epochs(1, seed=4)[1][0])


# physio4


def test_physio4_shapes_and_split(physio):
    sizes = {"train": 2797, "val": 599, "test": 600}
    assert [t.name for t in physio.tasks] == ["ihm", "los", "decomp", "sofa"]
    assert len(physio.feature_names) == 82
    ids = physio.info["record_ids"]
    assert len(np.unique(np.concatenate(list(ids.values())))) == 3996
    for split, n in sizes.items():
        assert physio.x[split].shape == (n, 48, 82)
        assert len(ids[split]) == n
        labels = physio.y[split]
        assert labels["ihm"].shape == labels["sofa"].shape == (n,)
        assert labels["los"].shape == labels["decomp"].shape == (n, 48)


def test_physio4_labels_follow_outcomes(physio, outcomes):
    for split, ids in physio.info["record_ids"].items():
        rows = outcomes.loc[ids]
        labels = physio.y[split]
        np.testing.assert_array_equal(np.isnan(labels["sofa"]), rows["SOFA"] == -1)
        np.testing.assert_array_equal(labels["ihm"], rows["In-hospital_death"])
        los = labels["los"]
        unknown = (rows["Length_of_stay"] == -1).to_numpy()
        assert np.isnan(los[unknown]).all() and not np.isnan(los[~unknown]).any()
        assert ((los[~unknown] >= 0) & (los[~unknown] < 10)).all()
        assert set(np.unique(labels["decomp"])) <= {0.0, 1.0}


def _stay(data, record_id):
    for split, ids in data.info["record_ids"].items():
        if record_id in ids:
            return data.y[split], int(np.flatnonzero(ids == record_id)[0])
    raise AssertionError(f"stay {record_id} not loaded")


def test_physio4_per_step_labels_by_hand(physio):
    labels, i = _stay(physio, 132539)  # 5 days in ICU, survived
    assert labels["los"][i, 0] == 4  # 119 h left after hour 1
    assert labels["los"][i, 47] == 3  # 72 h left after hour 48
    assert (labels["decomp"][i] == 0).all()
    labels, i = _stay(physio, 132922)  # 2 days in ICU, died on day 1
    assert (labels["decomp"][i] == 1).all()
    assert labels["los"][i, 23] == 1 and labels["los"][i, 24] == 0  # 24 h / 23 h


def test_physio4_inputs_take_the_last_value_of_each_hour(physio):
    split = next(s for s, ids in physio.info["record_ids"].items() if 132539 in ids)
    stay = int(np.flatnonzero(physio.info["record_ids"][split] == 132539)[0])
    heart_rate = physio.x[split][stay, :3, physio.feature_names.index("HR")]
    # HR 73 at 00:07 and 77 at 00:37, 60 at 01:37, 62 at 02:37: 77 - 60 = 8.5 * 2
    step_0, step_1, step_2 = heart_rate
    assert (step_0 - step_1) / (step_2 - step_1) == pytest.approx(8.5, rel=1e-4)


def test_physio4_inputs_standardised_and_carried_forward(physio):
    train = physio.x["train"].reshape(-1, 82)
    assert np.abs(train.mean(axis=0)).max() < 1e-3
    std = train.std(axis=0)
    constant = [physio.feature_names[i] for i in np.flatnonzero(std < 1e-6)]
    # MechVent is always 1; the packing has no ICUType: all zeros
    assert constant == ["MechVent"] + [f"static_ICUType_{i}" for i in (1, 2, 3, 4)]
    assert np.allclose(np.delete(std, np.flatnonzero(std < 1e-6)), 1, atol=2e-3)
    values, masks = physio.x["train"][..., :37], physio.x["train"][..., 37:74]
    unobserved = masks[:, 1:] < masks.reshape(-1, 37).max(axis=0)
    np.testing.assert_array_equal(values[:, 1:][unobserved], values[:, :-1][unobserved])
    static = physio.x["train"][..., 74:]
    assert (static == static[:, :1]).all()


def test_physio4_raw_and_packed_layouts_agree(physio_path, tmp_path):
    events = pd.concat(
        pd.read_csv(f) for f in sorted(physio_path.glob("set-a.long.part*.csv.gz"))
    )
    records = np.unique(events["RecordID"])[:20]
    subset = events[events["RecordID"].isin(records)]
    packed, raw = tmp_path / "packed", tmp_path / "raw" / "set-a"
    packed.mkdir()
    raw.mkdir(parents=True)
    subset.to_csv(packed / "set-a.long.part00.csv.gz", index=False)
    shutil.copy(physio_path / "Outcomes-a.txt", packed)
    shutil.copy(physio_path / "Outcomes-a.txt", raw.parent)
    for record, stay in subset.groupby("RecordID"):
        stay.drop(columns="RecordID").to_csv(raw / f"{record}.txt", index=False)
    with pytest.warns(UserWarning, match="never observed"):
        from_packed = datasets.load_physio4(packed)
    with pytest.warns(UserWarning, match="never observed"):
        from_raw = datasets.load_physio4(raw)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(
            from_packed.info["record_ids"][split], from_raw.info["record_ids"][split]
        )
        np.testing.assert_array_equal(from_packed.x[split], from_raw.x[split])
        for task, labels in from_packed.y[split].items():
            np.testing.assert_array_equal(labels, from_raw.y[split][task])


def test_from_long_table_gives_the_physio4_arrays(physio, physio_path, outcomes):
    """physio4 is `from_long_table` on the events, with the per-step labels as
    rows at the end of each hour, and the outcomes renamed to the tasks."""
    events = pd.concat(
        pd.read_csv(f) for f in sorted(physio_path.glob("set-a.long.part*.csv.gz"))
    )
    events = events[events["Parameter"] != "RecordID"]
    stays = outcomes.loc[np.unique(events["RecordID"])]
    hours = np.arange(1, 49)
    remaining = 24 * stays["Length_of_stay"].to_numpy()[:, None] - hours
    days = np.floor(remaining / 24)  # classes: < 1 day, days 1-7, 8-13, more
    los = np.where(days < 8, np.maximum(days, 0), np.where(days < 14, 8, 9))
    los[stays["Length_of_stay"] == -1] = np.nan
    survival = stays["Survival"].to_numpy()[:, None]
    decomp = (survival >= 0) & (24 * survival <= hours + 24)
    rows = {
        "RecordID": np.repeat(stays.index, 48),
        "Time": np.tile([f"{h:02d}:00" for h in hours], len(stays)),
    }
    labels = [
        pd.DataFrame({**rows, "Parameter": name, "Value": values.ravel()})
        for name, values in (("los", los), ("decomp", decomp.astype(float)))
    ]
    with pytest.warns(UserWarning, match="ICUType"):
        data = datasets.from_long_table(
            pd.concat([events, *labels]),
            id="RecordID",
            time="Time",
            variable="Parameter",
            value="Value",
            targets=physionet.TASKS,
            series=physionet.TIME_SERIES,
            static=("Age", "Gender", "Height", "ICUType", "Weight"),
            categorical={"ICUType": (1, 2, 3, 4)},
            outcomes=outcomes.rename(
                columns={"In-hospital_death": "ihm", "SOFA": "sofa"}
            ),
            na_values=(-1,),
            steps=48,
            step="1h",
            split=(70, 15),
            seed=2021,
            name="physio4",
        )
    assert data.feature_names == physio.feature_names
    assert data.info["statistics"] == physio.info["statistics"]
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(
            data.info["ids"][split], physio.info["record_ids"][split]
        )
        np.testing.assert_array_equal(data.x[split], physio.x[split])
        assert list(data.y[split]) == ["ihm", "los", "decomp", "sofa"]
        for task, values in physio.y[split].items():
            np.testing.assert_array_equal(data.y[split][task], values)


def test_physio4_needs_a_path(tmp_path):
    with pytest.raises(MMoEExError, match="PhysioNet"):
        datasets.load_physio4()
    with pytest.raises(MMoEExError, match="neither packed"):
        datasets.load_physio4(tmp_path)


def test_physio4_tf_dataset(physio):
    x_spec, y_spec = physio.tf_dataset("test", batch_size=64).element_spec
    assert x_spec == tf.TensorSpec((None, 48, 82), tf.float32)
    assert y_spec["los"] == tf.TensorSpec((None, 48), tf.float32)
    assert y_spec["ihm"] == tf.TensorSpec((None,), tf.float32)


@pytest.mark.slow
def test_physio4_recipe_beats_the_trivial_predictor_on_every_task(physio):
    """Two epochs of the recipe (summary experts, one network per task)."""
    config = dataclasses.replace(recipe("physio4"), epochs=2)
    model = runs.build_model(
        config, physio.tasks, physio.x["train"].shape[1:], len(physio.x["train"])
    )
    runs.train(model, physio, config, verbose=0)
    scores = score_model(model, *physio.split("val"))
    median = np.nanmedian(physio.y["train"]["sofa"])
    trivial_sofa = np.nanmean(np.abs(physio.y["val"]["sofa"] - median))
    assert scores["ihm"] > 0.8 and scores["decomp"] > 0.7, scores
    assert scores["los"] > 0.03, scores  # linear kappa; trivial 0
    assert scores["sofa"] < 0.8 * trivial_sofa, (scores, trivial_sofa)


# tox21 and toxcast


def test_tox21(tox21):
    assert len(tox21.tasks) == 12
    assert tox21.label_columns["NR_AR_LBD"] == "NR-AR-LBD"
    assert sum(len(x) for x in tox21.x.values()) == 7831 - 8
    width = 1024 + len(molecule_features.descriptor_names())
    assert {s: x.shape for s, x in tox21.x.items()} == {
        "train": (6258, width),
        "val": (782, width),
        "test": (783, width),
    }
    bits, descriptors = tox21.x["train"][:, :1024], tox21.x["train"][:, 1024:]
    assert set(np.unique(bits)) == {0.0, 1.0}
    # standardised with the train split's statistics, clipped at 1-99 %
    np.testing.assert_allclose(descriptors.mean(0), 0.0, atol=1e-5)
    assert descriptors.std(0).max() == pytest.approx(1.0, abs=1e-4)
    assert np.abs(tox21.x["test"][:, 1024:]).max() < 30
    labels = np.concatenate(
        [np.stack(list(tox21.y[s].values()), axis=1) for s in tox21.y]
    )
    assert np.isnan(labels).mean() == pytest.approx(0.1706, abs=5e-4)
    assert set(np.unique(labels[~np.isnan(labels)])) == {0.0, 1.0}


def test_tox21_second_load_uses_the_cache(tox21, tox21_path, cache_dir, monkeypatch):
    assert len(list(cache_dir.glob("morgan_r2_1024_*.npz"))) == 1
    assert len(list(cache_dir.glob("rdkit_descriptors_*.npz"))) == 1

    def recomputed(molecules):
        raise AssertionError("features recomputed despite the cache")

    monkeypatch.setattr(molecule_features, "morgan_fingerprints", recomputed)
    monkeypatch.setattr(molecule_features, "rdkit_descriptors", recomputed)
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="could not parse 8"):
        again = datasets.load_tox21(tox21_path, cache_dir=cache_dir)
    assert time.perf_counter() - start < 1.0
    for split in tox21.x:
        np.testing.assert_array_equal(again.x[split], tox21.x[split])


def test_toxcast(shared_data, cache_dir):
    data = datasets.load_toxcast(shared(shared_data, TOXCAST), cache_dir=cache_dir)
    assert len(data.tasks) == 617
    assert sum(len(x) for x in data.x.values()) == 8576  # RDKit parses them all
    assert data.x["train"].shape[1] == 1024 + len(molecule_features.descriptor_names())


def test_moleculenet_csv_bad_smiles(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("smiles,a-b,2x\nCCO,1,0\nnot_a_smiles,0,\nc1ccccc1,,1\nCC,0,0\n")
    with pytest.warns(UserWarning, match="could not parse 1 SMILES.*lines 3"):
        data = datasets.load_moleculenet_csv(path, cache_dir=tmp_path)
    assert data.name == "mols"
    assert data.label_columns == {"a_b": "a-b", "task_2x": "2x"}
    assert sum(len(x) for x in data.x.values()) == 3
    assert sorted(np.concatenate(list(data.info["rows"].values()))) == [0, 2, 3]
    for cache in tmp_path.glob("*.npz"):  # fingerprints and descriptors
        cache.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning) as caught:
        again = datasets.load_moleculenet_csv(path, cache_dir=tmp_path)
    unreadable = [str(w.message) for w in caught if "Unreadable" in str(w.message)]
    assert len(unreadable) == 2
    assert all("Unreadable feature cache" in message for message in unreadable)
    np.testing.assert_array_equal(again.x["train"], data.x["train"])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("smiles,a\nCCO,x\n", "no numeric label column.*'a'"),
        ("smile,a\nCCO,1\n", "'smiles'"),
    ],
)
def test_moleculenet_csv_bad_files(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(MMoEExError, match=match):
        datasets.load_moleculenet_csv(path, cache_dir=tmp_path)


# synthetic and the registry


@pytest.mark.parametrize("p", [0.5, 0.9, 1.0])
def test_synthetic_correlation(p):
    data = datasets.load_synthetic(correlation=p, seed=3)
    w1, w2 = data.info["weights"]
    assert np.corrcoef(w1, w2)[0, 1] == pytest.approx(p, abs=1e-9)
    assert np.linalg.norm(w1) == pytest.approx(1.0)
    assert {s: x.shape for s, x in data.x.items()} == {
        "train": (10000, 100),
        "val": (1000, 100),
        "test": (1000, 100),
    }
    linear = data.x["train"] @ np.stack([w1, w2], axis=1)
    assert np.corrcoef(linear.T)[0, 1] == pytest.approx(p, abs=0.03)


def test_synthetic_is_seeded():
    first, second = datasets.load_synthetic(seed=5), datasets.load_synthetic(seed=5)
    np.testing.assert_array_equal(first.y["test"]["y2"], second.y["test"]["y2"])
    with pytest.raises(MMoEExError, match="correlation"):
        datasets.load_synthetic(correlation=1.5)


def test_load_registry():
    assert datasets.DATASETS == (
        "census3",
        "physio4",
        "tox21",
        "toxcast",
        "moleculenet",
        "synthetic",
        "table",
    )
    assert datasets.load("synthetic", correlation=0.9).info["correlation"] == 0.9
    with pytest.raises(MMoEExError, match="did you mean 'census3'"):
        datasets.load("census")


def test_batches_are_the_arrays_rows_for_labels_of_every_shape():
    # Label columns are gathered in groups of one shape and dtype; every
    # batch must still hold each task's own rows, keys in task order.
    rng = np.random.default_rng(4)
    rows = 50
    tasks = [
        Task("b1", "binary"),
        Task("tags", "multilabel", output_size=3),
        Task("b2", "binary"),
        Task("r", "regression"),
    ]
    labels = {
        "b1": (rng.random(rows) < 0.5).astype("float32"),
        "tags": (rng.random((rows, 3)) < 0.5).astype("float32"),
        "b2": rng.random(rows).astype("float32"),
        "r": rng.normal(size=rows),  # float64: a group of its own
    }
    labels["b2"][::3] = np.nan
    x = rng.normal(size=(rows, 4)).astype("float32")
    split = {"x": x, "y": labels}
    data = datasets.MultiTaskData(
        "tiny",
        tasks,
        {s: split["x"] for s in ("train", "val", "test")},
        {s: split["y"] for s in ("train", "val", "test")},
        list("abcd"),
    )
    batches = list(data.tf_dataset("val", batch_size=16))
    assert [len(bx) for bx, _ in batches] == [16, 16, 16, 2]
    assert list(batches[0][1]) == ["b1", "tags", "b2", "r"]
    np.testing.assert_array_equal(np.concatenate([bx for bx, _ in batches]), x)
    for name, values in labels.items():
        got = np.concatenate([by[name] for _, by in batches])
        np.testing.assert_array_equal(got, values)
    shuffled, steps = data.shuffled_epochs("train", 16, seed=1, epochs=1)
    assert steps == 4
    x_rows = np.concatenate([bx for bx, _ in shuffled])
    order = [int(np.flatnonzero((x == row).all(1))[0]) for row in x_rows]
    assert sorted(order) == list(range(rows)) and order != list(range(rows))
    for name, values in labels.items():
        got = np.concatenate([by[name] for _, by in shuffled])
        np.testing.assert_array_equal(got, values[order])


def test_order_batches_are_consecutive_pieces_of_the_order():
    order = tf.constant([7, 2, 9, 0, 4, 8, 1], tf.int64)
    pieces = [p.numpy().tolist() for p in datasets.base.order_batches(order, 3)]
    assert pieces == [[7, 2, 9], [0, 4, 8], [1]]
    unshuffled = datasets.base.index_batches(5, 2)
    assert [p.numpy().tolist() for p in unshuffled] == [[0, 1], [2, 3], [4]]
    exact = datasets.base.order_batches(order[:6], 3)
    assert [p.numpy().tolist() for p in exact] == [[7, 2, 9], [0, 4, 8]]
    short = datasets.base.order_batches(order[:2], 3)
    assert [p.numpy().tolist() for p in short] == [[7, 2]]
