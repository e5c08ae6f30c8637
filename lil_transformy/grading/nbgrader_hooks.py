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

`lil-transformy course grade` judges many students at once and then records them one by one
through nbgrader: it sets `verdicts`, the folder where the judges left their verdicts, and this
preprocessor reads the verdict made for exactly these modules (or judges them itself).
"""
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Int, Unicode

from lil_transformy.grading.judge import GROUPS, judged, not_graded_yet, run_checks, verdict
from lil_transformy.stages import stage_of_assignment


class NotGradedYet(Exception):
    """The grading machine was too busy to reach a verdict: autograde fails this submission, and records nothing."""


class GradeWithTheChecks(NbGraderPreprocessor):
    sandbox = Bool(True, help="run the student's code in the bubblewrap sandbox").tag(config=True)
    threads = Int(2, help="CPU threads for one student's checks").tag(config=True)
    partial_credit = Bool(False, help="a share of a group's points per passing check, instead of all or "
                                      "nothing").tag(config=True)
    verdicts = Unicode("", help="a folder of saved verdicts, <assignment>/<student>.json (empty: judge here)").tag(
        config=True)

    def preprocess(self, nb, resources):
        number = stage_of_assignment(resources["nbgrader"]["assignment"]).number
        folder = Path(resources["metadata"]["path"])
        isolate = "sandbox" if self.sandbox else "process"
        try:
            if self.verdicts:
                saved = Path(self.verdicts) / resources["nbgrader"]["assignment"] / f"{resources['nbgrader']['student']}.json"
                by_group, problem = judged(number, folder, saved, isolate, self.threads)
            else:
                by_group, problem = run_checks(number, folder, isolate=isolate, threads=self.threads)
        except Exception as error:  # never leave a graded cell without a verdict: nbgrader would give full marks
            by_group, problem = {}, f"the grader failed ({type(error).__name__}: {error}); ask your instructor"
        if not_graded_yet(problem):  # no verdict: nbgrader records nothing for this submission, a re-run grades it
            raise NotGradedYet(problem)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs, cell.execution_count = [], None
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            group = grade_id.removeprefix(f"stage_{number}_")
            if cell.metadata.get("nbgrader", {}).get("grade") and group in GROUPS:
                text, earned = verdict(number, group, by_group, problem, self.partial_credit)
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
                if earned == 0:
                    cell.outputs.append(nbformat.v4.new_output("error", ename="ChecksFailed",
                                                               evalue=text.splitlines()[-1], traceback=[]))
                elif earned < GROUPS[group].points:  # nbgrader's partial credit: a number as the cell's result
                    cell.outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": f"{earned:g}"},
                                                               execution_count=None))
        return nb, resources
