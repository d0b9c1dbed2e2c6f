"""Every notebook runs top to bottom (fast mode) and its .py source matches its .ipynb pair."""
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NEEDS_DATA = {"table1"}


def _names():
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_has_a_text_source():
    assert {"convexity", "comparing_solvers", "table1"} <= set(_names())
    for name in _names():
        assert (NOTEBOOKS / f"{name}.py").is_file(), f"{name}.ipynb has no text-diffable .py pair"


@pytest.mark.parametrize("name", _names())
def test_py_and_ipynb_hold_the_same_cells(name):
    jupytext = pytest.importorskip("jupytext")
    src = jupytext.read(NOTEBOOKS / f"{name}.py")
    nb = jupytext.read(NOTEBOOKS / f"{name}.ipynb")
    strip = lambda cells: [(c.cell_type, c.source.strip()) for c in cells]  # noqa: E731
    assert strip(src.cells) == strip(nb.cells), f"run: jupytext --sync notebooks/{name}.py"


@pytest.mark.parametrize("name", _names())
def test_notebook_executes(name, monkeypatch, request):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    if name in NEEDS_DATA:
        request.getfixturevalue("data_home")
    monkeypatch.setenv("CONVEXMETRIC_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # CI sets Agg, which would hide inline figures
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError on any failing cell
    figures = sum("image/png" in out.get("data", {}) for c in nb.cells if c.cell_type == "code"
                  for out in c.get("outputs", []))
    assert figures >= 1
