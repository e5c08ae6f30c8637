"""What an instructor and a student read: feedback pages for what could not be graded, a note on deleted graded
cells, the grade summarised at the top of every feedback page, the table of scores; and nbgrader's release_feedback
for every feedback folder, also those nbgrader's exchange did not make."""
import glob
import html
import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
from nbgrader.preprocessors import NbGraderPreprocessor

from lil_transformy.course.folder import evidence_of, grade_ids
from lil_transformy.grading.judge import GROUPS, not_graded_yet
from lil_transformy.stages import Stage, stage_of_assignment

EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")  # what release_feedback reads beside each feedback page


def failure_reason(log: str) -> str:
    """The first error nbgrader logged for a submission it could not grade."""
    errors = [line.split("ERROR]", 1)[1].strip() for line in log.splitlines() if "ERROR]" in line]
    return errors[0] if errors else "nbgrader could not grade it"

def note_missing_graded_cells(root: Path, student: str, assignment: str) -> None:
    """nbgrader scores a deleted graded cell 0 without a word in the feedback: add the word."""
    graded = root / "autograded" / student / assignment / f"{assignment}.ipynb"
    feedback = root / "feedback" / student / assignment / f"{assignment}.html"
    if not graded.exists() or not feedback.exists():
        return
    missing = [g for g in grade_ids(root / "source" / assignment / f"{assignment}.ipynb") if g not in grade_ids(graded)]
    if missing:
        prepend_note(feedback, f"<b>Graded cells missing from your notebook (deleted?), 0 points each: "
                               f"{html.escape(', '.join(missing))}.</b> Graded cells are locked: keep them, they run "
                               f"the checks on your code.")


def note_evidence(root: Path, student: str, assignment: str) -> None:
    """What the grader recorded that no lesson needs (grading/evidence.py): a sentence for the student, the details
    for the instructor, who reviews them; the points are those the checks gave."""
    feedback = root / "feedback" / student / assignment / f"{assignment}.html"
    records = evidence_of(root, student, assignment)
    if records and feedback.exists():
        prepend_note(feedback, f"<b>For review by your instructor:</b> while it was graded, your code did what no "
                               f"lesson needs ({html.escape('; '.join(records))}). Your points are those the checks "
                               f"gave; your instructor may look at your submission.")


def prepend_note(feedback: Path, note_html: str) -> None:
    note = f"<div style='border:2px solid #c00;padding:1em;margin:1em'>{note_html}</div>"
    text = feedback.read_text()
    feedback.write_text(text.replace("<body>", "<body>" + note, 1) if "<body>" in text else note + text)

def write_failure_feedback(root: Path, student: str, assignment: str, why: str) -> None:
    folder = root / "feedback" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    complete_feedback_folder(folder, root / "submitted" / student / assignment)
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
            key = (student, stage.assignment)
            if not_graded_yet(failed.get(key)):
                cells.append("not graded yet (machine overloaded)")
                continue
            score, full = scores.get(key, (0.0, 0.0))
            cells.append(f"{score:g}/{full:g}" + (f" (not graded: {failed[key]})" if key in failed else ""))
        print(f"| {student} | " + " | ".join(cells) + " |")


def complete_feedback_folder(feedback: Path, submission: Path) -> list[str]:
    """Give a feedback folder what nbgrader's release_feedback reads beside the page: the submission's timestamp.txt
    and submission_secret.txt, or new ones where the submission has none (put in submitted/ by hand, or nothing
    handed in). Returns the files it had to make up."""
    made = []
    for name in EXCHANGE_FILES:
        if (feedback / name).exists():
            continue
        if (submission / name).is_file():
            shutil.copyfile(submission / name, feedback / name)
            continue
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
        (feedback / name).write_text(now if name == "timestamp.txt" else secrets.token_hex(64))
        made.append(name)
    return made


class ReleaseFeedbackToEveryone(ExchangeReleaseFeedback):
    """nbgrader's release_feedback (`c.ExchangeFactory.release_feedback`), completing each feedback folder first.

    nbgrader's own stops at the first folder without timestamp.txt or submission_secret.txt (a submission collected
    by hand, a student who handed in nothing), and the students after it get no feedback. A page released under a
    new secret cannot be fetched by its student through nbgrader: the log says so, to hand it over another way."""

    def copy_files(self):
        for page in sorted(glob.glob(os.path.join(self.src_path, "*.html"))):
            feedback = Path(page).parent
            student, assignment = feedback.parent.name, feedback.name
            submission = Path(self.coursedir.format_path(self.coursedir.submitted_directory, student, assignment))
            if "submission_secret.txt" in complete_feedback_folder(feedback, submission):
                self.log.warning(f"{student}'s feedback on {assignment} is released, but {student} cannot fetch it "
                                 f"through nbgrader: the submission did not come through the exchange (hand the page "
                                 f"{page} over yourself)")
        super().copy_files()


class SummariseTheGrade(NbGraderPreprocessor):
    """At generate_feedback, after nbgrader's GetGrades: a table at the top of the page, a row per graded cell, named
    (nbgrader's own summary calls every one "Test cell"), with its score; the checks and the loss are in the cells."""

    def preprocess(self, nb, resources):
        number = stage_of_assignment(resources["nbgrader"]["assignment"]).number
        rows = []
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if not (meta.get("grade") or meta.get("task")):
                continue
            group = meta.get("grade_id", "").removeprefix(f"stage_{number}_")
            what = GROUPS[group].what if group in GROUPS else f"{meta.get('grade_id')} (graded by your instructor)"
            score = meta.get("score")
            rows.append(f"| {what} | {'not graded yet' if score is None else f'{score:g}'} / {meta.get('points', 0):g} |")
        if rows:
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(
                "## Your grade, part by part\n\n| part | points |\n| --- | --- |\n" + "\n".join(rows) +
                "\n\nEach part's checks, passed or failed, with what was expected and a hint, are in its cell below."))
        return nb, resources
