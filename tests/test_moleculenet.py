"""MoleculeNet-style CSV files of any shape: `--data moleculenet`."""

import json

import numpy as np
import pytest

from mmoeex_tf import datasets
from mmoeex_tf.cli import main
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
    assert data.x["train"].shape[1:] == (1024,)


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
