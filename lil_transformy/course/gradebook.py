"""The nbgrader gradebook, through nbgrader's own API and Gradebook: open it (SQLite or a shared PostgreSQL),
register the assignments, record a verdict, export grades.csv for every student."""
import csv
import time
from pathlib import Path

from lil_transformy.course.feedback import failure_reason
from lil_transformy.course.folder import (
    COURSE_ID,
    VERDICTS,
    course_root,
    course_stages,
    evidence_of,
    graded_groups_in_source,
    nbgrader_config,
    put_alembic_on_path,
    submitted_students,
)
from lil_transformy.errors import LilTransformyError
from lil_transformy.grading.judge import GROUPS
from lil_transformy.stages import Stage


def gradebook_url(root: Path, db: str | None = None) -> str:
    """The gradebook's URL: `db`, else the course's nbgrader_config.py, else nbgrader's default (SQLite)."""
    from nbgrader.coursedir import CourseDirectory
    return db or CourseDirectory(config=nbgrader_config(root)).db_url


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
        assignment = stage.assignment
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
    points = {s.assignment: float(sum(GROUPS[g].points for g in graded_groups_in_source(root, s)))
              for s in stages}
    return complete_grades(root / "grades.csv", students, points, set(postponed or ()))


def complete_grades(path: Path, students: list[str], points: dict[str, float],
                    postponed: set | frozenset = frozenset()) -> dict:
    """grades.csv as nbgrader exported it, plus a 0 row for every (student, assignment) it lacks but those not
    graded yet; the scores."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    assert fields is not None  # nbgrader's export writes the header row
    fields = [*fields, "review"]  # what the grader recorded that no lesson needs (course/feedback.note_evidence)
    root = path.parent
    for row in rows:
        row["review"] = "; ".join(evidence_of(root, row["student_id"], row["assignment"]))
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

