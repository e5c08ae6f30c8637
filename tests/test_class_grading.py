"""A whole class: N students judged at once, a run killed half way, several graders writing one gradebook.

`course grade --jobs N` must give exactly what `--jobs 1` gives; a grading run killed mid-grade and
run again leaves a consistent gradebook in which every student is graded once; and two graders that
each take their share of the class (`--shard K/M`), each with its own copy of the course folder as on
two machines, write one PostgreSQL gradebook (a real server, tests/conftest.py) from which
`course export` gives every student's grade.
"""
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lil_transformy import course
from lil_transformy.authoring.mutants import apply, named
from lil_transformy.course import gradebook
from lil_transformy.course.folder import COURSE_ID, VERDICTS
from lil_transformy.errors import LilTransformyError
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

pytestmark = [pytest.mark.timeout(1200),
              pytest.mark.skipif(bwrap() is None, reason="grading needs bubblewrap (apt-get install bubblewrap)")]

STAGE_00, STAGE_03 = get_stage("00"), get_stage("03")
MIXES_POSITIONS = "bigram_mixes_positions"  # mutants/: a stage-03 bigram that looks at other positions
# Stage 03 (6 points): ada solved it, bo handed in the stub, cy's bigram mixes positions (a running sum: it loses
# the 2 property points, and keeps the loss point: it still beats stage 02's bag of words).
EXPECTED_03 = {"ada": 6.0, "bo": 0.0, "cy": 4.0}


def submit(root: Path, student: str, stage, mutant: str | None = None, solved: bool = True) -> None:
    """`student` hands in the solutions, or with one realistic mistake (`mutant`), or the untouched stubs."""
    with tempfile.TemporaryDirectory() as tmp:
        source = apply(named("mutants", mutant), Path(tmp) / "copy") if mutant else REPO_ROOT / "solutions"
        course.hand_in(root, student, stage, source if solved else None)


@pytest.fixture(scope="module")
def class_03(tmp_path_factory):
    """A stage-03 course with three students handed in: copy it for each grading run."""
    root = tmp_path_factory.mktemp("class") / "course"
    course.build(root, [STAGE_03])
    for student, score in EXPECTED_03.items():
        submit(root, student, STAGE_03, MIXES_POSITIONS if student == "cy" else None, solved=score > 0)
    return root


def copy_course(template: Path, folder: Path) -> Path:
    shutil.copytree(template, folder)
    return folder


def grades(root: Path) -> list[dict]:
    with open(root / "grades.csv", newline="") as f:
        return sorted(csv.DictReader(f), key=lambda row: (row["assignment"], row["student_id"]))


def feedback(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text().replace(str(root), "COURSE")
            for p in sorted((root / "feedback").rglob("*.html"))}


def gradebook_rows(root: Path, db: str | None = None) -> list[tuple[str, str, float]]:
    """(student, assignment, score) of every submission row in the gradebook, duplicates included."""
    from nbgrader.api import Gradebook
    with Gradebook(gradebook.gradebook_url(root, db), COURSE_ID) as book:
        return sorted((s.student.id, s.assignment.name, s.score) for a in book.assignments
                      for s in a.submissions)


def lil_transformy(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lil_transformy.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_jobs_2_grades_exactly_as_jobs_1(class_03, tmp_path):
    serial = copy_course(class_03, tmp_path / "serial")
    parallel = copy_course(class_03, tmp_path / "parallel")
    scores, _ = course.grade_class(serial, [STAGE_03], jobs=1)
    assert {student: scores[student, "stage_03"][0] for student in EXPECTED_03} == EXPECTED_03
    course.grade_class(parallel, [STAGE_03], jobs=2)
    assert grades(parallel) == grades(serial)
    assert feedback(parallel) == feedback(serial)
    assert "wherever token 7 stands" in feedback(parallel)["feedback/cy/stage_03/stage_03.html"]  # the verdict


def test_a_grading_run_killed_half_way_then_run_again_grades_every_student_once(class_03, tmp_path):
    root = copy_course(class_03, tmp_path / "course")
    verdicts = root / VERDICTS / "stage_03"
    run = lil_transformy("course", "grade", str(root), "--stages", "03", "--jobs", "2", start_new_session=True)
    deadline = time.monotonic() + 600
    while not (root / "feedback" / "bo" / "stage_03").exists():  # the stub's verdict comes first, and is recorded
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0]
        time.sleep(0.2)
    started = descendants(run.pid)  # the judges of ada and cy are still running, each with its sandbox
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    judged_before = {p.name: p.stat().st_mtime_ns for p in verdicts.glob("*.json")}
    assert "bo.json" in judged_before and len(judged_before) < len(EXPECTED_03), judged_before
    assert len(started) >= 4, started  # two judges (own sessions: the kill does not reach them) and their children
    time.sleep(2)
    assert [pid for pid in started if alive(pid)] == [], "a process of the killed run is still running"

    again = lil_transformy("course", "grade", str(root), "--stages", "03", "--jobs", "2")
    output = again.communicate(timeout=900)[0]
    assert again.returncode == 0, output
    assert gradebook_rows(root) == [(s, "stage_03", score) for s, score in sorted(EXPECTED_03.items())]
    assert [(row["student_id"], float(row["raw_score"])) for row in grades(root)] == sorted(EXPECTED_03.items())
    for name, mtime in judged_before.items():  # judged once: the verdicts of the killed run were kept
        assert (verdicts / name).stat().st_mtime_ns == mtime, f"{name} was judged again"


def test_two_graders_share_a_postgresql_gradebook(postgres, tmp_path):
    first = tmp_path / "machine_1" / "course"
    course.build(first, [STAGE_00])  # SQLite in its config: --db points both graders elsewhere
    second = copy_course(first, tmp_path / "machine_2" / "course")
    students = [f"student_{i}" for i in range(6)]
    for root in (first, second):  # both machines hold every submission; each grades its share
        for i, student in enumerate(students):
            submit(root, student, STAGE_00, solved=i % 2 == 0)
    shares = [lil_transformy("course", "grade", str(root), "--stages", "00", "--shard", f"{k}/2", "--db", postgres)
              for k, root in ((1, first), (2, second))]  # both register the assignment in it, at the same time
    outputs = [share.communicate(timeout=600)[0] for share in shares]
    assert [share.returncode for share in shares] == [0, 0], outputs
    graded = [{p.name for p in (root / "autograded").iterdir()} for root in (first, second)]
    assert graded[0] and graded[1] and graded[0].isdisjoint(graded[1]) and graded[0] | graded[1] == set(students)

    export = lil_transformy("course", "export", str(second), "--stages", "00", "--db", postgres)
    assert export.wait(timeout=120) == 0, export.communicate()[0]
    assert gradebook_rows(second, postgres) == [(s, "stage_00", 2.0 if i % 2 == 0 else 0.0)
                                                for i, s in enumerate(students)]
    assert [(row["student_id"], float(row["raw_score"])) for row in grades(second)] == \
        [(s, 2.0 if i % 2 == 0 else 0.0) for i, s in enumerate(students)]
    assert gradebook_rows(first) == [], "a share wrote the local SQLite gradebook"

    configured = tmp_path / "configured" / "course"  # `course build --db` puts the URL in nbgrader_config.py
    course.build(configured, [STAGE_00], db=postgres)
    assert gradebook.gradebook_url(configured) == postgres and not (configured / "gradebook.db").exists()


def test_graders_starting_together_on_a_new_postgresql_gradebook_all_open_it(postgres):
    """Each creates nbgrader's tables; PostgreSQL lets one win and refuses the others, who must wait, not crash."""
    graders = 4
    start = threading.Barrier(graders)

    def open_it(_):
        start.wait()
        with gradebook.open_gradebook(postgres, COURSE_ID) as book:
            return len(book.students)

    with ThreadPoolExecutor(graders) as pool:
        assert list(pool.map(open_it, range(graders))) == [0] * graders


def test_shards_need_a_shared_gradebook(class_03):
    with pytest.raises(LilTransformyError, match="PostgreSQL"):
        course.grade_class(class_03, [STAGE_03], shard=(1, 2))


def test_more_jobs_than_cores_and_a_bad_share_are_refused(class_03, capsys):
    from lil_transformy.cli import main
    cores = len(os.sched_getaffinity(0))
    assert main(["course", "grade", str(class_03), "--stages", "03", "--jobs", str(cores + 1)]) == 2
    assert f"this machine has {cores} CPU cores" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["course", "grade", str(class_03), "--shard", "3/2"])
    assert "write K/M with 1 <= K <= M" in capsys.readouterr().err
