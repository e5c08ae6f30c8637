"""The notebooks as files: find them, switch whose code they run, strip outputs, execute headless."""
import os
import re
import time
from pathlib import Path

import nbformat

from lil_transformy.errors import LilTransformyError
from lil_transformy.notebook import QUICK_ENV
from lil_transformy.paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
IMPL_SWITCH = re.compile(r'^IMPL = "[^"]*".*$', re.MULTILINE)  # the one line at the top that picks whose code runs
IMPL_COMMENT = {"exercises": 'your code, in exercises/; "solutions" runs the reference',
                "solutions": 'the reference; "exercises" runs your code',
                ".": "your code: the stage modules beside this notebook"}


def notebook_path(number: str) -> Path:
    """notebooks/NN_name.ipynb of stage `number` (or 'compare')."""
    found = sorted(NOTEBOOKS.glob(f"{number}_*.ipynb")) or sorted(NOTEBOOKS.glob(f"{number}.ipynb"))
    if not found:
        raise LilTransformyError(f"there is no notebook for {number!r} in {NOTEBOOKS}")
    return found[0]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def has_impl_switch(notebook: nbformat.NotebookNode) -> bool:
    return any(cell.cell_type == "code" and IMPL_SWITCH.search(cell.source) for cell in notebook.cells)


def with_impl(notebook: nbformat.NotebookNode, impl: str) -> nbformat.NotebookNode:
    """The notebook with its `IMPL = "..."` switch set to `impl`, and a comment true for it (a stage notebook
    without the switch is an error)."""
    notebook = nbformat.from_dict(notebook)  # a copy
    line = f'IMPL = "{impl}"  # {IMPL_COMMENT.get(impl, "the stage modules in that folder")}'
    for cell in notebook.cells:
        if cell.cell_type == "code" and IMPL_SWITCH.search(cell.source):
            cell.source = IMPL_SWITCH.sub(lambda _: line, cell.source, count=1)
            return notebook
    raise LilTransformyError("the notebook has no IMPL = \"...\" line to choose whose code it runs")


def is_stripped(notebook: nbformat.NotebookNode) -> bool:
    return all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in notebook.cells if cell.cell_type == "code")


def strip(path: Path) -> bool:
    """Remove outputs and execution counts (stored notebooks diff as code); True if the file changed."""
    notebook = read(path)
    if is_stripped(notebook):
        return False
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, path)
    return True


def execute(path: Path, impl: str = "solutions", quick: bool = True, cell_timeout: int = 300):
    """Run the notebook top to bottom in a fresh kernel (Restart & Run All); return (executed notebook, seconds).

    A failing cell raises nbclient's CellExecutionError, naming the cell and the error.
    """
    from nbclient import NotebookClient

    notebook = read(path)
    if has_impl_switch(notebook):  # compare.ipynb runs no stage code
        notebook = with_impl(notebook, impl)
    previous = os.environ.get(QUICK_ENV)
    os.environ[QUICK_ENV] = "1" if quick else "0"  # the kernel inherits it
    try:
        started = time.perf_counter()
        NotebookClient(notebook, timeout=cell_timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        return notebook, time.perf_counter() - started
    finally:
        if previous is None:
            os.environ.pop(QUICK_ENV)
        else:
            os.environ[QUICK_ENV] = previous
