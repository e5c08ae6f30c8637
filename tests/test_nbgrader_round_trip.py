"""The course at home in nbgrader: every button an instructor or a student presses, as nbgrader's own commands.

A course for stages 00 and 03 with a course id and an exchange of the instructor's choosing, and the
instructor's own cells added to stage 03 (a written answer; an autograded test cell, refused). Students
in homes of their own fetch, validate and submit through the exchange: ada correct, bo with the stubs,
cy hands in stage 00 only. The instructor collects, autogrades first on a machine whose sandbox cannot
start (nothing recorded, non-zero exit), then for real, and generates, releases and exports; the
students fetch their feedback; `course grade` then agrees with nbgrader's export, column for column.
"""
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from lil_transformy.cli import main
from lil_transformy.course.release import stage_modules
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

pytestmark = [pytest.mark.skipif(bwrap() is None, reason="grading needs bubblewrap (apt-get install bubblewrap)"),
              pytest.mark.training, pytest.mark.timeout(1500)]
COURSE = "ml101"
STUDENTS = {"ada": ("00", "03"), "bo": ("00", "03"), "cy": ("00",)}  # what each hands in
WRITTEN_ANSWER = nbformat.v4.new_markdown_cell("Why does a bigram model need no positions? YOUR ANSWER HERE")
WRITTEN_ANSWER.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False, "points": 2,
                                       "grade_id": "explain_bigram", "schema_version": 3, "task": False}
OWN_TEST = nbformat.v4.new_code_cell("assert False, 'the instructor's own test'")
OWN_TEST.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                 "grade_id": "instructor_test", "schema_version": 3, "task": False}


def nbgrader(*args: str, cwd: Path, user: str | None = None, path: str | None = None) -> subprocess.CompletedProcess:
    """An nbgrader command as the instructor (in the course folder) or as a student (`user`, in their home)."""
    env = {**os.environ, "PATH": path or f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if user:  # one Unix user here: the student's id is given as a hub's would be (JUPYTERHUB_USER)
        env.update(HOME=str(cwd), USER=user, LOGNAME=user)
        if args[0] in ("submit", "fetch_feedback"):
            args = (*args, f"--CourseDirectory.student_id={user}")
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def add_cells(notebook: Path, *cells) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[-4:-4] = [nbformat.from_dict(dict(cell)) for cell in cells]  # before the graded cells
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    nbformat.write(nb, notebook)


def answer(notebook: Path) -> None:
    """The student writes the written answer, where there is one."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "explain_bigram":
            cell.source = "Its logits at a position come from that position's token alone."
    nbformat.write(nb, notebook)


def grades_csv(path: Path) -> tuple[list[str], dict]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), {(r["student_id"], r["assignment"]): r for r in reader}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    top = tmp_path_factory.mktemp("hub")
    exchange, root = top / "exchange", top / "my-course"
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o777)
    assert main(["course", "build", str(root), "--stages", "00,03", "--course-id", COURSE,
                 "--exchange", str(exchange)]) == 0
    source = root / "source" / "stage_03" / "stage_03.ipynb"
    add_cells(source, WRITTEN_ANSWER, OWN_TEST)
    refused = nbgrader("generate_assignment", "stage_03", "--force", cwd=root)
    nb = nbformat.read(source, as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "instructor_test"]
    nbformat.write(nb, source)
    for command in (["generate_assignment", "stage_03", "--force"], ["release_assignment", "stage_00"],
                    ["release_assignment", "stage_03"]):
        done = nbgrader(*command, cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
    homes = {}
    for student, numbers in STUDENTS.items():
        home = top / "home" / student
        (home / ".jupyter").mkdir(parents=True)
        (home / ".jupyter" / "nbgrader_config.py").write_text(
            f"c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\nc.Exchange.root = {str(exchange)!r}\n")
        homes[student] = home
        for number in numbers:
            done = nbgrader("fetch_assignment", f"stage_{number}", cwd=home, user=student)
            assert done.returncode == 0, done.stdout + done.stderr
            if student != "bo":
                for module in stage_modules(get_stage(number)):
                    shutil.copy(REPO_ROOT / "solutions" / module, home / f"stage_{number}")
                answer(home / f"stage_{number}" / f"stage_{number}.ipynb")
    return root, homes, refused


def test_an_autograded_test_cell_of_the_instructors_is_refused_at_generate_assignment(course):
    _, _, refused = course
    assert refused.returncode != 0
    assert "instructor_test" in refused.stdout + refused.stderr and "manually graded" in refused.stdout + refused.stderr


def test_validate_tells_the_truth_within_nbgraders_30_seconds_a_cell(course):
    _, homes, _ = course
    start = time.perf_counter()
    correct = nbgrader("validate", "stage_03/stage_03.ipynb", cwd=homes["ada"], user="ada")
    seconds = time.perf_counter() - start
    print(f"validate, a correct stage 03: {seconds:.1f} s for the notebook")
    assert "Success! Your notebook passes all the tests." in correct.stdout, correct.stdout + correct.stderr
    assert "Timeout" not in correct.stdout + correct.stderr and "WILL NOT" not in correct.stdout
    wrong = nbgrader("validate", "stage_03/stage_03.ipynb", cwd=homes["bo"], user="bo")
    assert "VALIDATION FAILED" in wrong.stdout and "not written yet" in wrong.stdout, wrong.stdout + wrong.stderr


def test_the_round_trip_records_only_what_was_judged_and_everyone_gets_feedback(course):
    root, homes, _ = course
    for student, numbers in STUDENTS.items():
        for number in numbers:
            done = nbgrader("submit", f"stage_{number}", cwd=homes[student], user=student)
            assert done.returncode == 0, done.stdout + done.stderr
    for number in ("00", "03"):
        assert nbgrader("collect", f"stage_{number}", cwd=root).returncode == 0

    # a grading machine whose sandbox cannot start: nothing recorded, a non-zero exit, the reason in one line
    fake = root.parent / "no-namespaces"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create a new namespace' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    broken = nbgrader("autograde", "stage_03", cwd=root, path=f"{fake}{os.pathsep}{Path(sys.executable).parent}"
                                                              f"{os.pathsep}{os.environ['PATH']}")
    assert broken.returncode != 0
    assert "cannot grade here: the sandbox (bubblewrap) does not start" in broken.stdout + broken.stderr
    exported = nbgrader("export", "--to", "before.csv", cwd=root)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    _, rows = grades_csv(root / "before.csv")
    assert all(row["status"] != "graded" for row in rows.values()), rows
    assert not any((root / "autograded").glob("*/stage_03/*.ipynb"))

    for number in ("00", "03"):
        done = nbgrader("autograde", f"stage_{number}", cwd=root)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        for command in ("generate_feedback", "release_feedback"):
            done = nbgrader(command, f"stage_{number}", cwd=root)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for student, numbers in STUDENTS.items():
        done = nbgrader("fetch_feedback", "stage_03", cwd=homes[student], user=student)
        assert done.returncode == 0, done.stdout + done.stderr
        pages = list((homes[student] / "stage_03" / "feedback").rglob("stage_03.html"))
        assert len(pages) == (1 if "03" in numbers else 0), student
    page = next((homes["ada"] / "stage_03" / "feedback").rglob("stage_03.html")).read_text()
    assert "Your grade, part by part" in page and "explain_bigram (graded by your instructor)" in page
    assert "held-out loss" in page and "expected: a held-out loss below stage" in page  # the loss, and what to beat

    done = nbgrader("export", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    columns, rows = grades_csv(root / "grades.csv")
    assert {"status", "review"} <= set(columns)
    assert float(rows["ada", "stage_03"]["raw_score"]) == 6 and float(rows["ada", "stage_03"]["max_score"]) == 8
    assert float(rows["bo", "stage_03"]["raw_score"]) == 0
    assert rows["cy", "stage_03"]["status"] == "nothing handed in" and float(rows["cy", "stage_00"]["raw_score"]) == 2

    assert main(["course", "grade", str(root)]) == 0  # the same course, our command: the written answer is no trouble
    assert grades_csv(root / "grades.csv")[0] == columns
