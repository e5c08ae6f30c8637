"""The nbgrader gradebook, through nbgrader's own API and Gradebook: open it (SQLite or a shared PostgreSQL),
register the assignments, record a verdict, export grades.csv for every student: the same file whether
`course grade` or nbgrader's own `nbgrader export` writes it (`GradesWithReview`)."""
import csv
import time
from pathlib import Path

from nbgrader.plugins import CsvExportPlugin

from lil_transformy.course.feedback import failure_reason
from lil_transformy.course.folder import (
    VERDICTS,
    course_root,
    course_stages,
    evidence_of,
    nbgrader_config,
    points_in_source,
    put_alembic_on_path,
    submitted_students,
)
from lil_transformy.errors import LilTransformyError
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

def open_gradebook(url: str, course: str):
    """nbgrader's Gradebook at `url`. Graders that start together on a new PostgreSQL gradebook each create its
    tables and its course row; the server lets one win and refuses the others (a duplicate type, table or key):
    they wait and open it."""
    from nbgrader.api import Gradebook, InvalidEntry
    from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError, ProgrammingError
    put_alembic_on_path()
    for attempt in range(5):
        try:
            return Gradebook(url, course)
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
            with open_gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
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

class GradesWithReview(CsvExportPlugin):
    """nbgrader's CSV export (`c.ExportApp.plugin_class`; `course grade` writes the same), completed: a row for every
    student with a folder in submitted/ and every assignment, a `status` column (nothing handed in: 0; handed in but
    not graded yet: no score) and a `review` column (what the grader recorded that no lesson needs)."""

    def export(self, gradebook) -> None:
        super().export(gradebook)
        root = Path(self.parent.coursedir.root)
        graded = {(submission.student.id, assignment.name) for assignment in gradebook.assignments
                  for submission in assignment.submissions}
        complete_grades(root, Path(self.to or "grades.csv"), graded)  # nbgrader's default: grades.csv here


def points_of_assignments(root: Path) -> dict[str, float]:
    """{assignment: its points}: every graded cell of its source notebook, the instructor's own included."""
    return {stage.assignment: points_in_source(root, stage) for stage in course_stages(root)}


def export(root: Path, stages: list[Stage] | None = None, db: str | None = None) -> dict:
    """grades.csv from the gradebook (GradesWithReview, as `nbgrader export` writes it); the scores of `stages`."""
    from nbgrader.apps import NbGraderAPI
    root = course_root(root)
    stages = course_stages(root, stages)
    api = NbGraderAPI(config=nbgrader_config(root))
    with open_gradebook(gradebook_url(root, db), api.coursedir.course_id) as gradebook:
        GradesWithReview(to=str(root / "grades.csv"), parent=api).export(gradebook)
    return read_scores(root / "grades.csv", {stage.assignment for stage in stages})


def read_scores(path: Path, assignments: set[str]) -> dict:
    """{(student, assignment): (score, max score)} of grades.csv, for `assignments`."""
    with open(path, newline="") as f:
        return {(row["student_id"], row["assignment"]): (float(row["raw_score"] or 0), float(row["max_score"]))
                for row in csv.DictReader(f) if row["assignment"] in assignments}


def complete_grades(root: Path, path: Path, graded: set[tuple[str, str]]) -> None:
    """grades.csv as nbgrader exported it (a row per student it knows and assignment, 0 where it has no submission),
    completed for the course in `root`: `graded` are the (student, assignment) nbgrader has a submission of."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    assert fields is not None  # nbgrader's export writes the header row
    fields = [*fields, "status", "review"]
    have = {(row["student_id"], row["assignment"]) for row in rows}
    rows += [{"assignment": assignment, "student_id": student, "max_score": str(points)}
             for assignment, points in points_of_assignments(root).items() for student in submitted_students(root)
             if (student, assignment) not in have]
    for row in rows:
        key = (row["student_id"], row["assignment"])
        handed_in = (root / "submitted" / key[0] / key[1]).is_dir()
        row["status"] = "graded" if key in graded else "handed in, not graded" if handed_in else "nothing handed in"
        if row["status"] != "graded":
            row["raw_score"] = row["score"] = "" if handed_in else "0.0"
        row["review"] = "; ".join(evidence_of(root, *key))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
