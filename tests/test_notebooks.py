"""The notebooks: one per stage, stored without outputs, importing (never defining) model code, and
running top to bottom in a real Jupyter kernel (quick mode, the reference solutions)."""
import ast

import pytest

from lil_transformy.notebook_files import NOTEBOOKS, execute, has_impl_switch, is_stripped, notebook_path, read
from lil_transformy.stages import DETOURS, STAGES
from lil_transformy.train import SHARED

NAMES = [stage.number for stage in STAGES + DETOURS] + ["compare"]
QUICK_BUDGET_SECONDS = 180  # each notebook, in quick mode, on a 2-core CPU


def code_cells(name):
    return [cell.source for cell in read(notebook_path(name)).cells if cell.cell_type == "code"]


def test_one_notebook_per_stage_and_nothing_else():
    expected = {notebook_path(name).name for name in NAMES}
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == expected


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name):
    assert is_stripped(read(notebook_path(name))), \
        f"{notebook_path(name).name} holds outputs: run `lil-transformy strip-notebooks` before committing"


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_import_model_code_never_define_it(name):
    """A notebook that defines a class or function would drift from the stage modules."""
    for source in code_cells(name):
        for node in ast.walk(ast.parse(source)):
            assert not isinstance(node, (ast.ClassDef, ast.FunctionDef)), \
                f"{notebook_path(name).name} defines {node.name!r}: put it in solutions/ or lil_transformy/ and import it"


@pytest.mark.parametrize("name", NAMES[:-1])
def test_stage_notebooks_have_the_impl_switch(name):
    assert has_impl_switch(read(notebook_path(name)))


@pytest.mark.parametrize("value, steps", [(None, SHARED.steps), ("0", SHARED.steps), ("1", 200), ("30", 30)])
def test_quick_mode_budget(monkeypatch, value, steps):
    from lil_transformy.notebook import QUICK_ENV, budget

    if value is None:
        monkeypatch.delenv(QUICK_ENV, raising=False)
    else:
        monkeypatch.setenv(QUICK_ENV, value)
    assert budget().steps == steps


def test_quick_mode_says_what_it_takes(monkeypatch):
    from lil_transformy.errors import LilTransformyError
    from lil_transformy.notebook import QUICK_ENV, budget

    monkeypatch.setenv(QUICK_ENV, "yes")
    with pytest.raises(LilTransformyError, match="1 \\(a quick run\\) or a number of steps"):
        budget()


@pytest.mark.notebooks
@pytest.mark.timeout(QUICK_BUDGET_SECONDS + 60)
@pytest.mark.parametrize("name", NAMES)
def test_restart_and_run_all(name):
    notebook, seconds = execute(notebook_path(name), impl="solutions", quick=True)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs) or name == "compare" and outputs, \
        "the notebook shows no plot"
    assert seconds < QUICK_BUDGET_SECONDS, f"{seconds:.0f} s in quick mode"
