"""The course folder as nbgrader lays it out: its assignments, its students, its configuration."""
import json
import os
import sys
from pathlib import Path

import nbformat

from lil_transformy.errors import LilTransformyError
from lil_transformy.grading.judge import EVIDENCE
from lil_transformy.stages import Stage, stage_of_assignment

COURSE_ID = "lil-transformy"  # the default: `course build --course-id` names another
SECRET = "judge_secret"  # in the course folder, never released: the judge's random choices come from it


def put_alembic_on_path() -> None:
    """nbgrader's gradebook calls `alembic` by name: this environment's, also when it was not activated."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


VERDICTS = "verdicts"  # in the course folder: the judges' verdicts, <assignment>/<student>.json


def course_stages(root: Path, asked: list[Stage] | None = None) -> list[Stage]:
    """The stages the course in `root` was built for (its source/ assignments); `asked`, if given, must be among
    them."""
    built = sorted((stage_of_assignment(p.name) for p in (root / "source").glob("stage_*")
                    if (p / f"{p.name}.ipynb").exists()), key=lambda s: s.number)
    if not built:
        raise LilTransformyError(f"{root} holds no assignments in source/: build it with `lil-transformy course build "
                                 f"{root}`")
    missing = [s.number for s in asked or [] if s not in built]
    if missing:
        raise LilTransformyError(f"this course was built for stages {', '.join(s.number for s in built)}, not "
                                 f"{', '.join(missing)}: leave --stages out to grade them all, or choose among them")
    return asked or built


def course_root(root: Path) -> Path:
    put_alembic_on_path()
    root = root.resolve()
    if not (root / "nbgrader_config.py").exists():
        raise LilTransformyError(f"{root} is not a course folder: make one with `lil-transformy course build {root}`")
    return root


def evidence_of(root: Path, student: str, assignment: str) -> list[str]:
    """What the student's code did while it was judged that no lesson needs, from its saved verdict."""
    try:
        outcomes = json.loads((root / VERDICTS / assignment / f"{student}.json").read_text())["outcomes"]
    except (OSError, ValueError, KeyError):
        return []
    return [record for record, _ in outcomes.get(EVIDENCE, [])]


def submitted_students(root: Path) -> list[str]:
    """Every student with a folder in submitted/, sorted."""
    submitted = root / "submitted"
    return sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.exists() else []


def nbgrader_config(root: Path):
    """The course's nbgrader_config.py, as nbgrader reads it."""
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def points_in_source(root: Path, stage: Stage) -> float:
    """The points of a stage's assignment: every graded cell of its source notebook (the instructor's own too)."""
    notebook = nbformat.read(root / "source" / stage.assignment / f"stage_{stage.number}.ipynb", as_version=4)
    return float(sum(c.metadata["nbgrader"].get("points", 0) for c in notebook.cells
                     if c.metadata.get("nbgrader", {}).get("grade") or c.metadata.get("nbgrader", {}).get("task")))


def grade_ids(path: Path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")]
