"""Execute every notebook in notebooks/ and fail if any cell raises.

The notebooks check matcalc's results against finite differences with `assert`, so a wrong
derivative fails here too. The kernel is always this interpreter (sys.executable): a private
`python3` kernel spec is written to a temporary directory, so a `python3` kernel installed for
the user or the system (possibly another Python without matcalc) is never picked up.
"""
import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (installed with nbclient)
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 7, f"expected the notebooks in {NB_DIR}"


def _kernel_manager(spec_root: Path) -> AsyncKernelManager:
    spec_dir = spec_root / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    return AsyncKernelManager(kernel_name="python3",
                              kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_root)]))


def test_kernel_is_this_python(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    nbclient.NotebookClient(nb, km=_kernel_manager(tmp_path / "kernels"), kernel_name="python3",
                            timeout=120).execute()
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, km=_kernel_manager(tmp_path / "kernels"), kernel_name="python3", timeout=120,
        resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()        # raises CellExecutionError (with the cell and traceback) on failure
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_cites_notes_by_title_and_shows_steps_check_and_code(path):
    """Issue 15: notes cited by title and topic (not `Note 003_93a9…`); each notebook shows
    `d.steps_latex`, `d.check()` (no hand-written finite-difference helper) and `d.to_python()`."""
    import re
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert not re.search(r"\b00[0-4]_[0-9a-f]{16}\b", text) and not re.search(r"Notes? 00[0-4]", text)
    assert re.search(r"the notes? \*", text.lower())
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "d.steps_latex" in code and ".check()" in code and ".to_python()" in code
    assert "def numeric_derivative" not in code
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("def derivative(" in o.get("text", "") or "def gradients(" in o.get("text", "") for o in outputs)
