"""What an instructor and a student read: feedback pages for what could not be graded, a note on deleted graded
cells, the table of scores."""
import html
from pathlib import Path

from lil_transformy.course.folder import evidence_of, grade_ids
from lil_transformy.grading.judge import not_graded_yet
from lil_transformy.stages import Stage


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
