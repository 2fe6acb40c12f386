"""MoleculeNet-style CSV files of any shape: `--data moleculenet`."""

import json

import numpy as np
import pandas as pd
import pytest

from mmoeex_tf import datasets
from mmoeex_tf.cli import main
from mmoeex_tf.datasets import molecule_features
from mmoeex_tf.errors import MMoEExError

rdkit = pytest.importorskip("rdkit")
from rdkit import Chem  # noqa: E402
from rdkit.Chem.Scaffolds import MurckoScaffold  # noqa: E402

RINGS = ["c1ccccc1", "c1ccncc1", "C1CCCCC1", "c1ccc2ccccc2c1", "C1CCNCC1", "c1ccoc1"]
SUBSTITUENTS = ["C", "CC", "O", "N", "Cl", "CCC"]
# 36 molecules on 6 ring scaffolds, and 4 acyclic ones (the empty scaffold)
SMILES = [s + ring for ring in RINGS for s in SUBSTITUENTS] + [
    "CCO",
    "CCN",
    "CCCC",
    "CC",
]


def write(path, header, rows):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def load(path, **kwargs):
    return datasets.load_moleculenet_csv(
        path, cache_dir=path.parent / "cache", **kwargs
    )


def all_labels(data, task):
    return np.concatenate([data.y[s][task] for s in data.y])


def test_deepchem_file_with_mol_id_and_a_missing_label(tmp_path):
    rows = [
        f"CID{i},{s},{i % 2},{'' if i == 3 else (i // 2) % 2}"
        for i, s in enumerate(SMILES)
    ]
    data = load(write(tmp_path / "bace-like.csv", "mol_id,smiles,p-1,q", rows))
    assert data.name == "bace-like"
    assert [(t.name, t.kind) for t in data.tasks] == [
        ("p_1", "binary"),
        ("q", "binary"),
    ]
    assert data.label_columns == {"p_1": "p-1", "q": "q"}
    assert data.info["ignored_columns"] == ["mol_id"]
    assert sum(len(x) for x in data.x.values()) == len(SMILES)
    assert np.isnan(all_labels(data, "q")).sum() == 1
    descriptors = len(molecule_features.descriptor_names())
    assert data.x["train"].shape[1:] == (1024 + descriptors,)
    assert (
        data.feature_names[1024] == "rdkit_" + data.info["statistics"]["descriptors"][0]
    )
    assert load(tmp_path / "bace-like.csv", descriptors=False).x["train"].shape[1:] == (
        1024,
    )


def test_regression_labels_and_chosen_columns(tmp_path):
    rows = [f"{s},{-0.5 * i:.2f},{i * 1.5},name{i}" for i, s in enumerate(SMILES)]
    path = write(tmp_path / "esol.csv", "SMILES,logp,weight,Compound ID", rows)
    data = load(path, label_columns=["logp"])
    assert [(t.name, t.kind) for t in data.tasks] == [("logp", "regression")]
    assert set(data.info["ignored_columns"]) == {"weight", "Compound ID"}
    assert sorted(all_labels(data, "logp")) == sorted(-0.5 * np.arange(len(SMILES)))
    both = load(path)
    assert [t.name for t in both.tasks] == ["logp", "weight"]


def scaffold(smiles):
    return MurckoScaffold.MurckoScaffoldSmiles(mol=Chem.MolFromSmiles(smiles))


def test_scaffold_split_puts_each_scaffold_in_one_split(tmp_path):
    rows = [f"{s},{i % 2}" for i, s in enumerate(SMILES)]
    data = load(write(tmp_path / "m.csv", "smiles,y", rows), split="scaffold")
    scaffolds = {
        split: {scaffold(SMILES[row]) for row in rows}
        for split, rows in data.info["rows"].items()
    }
    assert scaffolds["train"].isdisjoint(scaffolds["val"])
    assert scaffolds["train"].isdisjoint(scaffolds["test"])
    assert scaffolds["val"].isdisjoint(scaffolds["test"])
    assert all(scaffolds.values())
    rows = np.concatenate(list(data.info["rows"].values()))
    assert sorted(rows) == list(range(len(SMILES)))
    random = load(tmp_path / "m.csv")
    assert random.info["split"] == "random" and data.info["split"] == "scaffold"


@pytest.mark.parametrize(
    "header, rows, kwargs, match",
    [
        ("mol_id,smile,y", ["a,CCO,1"], {}, "no SMILES column.*'mol_id', 'smile'"),
        (
            "id,smiles,y",
            ["a,CCO,1"],
            {"smiles_column": "SMILE"},
            "no SMILES column 'SMILE'",
        ),
        (
            "id,smiles,y",
            ["a,CCO,1"],
            {"label_columns": ["id"]},
            "'id' must hold numbers",
        ),
        ("id,smiles,y", ["a,CCO,1"], {"label_columns": ["z"]}, "no label column 'z'"),
        ("id,smiles", ["a,CCO"], {}, "no numeric label column.*'id'"),
        ("smiles,y", ["CCO,1"], {"split": "cluster"}, "random.*scaffold"),
    ],
)
def test_bad_files_name_the_column(tmp_path, header, rows, kwargs, match):
    with pytest.raises(MMoEExError, match=match):
        load(write(tmp_path / "bad.csv", header, rows), **kwargs)


def test_unparsable_smiles_are_counted(tmp_path):
    rows = [f"{s},{i % 2}" for i, s in enumerate(SMILES)] + ["C1CC,1", "xyz,0", ",1"]
    with pytest.warns(UserWarning, match="could not parse 3 SMILES"):
        data = load(write(tmp_path / "m.csv", "smiles,y", rows))
    assert sum(len(x) for x in data.x.values()) == len(SMILES)


def test_train_and_evaluate_from_the_command_line(tmp_path, monkeypatch, capsys):
    rows = [f"CID{i},{s},{i % 5 - 2.0},{i % 2}" for i, s in enumerate(SMILES)]
    path = write(tmp_path / "lipo.csv", "mol_id,smiles,lipo,active", rows)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMOEEX_CACHE", str(tmp_path / "cache"))
    options = ["--data", "moleculenet", "--data-path", str(path), "--split", "scaffold"]
    options += ["--label-columns", "lipo", "active", "--epochs", "1", "--experts", "2"]
    assert main(["train", *options, "--no-recipe", "-q"]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("lipo-mmoeex-")
    metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    assert set(metrics["test"]) == {"lipo", "active"}
    capsys.readouterr()
    model = str(folder / "model.keras")
    args = ["evaluate", model, "--data", "moleculenet", "--data-path", str(path)]
    assert main([*args, "--split", "all"]) == 0
    out = capsys.readouterr().out
    assert "lipo all metrics" in out and "\nmean " in out
    assert main(["train", "--data", "census3", "--split", "scaffold", "-q"]) == 2
    assert "split apply to the moleculenet data set" in capsys.readouterr().err


def test_descriptor_statistics_and_encoding_by_hand():
    values = np.array(
        [[1.0, 5.0, np.nan], [2.0, 5.0, np.nan], [3.0, 5.0, np.nan], [np.inf, 5.0, 1.0]]
    )
    statistics = molecule_features.descriptor_statistics(values, ["a", "b", "c"])
    # a: percentiles 1 and 99 of 1, 2, 3 (the infinity is missing).
    assert statistics["low"][0] == pytest.approx(1.02)
    assert statistics["high"][0] == pytest.approx(2.98)
    clipped = np.array([1.02, 2.0, 2.98])
    assert statistics["mean"][0] == pytest.approx(clipped.mean())
    assert statistics["scale"][0] == pytest.approx(clipped.std())
    # b is constant (scale 1, not 0); c has one value.
    assert statistics["mean"][1:] == [5.0, 1.0] and statistics["scale"][1:] == [1, 1]
    new = np.array([[0.0, 7.0, np.nan], [2.0, -np.inf, 3.0]])
    encoded = molecule_features.encode_descriptors(new, statistics)
    expected_a = (np.array([1.02, 2.0]) - clipped.mean()) / clipped.std()
    np.testing.assert_allclose(encoded[:, 0], expected_a, rtol=1e-6)
    # clipped to the one train value; missing values become 0 (the train mean)
    np.testing.assert_array_equal(encoded[:, 1:], [[0.0, 0.0], [0.0, 0.0]])
    assert encoded.dtype == np.float32
    json.dumps(statistics)  # saved in a model's config


def test_descriptors_use_the_train_split_or_the_given_statistics(tmp_path):
    rows = [f"{s},{i % 2}" for i, s in enumerate(SMILES)]
    data = load(write(tmp_path / "m.csv", "smiles,y", rows))
    names = molecule_features.descriptor_names()
    molecules = molecule_features.parsed_molecules(SMILES)
    raw = molecule_features.rdkit_descriptors(molecules)
    expected = molecule_features.descriptor_statistics(
        raw[data.info["rows"]["train"]], names
    )
    assert data.info["statistics"] == expected
    for split, split_rows in data.info["rows"].items():
        np.testing.assert_array_equal(
            data.x[split][:, 1024:],
            molecule_features.encode_descriptors(raw[split_rows], expected),
        )
    # Another file is encoded with the first one's statistics, not its own.
    others = SMILES[::-1][:12]
    other = write(tmp_path / "n.csv", "smiles,y", [f"{s},1" for s in others])
    encoded = load(other, statistics=data.info["statistics"])
    own = load(other)
    other_raw = molecule_features.rdkit_descriptors(
        molecule_features.parsed_molecules(others)
    )
    for split, split_rows in encoded.info["rows"].items():
        np.testing.assert_array_equal(
            encoded.x[split][:, 1024:],
            molecule_features.encode_descriptors(other_raw[split_rows], expected),
        )
    assert own.info["statistics"] != expected
    # Statistics of fewer descriptors pick those columns, by name.
    subset = {key: values[:3] for key, values in data.info["statistics"].items()}
    assert load(other, statistics=subset).x["train"].shape[1] == 1024 + 3


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        ({"descriptors": ["NoSuchDescriptor"]}, {}, "no descriptors.*NoSuchDescriptor"),
        ({"mean": [0.0, 1.0]}, {}, r"\['mean'\] do not have one value per descriptor"),
        ({}, {"descriptors": False}, "descriptors=False"),
    ],
)
def test_wrong_statistics_are_named(tmp_path, change, kwargs, match):
    path = write(tmp_path / "m.csv", "smiles,y", [f"{s},1" for s in SMILES[:10]])
    statistics = {"descriptors": ["MolWt"], "low": [0], "high": [1], "mean": [0]}
    statistics = {"scale": [1], **statistics, **change}
    with pytest.raises(MMoEExError, match=match):
        load(path, statistics=statistics, **kwargs)
    with pytest.raises(MMoEExError, match=r"lack \['scale'\]"):
        load(path, statistics={k: v for k, v in statistics.items() if k != "scale"})


def test_saved_model_encodes_new_molecules_with_its_statistics(
    tmp_path, monkeypatch, capsys
):
    from mmoeex_tf import runs

    rows = [f"{s},{i % 2}" for i, s in enumerate(SMILES)]
    path = write(tmp_path / "train.csv", "smiles,active", rows)
    others = ["CCCCCCCCCCCCCCCC", "OCC(O)CO", "c1ccc(Cl)c(Cl)c1", "CC(=O)Nc1ccccc1"]
    other = write(tmp_path / "new.csv", "smiles,active", [f"{s},1" for s in others])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMOEEX_CACHE", str(tmp_path / "cache"))
    options = ["--data", "moleculenet", "--data-path", str(path), "--epochs", "1"]
    assert main(["train", *options, "--no-recipe", "-q", "--output", "with"]) == 0
    model = runs.load_saved_model(str(tmp_path / "with" / "model.keras"))
    assert isinstance(model, datasets.InputStatisticsModel)
    assert model.statistics == load(path).info["statistics"]
    predict = ["predict", "with/model.keras", "--data", "moleculenet"]
    predict += ["--data-path", str(other), "--output", "p.csv"]
    assert main(predict) == 0
    written = pd.read_csv(tmp_path / "p.csv")
    encoded = load(other, statistics=model.statistics)
    x = np.concatenate([encoded.x[s] for s in ("train", "val", "test")])
    order = np.argsort(np.concatenate(list(encoded.info["rows"].values())))
    expected = model.predict(x[order], verbose=0)["active"].ravel()
    valid, inputs = datasets.molecule_inputs(others, model.statistics)
    assert valid.all()
    np.testing.assert_array_equal(inputs, x[order])  # what a serving client sends
    assert datasets.molecule_inputs(others)[1].shape == (len(others), 1024)
    np.testing.assert_allclose(written["active_probability"], expected, rtol=1e-5)
    capsys.readouterr()
    assert main([*predict, "--no-descriptors"]) == 2
    assert "descriptors=False" in capsys.readouterr().err
    # Fingerprint bits only: a plain model of 1,024 inputs.
    assert main(["train", *options, "--no-recipe", "-q", "--no-descriptors"]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    bits_only = runs.load_saved_model(str(folder / "model.keras"))
    assert not isinstance(bits_only, datasets.InputStatisticsModel)
    assert bits_only.get_build_config()["input_shape"] == [None, 1024]
    capsys.readouterr()
    predict[1] = str(folder / "model.keras")
    assert main(predict) == 2  # new files get descriptors unless told not to
    assert "bits alone: add --no-descriptors" in capsys.readouterr().err
    assert main([*predict, "--no-descriptors"]) == 0
