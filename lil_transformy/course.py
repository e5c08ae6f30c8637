"""An nbgrader course from the stages: `lil-transformy course build DIR` and `course demo DIR`.

Each stage is an assignment, source/stage_NN/: the stage's notebook (IMPL switched to the
assignment folder) ending in locked graded cells, the stage's *exercise* module (the stub; nbgrader
copies .py files as they are, so the solution module must never be there) and the reference
modules of the earlier stages it imports. A student may replace those with their own: stages build
on each other, and a submission is graded as submitted (nbgrader must not overwrite its modules).
A graded cell runs one group of the stage's pytest checks (lil_transformy.grading).
"""
import contextlib
import csv
import fcntl
import hashlib
import html
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat
import pytest
from tqdm import tqdm

from .errors import LilTransformyError
from .exercises import expected_exercises
from .grading import GROUPS, SCORING_RULE, judged, not_graded_yet
from .mutants import apply, read_patches
from .notebook_files import notebook_path, read, with_impl
from .paths import CHECKS, DATA_ENV, EVOLUTION_REPORT, REPO_ROOT, cache_dir
from .sandbox import require_bwrap
from .stages import Stage, get_stage

COURSE_ID = "lil-transformy"
BROKEN_ATTENTION = "no_causal_mask"  # mutants/no_causal_mask.toml: the `broken` student's stage 04
STUDENTS = ("reference", "stub", "broken")
VERDICTS = "verdicts"  # in the course folder: the judges' verdicts, <assignment>/<student>.json

CONFIG = '''"""nbgrader configuration of the Lil Transformy course (written by `lil-transformy course build`)."""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades

from lil_transformy.nbgrader_hooks import GradeWithTheChecks

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# Autograde does not run the student's notebook: where nbgrader would execute it, the course's judge runs the
# stage's checks on the submitted stage modules (the student's code in a sandbox) and writes each group's
# verdict into its graded cell; nbgrader then scores those cells and records them in its gradebook.
c.Autograde.autograde_preprocessors = [GradeWithTheChecks, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
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
                number = item.path.parent.name.removeprefix("stage_")
                for group, spec in GROUPS.items():
                    if item.get_closest_marker(spec.marker):
                        self.groups.setdefault(number, set()).add(group)

    collector = Collector()
    paths = [str(REPO_ROOT / "checks" / f"stage_{s.number}") for s in stages]
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


def put_alembic_on_path() -> None:
    """nbgrader's gradebook calls `alembic` by name: this environment's, also when it was not activated."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def nbgrader(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run one nbgrader command in the course folder; raise with its log when it fails (if `check`)."""
    put_alembic_on_path()
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise LilTransformyError(f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


def build(root: Path, stages: list[Stage], with_earlier_solutions: bool = False,
          db: str | None = None, partial_credit: bool = False) -> dict[str, list[str]]:
    """Write the course folder and generate each stage's release; return the graded groups per stage.

    A release carries no solution code, unless `with_earlier_solutions`: then the reference modules of
    the earlier stages a stage imports (never its own), and it says so. `db`: the gradebook's URL
    (nbgrader's db_url; default SQLite in the course folder), e.g. a PostgreSQL server several graders share.
    """
    root = root.resolve()
    if (root / "source").exists():
        raise LilTransformyError(f"{root} already holds a course: choose an empty folder")
    groups = graded_groups(stages)
    root.mkdir(parents=True, exist_ok=True)
    data = os.environ.get(DATA_ENV)
    (root / "nbgrader_config.py").write_text(CONFIG.format(
        course_id=COURSE_ID, data_line=f"os.environ.setdefault({DATA_ENV!r}, {data!r})\n" if data else "",  # absolute (paths.py)
        db_line=f"c.CourseDirectory.db_url = {db!r}  # the gradebook, shared by every grading machine\n" if db else "",
        partial_line="c.GradeWithTheChecks.partial_credit = True  # a share of a group's points per passing check\n"
        if partial_credit else "",
        exclude={f"stage_{stage.number}": stage_modules(stage) for stage in stages}))
    build_wheel(root / "wheel")
    for stage in stages:
        shipped = write_source(root / "source" / f"stage_{stage.number}", stage, groups[stage.number],
                               with_earlier_solutions, partial_credit)
        if shipped:
            print(f"stage_{stage.number} ships the reference solution of: {', '.join(shipped)}")
        nbgrader(root, "generate_assignment", f"stage_{stage.number}", "--force")
        release = root / "release" / f"stage_{stage.number}"
        if (release / f"{stage.module}.py").read_text() != (root / "source" / f"stage_{stage.number}" /
                                                          f"{stage.module}.py").read_text():
            raise LilTransformyError(f"the release of stage {stage.number} does not carry the stub module")
    return groups


def build_wheel(folder: Path) -> Path:
    """The package students install (the library, the checks, the reference losses; never the solutions), built
    from this checkout into `folder`: what a release's graded cells need on a machine without a clone. Built once
    per state of the checkout (kept in the cache), one build at a time: setuptools builds inside the checkout."""
    sources = [REPO_ROOT / "pyproject.toml", EVOLUTION_REPORT, *sorted((REPO_ROOT / "lil_transformy").rglob("*.py")),
               *sorted(CHECKS.rglob("*.py"))]
    key = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]
    built = cache_dir() / "wheels" / key
    built.mkdir(parents=True, exist_ok=True)
    with open(built.parent / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not list(built.glob("lil_transformy-*.whl")):
            isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []  # else pip fetches it
            done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
                                   "--wheel-dir", str(built), str(REPO_ROOT)], capture_output=True, text=True)
            if done.returncode != 0:
                raise LilTransformyError(f"could not build the students' package: "
                                         f"{(done.stderr.strip().splitlines() or ['pip failed'])[-1]}")
    wheel = next(built.glob("lil_transformy-*.whl"))
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(wheel, folder))


def submit(root: Path, student: str, stage: Stage) -> Path:
    """A copy of the release as `student`'s submission; `reference` and `broken` bring their own modules."""
    folder = root / "submitted" / student / f"stage_{stage.number}"
    shutil.copytree(root / "release" / f"stage_{stage.number}", folder)
    if student in ("reference", "broken"):  # their own solution of this stage and of the ones before
        for module in stage_modules(stage):
            shutil.copy(REPO_ROOT / "solutions" / module, folder)
    attention = folder / "stage_04_attention.py"
    if student == "broken" and attention.exists():  # their own stage 04, mask forgotten
        with tempfile.TemporaryDirectory() as tmp:
            patch = next(p for p in read_patches(REPO_ROOT / "mutants") if p.name == BROKEN_ATTENTION)
            shutil.copy(apply(patch, Path(tmp) / "copy") / attention.name, attention)
    return folder


def expected_score(student: str, stage: Stage, groups: list[str]) -> float:
    full = sum(GROUPS[g].points for g in groups)
    if student == "stub":
        return 0
    if student == "broken" and "04" <= stage.number and "causality" in groups and stage.number != "03b":
        return full - GROUPS["causality"].points
    return full


def demo(root: Path, stages: list[Stage], sandboxed: bool = True, jobs: int = 1, db: str | None = None) -> bool:
    """Build, submit three students per stage, grade; True if every score is the expected one."""
    groups = build(root, stages, db=db)
    for stage in stages:
        for student in STUDENTS:
            submit(root, student, stage)
    scores, _ = grade(root, stages, sandboxed, jobs)
    wrong = {key: want for key in scores
             if (want := expected_score(key[0], get_stage(key[1].removeprefix("stage_")),
                                        groups[key[1].removeprefix("stage_")])) != scores[key][0]}
    for (student, assignment), want in wrong.items():
        print(f"NOT as expected: {student} got {scores[student, assignment][0]:g} in {assignment}, expected {want:g}")
    if not wrong:
        print("as expected: reference full marks, stub zero, broken loses the causality points (stages 04-09)")
    return not wrong


def grade(root: Path, stages: list[Stage] | None = None, sandboxed: bool = True, jobs: int = 1,
          shard: tuple[int, int] | None = None, db: str | None = None) -> tuple[dict, dict]:
    """Autograde every submission of `stages`, write feedback and grades.csv, print the table.

    `jobs` students are judged at once, each in its own sandbox with cores // jobs CPU threads; each verdict
    is recorded through nbgrader (autograde, feedback) as it arrives, one at a time: SQLite takes one writer.
    Verdicts are kept in verdicts/<assignment>/<student>.json with what they were made from, so a run that was
    stopped judges only what it had not judged. `shard` (k, m): grade only the students of share k of m, by a
    hash of the name, so m machines writing one gradebook (`db`, a PostgreSQL URL) split the class between them.
    Every student with a folder in submitted/ (of this shard) is in grades.csv for every stage: one nbgrader could
    not grade (no notebook, no submission) gets 0 and a feedback page saying why. Without bubblewrap this
    refuses, unless `sandboxed` is False (the instructor's choice).
    Returns ({(student, assignment): (score, max)}, {(student, assignment): why it was not graded}).
    """
    root = course_root(root)
    stages = course_stages(root, stages)  # default: every stage the course was built for
    require_bwrap(unsandboxed=not sandboxed)
    threads = threads_per_job(jobs)
    if not sandboxed:
        print("grading WITHOUT the sandbox (--unsandboxed): each student's code runs as you, next to the gradebook")
    if shard and not gradebook_url(root, db).startswith("postgresql"):
        raise LilTransformyError("--shard splits a class between machines that write one gradebook: give it a "
                                 "PostgreSQL one with --db postgresql://user@host/dbname")
    api = gradebook_api(root, db, sandboxed, threads)
    register_assignments(api, stages)
    submitted = root / "submitted"
    students = [s for s in submitted_students(root) if shard is None or in_shard(s, *shard)]
    work = [(s, f"stage_{stage.number}") for stage in stages for s in students]
    failed = {key: "nothing was submitted for this assignment" for key in work
              if not (submitted / key[0] / key[1]).is_dir()}
    work = [key for key in work if key not in failed]
    postponed = {}  # (student, assignment): why it could not be judged now (the machine was overloaded)
    print(f"grading {len(work)} submissions of {len(students)} students"
          + (f" (share {shard[0]} of {shard[1]})" if shard else "")
          + f", {jobs} at a time with {threads} CPU thread{'s' * (threads > 1)} each", flush=True)
    with ThreadPoolExecutor(jobs) as pool, tqdm(total=len(work), desc="graded", unit="submission") as bar:
        judging = {pool.submit(judged, assignment.removeprefix("stage_"), submitted / student / assignment,
                               root / VERDICTS / assignment / f"{student}.json", "sandbox" if sandboxed else "process",
                               threads): (student, assignment) for student, assignment in work}
        try:
            for done in as_completed(judging):  # record each verdict as it arrives, one at a time
                student, assignment = judging[done]
                if done.exception() is not None:  # the judge itself failed: autograde judges again, or scores 0
                    bar.write(f"{student} {assignment}: the judge failed ({done.exception()}); nbgrader will retry")
                elif not_graded_yet(done.result()[1]):  # no verdict: nothing recorded, the next run judges it
                    postponed[student, assignment] = done.result()[1]
                    bar.update()
                    continue
                why = record(api, root, student, assignment)
                if why:
                    failed[student, assignment] = why
                bar.set_postfix_str(f"{student} {assignment}", refresh=False)
                bar.update()
        except KeyboardInterrupt:
            bar.write(f"stopped: the verdicts reached so far are kept in {root / VERDICTS}; the same command "
                      f"finishes the job, judging only what is left")
            os._exit(130)  # at once: the judges still running die with this process (PR_SET_PDEATHSIG)
    for (student, assignment), why in failed.items():
        write_failure_feedback(root, student, assignment, why)
    scores = export(root, stages, db, students, postponed)
    print_table(scores, {**failed, **postponed}, stages)
    print(f"\ngrades: {root / 'grades.csv'}; feedback: {root / 'feedback'}")
    if postponed:
        print(f"\n{len(postponed)} submission{'s' * (len(postponed) > 1)} NOT GRADED YET: the grading machine was "
              f"too busy to tell whether the code is slow (see limits.py). Nothing was recorded for them; run the "
              f"same command again, on a quieter machine or with fewer --jobs: it grades only what is left.")
    return scores, failed


def course_stages(root: Path, asked: list[Stage] | None = None) -> list[Stage]:
    """The stages the course in `root` was built for (its source/ assignments); `asked`, if given, must be among
    them."""
    built = sorted((get_stage(p.name.removeprefix("stage_")) for p in (root / "source").glob("stage_*")
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


def submitted_students(root: Path) -> list[str]:
    """Every student with a folder in submitted/, sorted."""
    submitted = root / "submitted"
    return sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.exists() else []


def threads_per_job(jobs: int) -> int:
    """CPU threads for each of `jobs` students judged at once: jobs x threads never exceeds the cores."""
    cores = len(os.sched_getaffinity(0))
    if not 1 <= jobs <= cores:
        raise LilTransformyError(f"--jobs {jobs}: this machine has {cores} CPU cores, and each student judged at once "
                                 f"needs one: choose 1 to {cores}")
    return cores // jobs


def in_shard(student: str, k: int, m: int) -> bool:
    """Student `student` belongs to share k of m (1 <= k <= m), whatever other students a machine sees."""
    return int(hashlib.sha256(student.encode()).hexdigest(), 16) % m == k - 1


def gradebook_url(root: Path, db: str | None = None) -> str:
    """The gradebook's URL: `db`, else the course's nbgrader_config.py, else nbgrader's default (SQLite)."""
    from nbgrader.coursedir import CourseDirectory
    return db or CourseDirectory(config=nbgrader_config(root)).db_url


def nbgrader_config(root: Path):
    """The course's nbgrader_config.py, as nbgrader reads it."""
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def gradebook_api(root: Path, db: str | None, sandboxed: bool, threads: int):
    """nbgrader's own Python API on the course, its preprocessor reading the judges' verdicts."""
    from nbgrader.apps import NbGraderAPI
    config = nbgrader_config(root)
    if db:
        config.CourseDirectory.db_url = db
    config.GradeWithTheChecks.sandbox = sandboxed
    config.GradeWithTheChecks.threads = threads
    config.GradeWithTheChecks.verdicts = str(root / VERDICTS)
    return NbGraderAPI(config=config)


def open_gradebook(url: str):
    """nbgrader's Gradebook at `url`. Graders that start together on a new PostgreSQL gradebook each create its
    tables and its course row; the server lets one win and refuses the others (a duplicate type, table or key):
    they wait and open it."""
    from nbgrader.api import Gradebook, InvalidEntry
    from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError, ProgrammingError
    put_alembic_on_path()
    for attempt in range(5):
        try:
            return Gradebook(url, COURSE_ID)
        except (IntegrityError, ProgrammingError, InvalidEntry):
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
        except (ArgumentError, NoSuchModuleError, OperationalError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise LilTransformyError(f"cannot open the gradebook {url}: {first_line}") from None


def register_assignments(api, stages: list[Stage]) -> None:
    """A gradebook given with --db may not know the assignments yet: generate them into it (once, whoever is first)."""
    from nbgrader.api import MissingEntry
    for stage in stages:
        assignment = f"stage_{stage.number}"
        for attempt in range(3):  # another machine may be registering it at the same moment
            with open_gradebook(api.coursedir.db_url) as gradebook:
                try:
                    gradebook.find_notebook(assignment, assignment)
                    break
                except MissingEntry:
                    pass
            result = api.generate_assignment(assignment, force=True, create=True)
            if result["success"]:
                break
            if attempt == 2:
                raise LilTransformyError(f"could not register {assignment} in the gradebook: "
                                         f"{failure_reason(result.get('log', '') + result.get('error', ''))}")
            time.sleep(1)  # let the other machine's registration finish


def record(api, root: Path, student: str, assignment: str) -> str | None:
    """nbgrader's autograde and feedback for one submission (its verdict is saved); why it failed, or None."""
    from sqlalchemy.exc import SAWarning
    with warnings.catch_warnings():  # nbgrader's own session warnings: nothing an instructor can act on
        warnings.simplefilter("ignore", SAWarning)
        result = api.autograde(assignment, student, force=True, create=True)
        log = result.get("log", "") + result.get("error", "")
        if not result["success"] or "There was an error processing" in log or "No notebooks were matched" in log:
            return failure_reason(log)
        api.generate_feedback(assignment, student, force=True)
    note_missing_graded_cells(root, student, assignment)
    return None


def export(root: Path, stages: list[Stage] | None = None, db: str | None = None, students: list[str] | None = None,
           postponed: dict | None = None) -> dict:
    """grades.csv from the gradebook, completed with a 0 for each of `students` (default: every student folder in
    submitted/) the gradebook lacks, except the `postponed` (not graded yet); returns the scores of `stages`."""
    from nbgrader.plugins import CsvExportPlugin
    root = course_root(root)
    stages = course_stages(root, stages)
    with open_gradebook(gradebook_url(root, db)) as gradebook:
        CsvExportPlugin(to=str(root / "grades.csv")).export(gradebook)
    if students is None:
        students = submitted_students(root)
    points = {f"stage_{s.number}": float(sum(GROUPS[g].points for g in graded_groups_in_source(root, s)))
              for s in stages}
    return complete_grades(root / "grades.csv", students, points, set(postponed or ()))


def graded_groups_in_source(root: Path, stage: Stage) -> list[str]:
    """The graded groups of a stage's assignment, read from its source notebook."""
    path = root / "source" / f"stage_{stage.number}" / f"stage_{stage.number}.ipynb"
    return [grade_id.removeprefix(f"stage_{stage.number}_") for grade_id in grade_ids(path)]


def complete_grades(path: Path, students: list[str], points: dict[str, float], postponed: set = frozenset()) -> dict:
    """grades.csv as nbgrader exported it, plus a 0 row for every (student, assignment) it lacks but those not
    graded yet; the scores."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    have = {(row["student_id"], row["assignment"]) for row in rows}
    for assignment, full in points.items():
        for student in students:
            if (student, assignment) not in have and (student, assignment) not in postponed:
                rows.append({**{name: "" for name in fields}, "assignment": assignment, "student_id": student,
                             "raw_score": "0.0", "score": "0.0", "max_score": str(full)})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return {(row["student_id"], row["assignment"]): (float(row["raw_score"] or 0), float(row["max_score"]))
            for row in rows if row["assignment"] in points}


def failure_reason(log: str) -> str:
    """The first error nbgrader logged for a submission it could not grade."""
    errors = [line.split("ERROR]", 1)[1].strip() for line in log.splitlines() if "ERROR]" in line]
    return errors[0] if errors else "nbgrader could not grade it"


def grade_ids(path: Path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")]


def note_missing_graded_cells(root: Path, student: str, assignment: str) -> None:
    """nbgrader scores a deleted graded cell 0 without a word in the feedback: add the word."""
    graded = root / "autograded" / student / assignment / f"{assignment}.ipynb"
    feedback = root / "feedback" / student / assignment / f"{assignment}.html"
    if not graded.exists() or not feedback.exists():
        return
    missing = [g for g in grade_ids(root / "source" / assignment / f"{assignment}.ipynb") if g not in grade_ids(graded)]
    if missing:
        note = (f"<div style='border:2px solid #c00;padding:1em;margin:1em'><b>Graded cells missing from your "
                f"notebook (deleted?), 0 points each: {html.escape(', '.join(missing))}.</b> Graded cells are "
                f"locked: keep them, they run the checks on your code.</div>")
        text = feedback.read_text()
        feedback.write_text(text.replace("<body>", "<body>" + note, 1) if "<body>" in text else note + text)


def write_failure_feedback(root: Path, student: str, assignment: str, why: str) -> None:
    folder = root / "feedback" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{assignment}.html").write_text(
        f"<html><body><h1>{assignment}: not graded</h1><p>Your submission could not be graded: "
        f"<b>{html.escape(why)}</b></p><p>Every graded cell scores 0. Hand in the assignment's folder as you "
        f"received it, with its notebook (<code>{assignment}.ipynb</code>) and your stage modules.</p>"
        f"</body></html>\n")


def print_table(scores: dict, failed: dict, stages: list[Stage]) -> None:
    students = sorted({student for student, _ in scores})
    print("\n| student | " + " | ".join(f"stage {s.number}" for s in stages) + " |")
    print("| --- |" + " --- |" * len(stages))
    for student in students:
        cells = []
        for stage in stages:
            key = (student, f"stage_{stage.number}")
            if not_graded_yet(failed.get(key)):
                cells.append("not graded yet (machine overloaded)")
                continue
            score, full = scores.get(key, (0.0, 0.0))
            cells.append(f"{score:g}/{full:g}" + (f" (not graded: {failed[key]})" if key in failed else ""))
        print(f"| {student} | " + " | ".join(cells) + " |")
