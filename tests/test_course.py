"""The nbgrader course: releases carry stubs, never solutions, and bad submissions cost only what they broke.

Stage 00 (no training) keeps this fast; `lil-transformy course demo` (run by CI) grades the
reference, the stubs and a peeking attention on stages with models; tests/test_grading_attacks.py
grades students who cheat.
"""
import shutil

import nbformat
import pytest

from lil_transformy import course
from lil_transformy.authoring.exercises import expected_exercises
from lil_transformy.course import release
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

STAGE = get_stage("00")
MODULE = f"{STAGE.module}.py"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    course.build(root, [STAGE])
    return root


def test_release_carries_the_stub_never_the_solution(root):
    release = root / "release" / "stage_00"
    assert (release / MODULE).read_text() == expected_exercises()[MODULE]
    assert "BEGIN SOLUTION" not in (release / MODULE).read_text() + (release / "stage_00.ipynb").read_text()


def test_a_later_stage_ships_no_solution_code_unless_asked(tmp_path, capsys):
    """Stage 09 builds on 01, 02, 04, 07, 08: they travel as stubs; --with-earlier-solutions ships the reference."""
    stage = get_stage("09")
    stubs = expected_exercises()
    shipped = release.write_source(tmp_path / "plain", stage, ["shapes"], with_earlier_solutions=False)
    assert shipped == []
    for module in course.stage_modules(stage):
        assert (tmp_path / "plain" / module).read_text() == stubs[module], module
    shipped = release.write_source(tmp_path / "with", stage, ["shapes"], with_earlier_solutions=True)
    assert f"{stage.module}.py" not in shipped and len(shipped) == len(course.stage_modules(stage)) - 1
    assert (tmp_path / "with" / f"{stage.module}.py").read_text() == stubs[f"{stage.module}.py"]


def edit_notebook(folder, change):
    path = folder / "stage_00.ipynb"
    notebook = nbformat.read(path, as_version=4)
    change(notebook)
    nbformat.write(notebook, path)


def graded_cells(notebook):
    return [c for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def insert_first(source):
    return lambda notebook: notebook.cells.insert(1, nbformat.v4.new_code_cell(source))


SUBMISSIONS = {  # student: (what they did to the release, the points expected, a reason shown in the feedback)
    "reference": (None, 2, None),
    "syntax_error": ("def count_tokens(:\n", 0, "could not be imported: SyntaxError"),
    "edited_locked_cell": (lambda nb: setattr(graded_cells(nb)[0], "source", "print('full marks please')"), 2, None),
    "deleted_graded_cell": (lambda nb: nb.cells.remove(graded_cells(nb)[0]), 0, "missing from your notebook (deleted?)"),
    # autograde never runs the notebook: a story cell that kills its kernel or loops costs nothing
    "kernel_dies": (insert_first("import os\nos._exit(1)"), 2, None),
    "endless_story_cell": (insert_first("while True:\n    pass"), 2, None),
}


@pytest.mark.timeout(600)
def test_bad_submissions_lose_only_what_they_broke(root):
    for student, (change, _, _) in SUBMISSIONS.items():
        folder = root / "submitted" / student / "stage_00"
        shutil.copytree(root / "release" / "stage_00", folder)
        shutil.copy(REPO_ROOT / "solutions" / MODULE, folder)
        if isinstance(change, str):
            (folder / MODULE).write_text(change + (folder / MODULE).read_text())
        elif change:
            edit_notebook(folder, change)
    scores, failed = course.grade_class(root, [STAGE], sandboxed=False)  # the sandbox: tests/test_grading_attacks.py
    scores = {student: score for (student, _), (score, _) in scores.items()}
    assert failed == {}
    assert set(scores) == set(SUBMISSIONS), "every student is in the gradebook"
    for student, (_, points, reason) in SUBMISSIONS.items():
        assert scores[student] == points, f"{student}: {scores[student]} points, expected {points}"
        if reason:
            feedback = (root / "feedback" / student / "stage_00" / "stage_00.html").read_text()
            assert reason in feedback, f"{student}'s feedback does not say {reason!r}"


def test_building_over_a_course_is_refused(root):
    from lil_transformy.errors import LilTransformyError

    with pytest.raises(LilTransformyError, match="already holds a course"):
        course.build(root, [STAGE])
