"""The notebooks as committed: no outputs, one `parameters` cell, no function definitions."""

import ast
import json

import pytest

from pipeline.paths import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def test_the_eight_notebooks_exist_in_order():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), (
        f"{path.name} was saved with outputs: strip them with `.venv/bin/nbstripout {path}`;"
        " `make lab` (or `.venv/bin/nbstripout --install`) installs the git filter that strips"
        " them on every `git add`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outline(path):
    cells = json.loads(path.read_text())["cells"]
    # a title first, one parameters cell (with only UPPER_CASE assignments), a summary last
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    for node in ast.parse("".join(tagged[0]["source"])).body:
        assert isinstance(node, ast.Assign) and node.targets[0].id.isupper()
    assert "## Summary" in "".join(cells[-1]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_defines_no_functions(path):
    cells = json.loads(path.read_text())["cells"]
    for cell in (c for c in cells if c["cell_type"] == "code"):
        tree = ast.parse("".join(cell["source"]).replace(";\n", "\n").rstrip(";"))
        kinds = {type(node) for node in ast.walk(tree)}
        assert not kinds & {ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda}
