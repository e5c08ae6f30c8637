"""`lil-transformy course build`: an nbgrader course from the stages, a release per stage, the students' wheel.

Each stage is an assignment, source/stage_NN/: the stage's notebook (IMPL switched to the
assignment folder) ending in locked graded cells, the stage's *exercise* module (the stub; nbgrader
copies .py files as they are, so the solution module must never be there) and the modules of the
earlier stages it imports (stubs, or with --with-earlier-solutions the reference). A student may
replace those with their own: a submission is graded as submitted. A graded cell runs one group of
the stage's checks (lil_transformy.grading.judge).
"""
import contextlib
import fcntl
import hashlib
import importlib.util
import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from lil_transformy.authoring.exercises import expected_exercises
from lil_transformy.authoring.notebook_files import notebook_path, read, with_impl
from lil_transformy.course.folder import COURSE_ID, SECRET, put_alembic_on_path
from lil_transformy.errors import LilTransformyError
from lil_transformy.grading.judge import GROUPS, SCORING_RULE
from lil_transformy.paths import CHECKS, DATA_ENV, EVOLUTION_REPORT, REPO_ROOT, cache_dir
from lil_transformy.stages import Stage, stage_of_assignment

CONFIG = '''"""nbgrader configuration of the Lil Transformy course (written by `lil-transformy course build`)."""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.converters import GenerateAssignment, GenerateFeedback
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades

from lil_transformy.course.feedback import SummariseTheGrade
from lil_transformy.grading.nbgrader_hooks import GradeWithTheChecks, OnlyTheChecksGrade

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
{exchange_line}# Autograde does not run the student's notebook: where nbgrader would execute it, the course's judge runs the
# stage's checks on the submitted stage modules (the student's code in a sandbox) and writes each group's
# verdict into its graded cell; nbgrader then scores those cells and records them in its gradebook. A machine that
# cannot grade (no sandbox) records nothing. Verdicts are kept with what they were made from (verdicts/).
c.Autograde.autograde_preprocessors = [GradeWithTheChecks, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.GradeWithTheChecks.verdicts = os.path.join(c.CourseDirectory.root, "verdicts")
c.GradeWithTheChecks.secret_file = os.path.join(c.CourseDirectory.root, {secret!r})
# An autograded test cell of your own would score without running: generate_assignment refuses it (make it
# manually graded). Feedback opens with the grade part by part; grades.csv has the same columns whoever writes it;
# release_feedback also releases feedback of submissions collected by hand.
c.GenerateAssignment.preprocessors = [OnlyTheChecksGrade, *GenerateAssignment.class_traits()["preprocessors"].default()]
c.GenerateFeedback.preprocessors = [*GenerateFeedback.class_traits()["preprocessors"].default(), SummariseTheGrade]
c.ExportApp.plugin_class = "lil_transformy.course.gradebook.GradesWithReview"
c.ExchangeFactory.release_feedback = "lil_transformy.course.feedback.ReleaseFeedbackToEveryone"
{data_line}{db_line}{partial_line}# nbgrader copies the source's .py files over a submission before grading: the stub over the student's
# code. A submission is graded as submitted: its own stage module and the earlier stages it carries.
c.Autograde.exclude_overwriting = {exclude!r}
'''

def stage_modules(stage: Stage) -> list[str]:
    """The .py files of the stage's assignment: its own module and the earlier stages it imports."""
    return [f"{module}.py" for module in [stage.module] + stage_dependencies(stage)]

def stage_dependencies(stage: Stage) -> list[str]:
    """The module names stage `stage` imports from earlier stages, transitively (e.g. 05: 01, 02, 04)."""
    found, todo = set(), [stage.module]
    while todo:
        source = (REPO_ROOT / "solutions" / f"{todo.pop()}.py").read_text(encoding="utf-8")
        for name in re.findall(r"^from \.(stage_\w+) import", source, re.MULTILINE):
            if name not in found:
                found.add(name)
                todo.append(name)
    return sorted(found)

def graded_groups(stages: list[Stage]) -> dict[str, list[str]]:
    """{stage number: the groups its checks fall in}, from pytest's own collection of checks/."""

    class Collector:
        def __init__(self):
            self.groups = {}

        def pytest_collection_finish(self, session):
            for item in session.items:
                number = stage_of_assignment(item.path.parent.name).number
                for group, spec in GROUPS.items():
                    if item.get_closest_marker(spec.marker):
                        self.groups.setdefault(number, set()).add(group)

    collector = Collector()
    paths = [str(CHECKS / s.assignment) for s in stages]
    with contextlib.redirect_stdout(io.StringIO()):  # the list of checks is not news
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", f"--rootdir={REPO_ROOT}",
                            "--impl=solutions", *paths], plugins=[collector])
    if code != 0:
        raise LilTransformyError(f"pytest could not collect the checks of {', '.join(paths)}")
    return {s.number: [g for g in GROUPS if g in collector.groups.get(s.number, ())] for s in stages}

def graded_cell(number: str, group: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(f'from lil_transformy.grading import grade\n\ngrade("{number}", "{group}")')
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": f"stage_{number}_{group}", "locked": True,
                                 "points": GROUPS[group].points, "schema_version": 3, "solution": False,
                                 "task": False}
    return cell

def course_notebook(stage: Stage, groups: list[str], with_earlier_solutions: bool,
                    partial_credit: bool = False) -> nbformat.NotebookNode:
    notebook = with_impl(read(notebook_path(stage.number)), ".")  # the modules beside the notebook
    earlier = stage_dependencies(stage)
    what_they_are = ("the reference for the earlier stages this one builds on; put your own in their place if "
                     "you like" if with_earlier_solutions else
                     "the earlier stages this one builds on, as stubs: put your own solutions of those stages in "
                     "their place")
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell(
        f"**In this assignment** your code is `{stage.module}.py`, beside this notebook: `IMPL = \".\"` below "
        f"runs it." + (f" The other `.py` files ({', '.join(earlier)}) are {what_they_are}: you are graded on the "
                       f"folder you hand in." if earlier else "") + " Your grade is at the end."))
    notebook.cells.append(nbformat.v4.new_markdown_cell(
        f"## Your grade\nEach cell below runs one group of the stage's checks on the `.py` files in this folder "
        f"(the checks come with the `lil-transformy` package; `lil-transformy check {stage.number}` runs them all "
        f"here too): " + ", ".join(f"{g} ({GROUPS[g].points} point{'s' * (GROUPS[g].points > 1)})" for g in groups)
        + ". A failing check prints what was expected, what was found and a hint. Do not edit these cells: "
          "the grader restores them, and grades your `.py` files, not what this notebook ran.\n\n"
        + f"**How points are given.** {SCORING_RULE}"
        + (" **This course gives partial credit.**" if partial_credit else "")))
    notebook.cells += [graded_cell(stage.number, group) for group in groups]
    for i, cell in enumerate(notebook.cells):
        cell.id = f"stage-{stage.number}-{i:02d}"
    return notebook

def write_source(folder: Path, stage: Stage, groups: list[str], with_earlier_solutions: bool,
                 partial_credit: bool = False) -> list[str]:
    """The assignment's files; returns the reference modules it ships (only `with_earlier_solutions`)."""
    folder.mkdir(parents=True)
    stubs = expected_exercises()
    (folder / f"{stage.module}.py").write_text(stubs[f"{stage.module}.py"], encoding="utf-8")
    shipped = []
    for module in stage_dependencies(stage):  # earlier stages: stubs, the student brings their own
        if with_earlier_solutions:
            shutil.copy(REPO_ROOT / "solutions" / f"{module}.py", folder)
            shipped.append(f"{module}.py")
        else:
            (folder / f"{module}.py").write_text(stubs[f"{module}.py"], encoding="utf-8")
    nbformat.write(course_notebook(stage, groups, with_earlier_solutions, partial_credit),
                   folder / f"stage_{stage.number}.ipynb")
    return shipped


def nbgrader(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run one nbgrader command in the course folder; raise with its log when it fails (if `check`)."""
    put_alembic_on_path()
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, capture_output=True, text=True)
    if check and (done.returncode != 0 or "Exception while loading config file" in done.stdout + done.stderr):
        raise LilTransformyError(f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done

def build(root: Path, stages: list[Stage], with_earlier_solutions: bool = False,
          db: str | None = None, partial_credit: bool = False, course_id: str = COURSE_ID,
          exchange: str | None = None) -> dict[str, list[str]]:
    """Write the course folder and generate each stage's release; return the graded groups per stage.

    A release carries no solution code, unless `with_earlier_solutions`: then the reference modules of
    the earlier stages a stage imports (never its own), and it says so. `db`: the gradebook's URL
    (nbgrader's db_url; default SQLite in the course folder), e.g. a PostgreSQL server several graders share.
    `course_id` and `exchange` (the exchange's root folder; default nbgrader's) go into nbgrader_config.py.
    """
    root = root.resolve()
    if (root / "source").exists():
        raise LilTransformyError(f"{root} already holds a course: choose an empty folder")
    groups = graded_groups(stages)
    root.mkdir(parents=True, exist_ok=True)
    data = os.environ.get(DATA_ENV)
    (root / SECRET).write_text(secrets.token_hex(32))
    (root / SECRET).chmod(0o600)
    (root / "nbgrader_config.py").write_text(CONFIG.format(
        course_id=course_id, secret=SECRET,
        exchange_line=f"c.Exchange.root = {str(Path(exchange).resolve())!r}\n" if exchange else "",
        data_line=f"os.environ.setdefault({DATA_ENV!r}, {data!r})\n" if data else "",  # absolute (paths.py)
        db_line=f"c.CourseDirectory.db_url = {db!r}  # the gradebook, shared by every grading machine\n" if db else "",
        partial_line="c.GradeWithTheChecks.partial_credit = True  # a share of a group's points per passing check\n"
        if partial_credit else "",
        exclude={stage.assignment: stage_modules(stage) for stage in stages}))
    build_wheel(root / "wheel")
    for stage in stages:
        shipped = write_source(root / "source" / stage.assignment, stage, groups[stage.number],
                               with_earlier_solutions, partial_credit)
        if shipped:
            print(f"stage_{stage.number} ships the reference solution of: {', '.join(shipped)}")
        nbgrader(root, "generate_assignment", stage.assignment, "--force")
        release = root / "release" / stage.assignment
        if (release / f"{stage.module}.py").read_text() != (root / "source" / stage.assignment /
                                                          f"{stage.module}.py").read_text():
            raise LilTransformyError(f"the release of stage {stage.number} does not carry the stub module")
    return groups

def build_wheel(folder: Path) -> Path:
    """The package students install (the library, the checks, the reference losses; never the solutions), built
    from this checkout into `folder`: what a release's graded cells need on a machine without a clone. Its version
    carries the build's content (0.1.0+g<hash>), so a rebuilt wheel installs over an older one. Built once per state
    of the checkout (kept in the cache), in a copy: the checkout may belong to someone else."""
    sources = [REPO_ROOT / "pyproject.toml", EVOLUTION_REPORT, *sorted((REPO_ROOT / "lil_transformy").rglob("*.py")),
               *sorted(CHECKS.rglob("*.py"))]
    key = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]
    built = cache_dir() / "wheels" / key
    built.mkdir(parents=True, exist_ok=True)
    with open(built.parent / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not list(built.glob("lil_transformy-*.whl")):
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / "lil-transformy"
                shutil.copytree(REPO_ROOT, copy, ignore=shutil.ignore_patterns(
                    ".git", ".venv", ".cache", "*.egg-info", "__pycache__", "build", "dist", "notebooks", "solutions",
                    "exercises", "mutants", "variants", "tests", "scripts", "runs"))
                pyproject = copy / "pyproject.toml"
                pyproject.write_text(re.sub(r'^version = "([^"+]+)"', rf'version = "\1+g{key}"',
                                            pyproject.read_text(), count=1, flags=re.MULTILINE))
                isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []  # else pip fetches it
                done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
                                       "--wheel-dir", str(built), str(copy)], capture_output=True, text=True)
            if done.returncode != 0:
                cause = [line for line in done.stderr.splitlines() if "rror" in line][:1] or ["pip failed"]
                raise LilTransformyError(f"could not build the students' package: {cause[0].strip()}")
    wheel = next(built.glob("lil_transformy-*.whl"))
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(wheel, folder))
