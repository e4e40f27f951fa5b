"""The notebooks run top to bottom against an archive they build themselves, and their plots are real."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
PLOTS = {"01_microstructure_sql.ipynb": 3, "02_backtest_replay.ipynb": 1, "03_bot_test_with_pytest.ipynb": 0, "04_hyperliquid_history.ipynb": 1, "05_paper_trading.ipynb": 1, "06_l4_book.ipynb": 1, "07_backtest_elsewhere.ipynb": 1}


def test_there_are_notebooks_and_they_are_saved_without_outputs():
    assert {p.name for p in NOTEBOOKS} == set(PLOTS)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_and_draws_real_plots(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = [
        base64.b64decode(output["data"]["image/png"])
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == PLOTS[path.name]
    for image in images:
        assert image.startswith(b"\x89PNG") and len(image) > 10_000  # a drawn figure, not an empty canvas
