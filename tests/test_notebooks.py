from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# Notebook -> the least number of figures it shows.
FIGURES = {
    "01_quickstart_census.ipynb": 2,
    "02_clinical_time_series_physionet.ipynb": 3,
    "03_tuning_and_export.ipynb": 2,
}
CELL_TIMEOUT_S = 300


def test_every_notebook_is_tested_and_saved_without_outputs():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(FIGURES)
    for name in FIGURES:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_runs_top_to_bottom_and_shows_its_plots(
    name, tmp_path, monkeypatch, request
):
    if "physionet" in name:
        physionet = request.getfixturevalue("shared_data") / "physionet2012"
        if not physionet.is_dir():
            pytest.skip("PhysioNet data not found in the shared data")
        monkeypatch.setenv("MMOEEX_PHYSIONET", str(physionet))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell, if one fails
    figures = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(figures) >= FIGURES[name]
