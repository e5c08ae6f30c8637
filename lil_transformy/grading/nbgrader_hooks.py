"""nbgrader's autograde, with the verdict computed by the course's judge instead of the student's kernel.

`lil-transformy course build` configures autograde to run `GradeWithTheChecks` where nbgrader runs
its Execute preprocessor. Nothing of the student's notebook is executed: the judge
(`grading.run_checks`) runs the stage's checks on a copy of only the submission's stage modules,
the student's code in a sandbox, and this preprocessor writes each group's verdict into its graded
cell: the messages as output, and an error when the group fails. nbgrader's own SaveAutoGrades then
scores the cells and records them in its gradebook, as for any autograded notebook. Every graded cell
gets an explicit verdict: nbgrader gives full marks to a graded cell without output. Whatever the
notebook defines, prints or patches cannot change the verdict, and a story cell that would loop,
crash or kill its kernel costs nothing.

Whatever starts autograde (`course grade`, nbgrader's command line, formgrader's Autograde button through
NbGraderAPI), a submission that cannot be judged is refused, and nothing is recorded for it: a grading
machine that cannot grade (no sandbox, no user namespaces, a missing dependency), one too busy to tell,
or a notebook with a test cell the judge does not run (`OnlyTheChecksGrade` refuses those already at
generate_assignment). Manually graded cells (answers, tasks) are left to formgrader, as nbgrader does.

`lil-transformy course grade` judges many students at once and then records them one by one
through nbgrader: verdicts are kept in `verdicts`, the folder where the judges leave them, and this
preprocessor reads the verdict made for exactly these modules (or judges them itself).
"""
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Int, Unicode

from lil_transformy.grading.judge import GROUPS, judged, not_graded_yet, run_checks, verdict
from lil_transformy.grading.sandbox import grading_environment_problem
from lil_transformy.stages import stage_of_assignment


class NotGradedYet(Exception):
    """No verdict (the grading machine was too busy, or cannot grade at all): autograde fails this submission, and
    records nothing."""


def foreign_tests(nb, number: str) -> list[str]:
    """The autograded test cells of `nb` that are not the course's graded cells: the judge never runs them."""
    return [cell.metadata["nbgrader"].get("grade_id", "?") for cell in nb.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
            and not cell.metadata["nbgrader"].get("solution")
            and cell.metadata["nbgrader"].get("grade_id", "").removeprefix(f"stage_{number}_") not in GROUPS]


def refuse_foreign_tests(nb, assignment: str) -> None:
    found = foreign_tests(nb, stage_of_assignment(assignment).number)
    if found:
        raise NotGradedYet(
            f"{assignment}: the autograded test cell{'s' * (len(found) > 1)} {', '.join(found)} would score without "
            f"running: the course's judge grades the stage modules with the checks and never executes the notebook. "
            f"Make {'them' if len(found) > 1 else 'it'} manually graded (an answer or a task, graded in formgrader) "
            f"or remove {'them' if len(found) > 1 else 'it'}, then run `nbgrader generate_assignment {assignment} "
            f"--force`")


class OnlyTheChecksGrade(NbGraderPreprocessor):
    """At generate_assignment: refuse an autograded test cell the course's judge would never run (it would score
    full marks without running). Manually graded cells are welcome."""

    def preprocess(self, nb, resources):
        refuse_foreign_tests(nb, resources["nbgrader"]["assignment"])
        return nb, resources


class GradeWithTheChecks(NbGraderPreprocessor):
    sandbox = Bool(True, help="run the student's code in the bubblewrap sandbox").tag(config=True)
    threads = Int(2, help="CPU threads for one student's checks").tag(config=True)
    partial_credit = Bool(False, help="a share of a group's points per passing check, instead of all or "
                                      "nothing").tag(config=True)
    verdicts = Unicode("", help="a folder of saved verdicts, <assignment>/<student>.json (empty: judge here)").tag(
        config=True)
    secret_file = Unicode("", help="the course's secret: the judge's random choices come from it and the submission, "
                                   "so a re-grade prints the same messages").tag(config=True)

    def preprocess(self, nb, resources):
        assignment, student = resources["nbgrader"]["assignment"], resources["nbgrader"]["student"]
        number = stage_of_assignment(assignment).number
        folder = Path(resources["metadata"]["path"])
        isolate = "sandbox" if self.sandbox else "process"
        try:
            refuse_foreign_tests(nb, assignment)
            cannot_grade = grading_environment_problem(self.sandbox)
            if cannot_grade:
                raise NotGradedYet(cannot_grade)
        except NotGradedYet:
            self.withdraw(resources)
            raise
        self.log.info(f"judging {student}'s {assignment} (the stage's checks, the training included: up to a few "
                      f"minutes)")
        try:
            if self.verdicts:
                saved = Path(self.verdicts) / assignment / f"{student}.json"
                secret = Path(self.secret_file).read_text().strip() if self.secret_file else ""
                by_group, problem = judged(number, folder, saved, isolate, self.threads, secret)
            else:
                by_group, problem = run_checks(number, folder, isolate=isolate, threads=self.threads)
        except Exception as error:  # never leave a graded cell without a verdict: nbgrader would give full marks
            by_group, problem = {}, f"the grader failed ({type(error).__name__}: {error}); ask your instructor"
        if not_graded_yet(problem):  # no verdict: nbgrader records nothing for this submission, a re-run grades it
            self.withdraw(resources)
            raise NotGradedYet(problem)
        failed = sum(message is not None for group in GROUPS for _, message in by_group.get(group, []))
        self.log.info(f"judged {student}'s {assignment}: {failed} failed check{'s' * (failed != 1)}"
                      + (f" ({problem})" if problem else ""))
        for cell in nb.cells:
            nbgrader = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or (nbgrader.get("solution") and nbgrader.get("grade")):
                continue  # a manually graded answer keeps what the student wrote and ran, for formgrader
            cell.outputs, cell.execution_count = [], None
            group = nbgrader.get("grade_id", "").removeprefix(f"stage_{number}_")
            if nbgrader.get("grade") and group in GROUPS:
                text, earned = verdict(number, group, by_group, problem, self.partial_credit)
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
                if earned == 0:
                    cell.outputs.append(nbformat.v4.new_output("error", ename="ChecksFailed",
                                                               evalue=text.splitlines()[-1], traceback=[]))
                elif earned < GROUPS[group].points:  # nbgrader's partial credit: a number as the cell's result
                    cell.outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": f"{earned:g}"},
                                                               execution_count=None))
        return nb, resources

    def withdraw(self, resources) -> None:
        """Take back the submission nbgrader's autograde registered just before asking for a verdict, when it had
        never been graded: nothing at all is recorded (a submission graded before keeps its grades)."""
        from nbgrader.api import Gradebook, MissingEntry
        course = self.config.CourseDirectory.get("course_id", "") or "default_course"
        with Gradebook(resources["nbgrader"]["db_url"], course) as gradebook:
            try:
                submission = gradebook.find_submission(resources["nbgrader"]["assignment"],
                                                       resources["nbgrader"]["student"])
            except MissingEntry:
                return
            grades = [grade for notebook in submission.notebooks for grade in notebook.grades]
            if all(grade.auto_score is None and grade.manual_score is None for grade in grades):
                gradebook.remove_submission(resources["nbgrader"]["assignment"], resources["nbgrader"]["student"])
