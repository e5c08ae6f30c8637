"""`lil-transformy course grade`: autograde a whole class, N students at once, resumable, shardable.

Each submission is judged (lil_transformy.grading.judge) in parallel; each verdict is recorded through
nbgrader's own API one at a time (gradebook.py), and kept with what it was made from, so a stopped
run judges only what is left. A submission the machine was too busy to judge is not graded yet:
nothing is recorded, and the next run judges it.
"""
import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from lil_transformy.course.feedback import (
    failure_reason,
    note_evidence,
    note_missing_graded_cells,
    print_table,
    write_failure_feedback,
)
from lil_transformy.course.folder import VERDICTS, course_root, course_stages, submitted_students
from lil_transformy.course.gradebook import export, gradebook_api, gradebook_url, register_assignments
from lil_transformy.course.report import class_report
from lil_transformy.errors import LilTransformyError
from lil_transformy.grading.judge import judged, not_graded_yet
from lil_transformy.grading.sandbox import require_grading_environment
from lil_transformy.stages import Stage, stage_of_assignment


def grade_class(root: Path, stages: list[Stage] | None = None, sandboxed: bool = True, jobs: int = 1,
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
    require_grading_environment(unsandboxed=not sandboxed)
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
    work = [(s, stage.assignment) for stage in stages for s in students]
    failed = {key: "nothing was submitted for this assignment" for key in work
              if not (submitted / key[0] / key[1]).is_dir()}
    work = [key for key in work if key not in failed]
    postponed = {}  # (student, assignment): why it could not be judged now (the machine was overloaded)
    print(f"grading {len(work)} submissions of {len(students)} students"
          + (f" (share {shard[0]} of {shard[1]})" if shard else "")
          + f", {jobs} at a time with {threads} CPU thread{'s' * (threads > 1)} each", flush=True)
    with ThreadPoolExecutor(jobs) as pool, tqdm(total=len(work), desc="graded", unit="submission") as bar:
        judging = {pool.submit(judged, stage_of_assignment(assignment).number, submitted / student / assignment,
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
    scores = export(root, stages, db)
    print_table(scores, {**failed, **postponed}, stages)
    print(f"\ngrades: {root / 'grades.csv'}; feedback: {root / 'feedback'}")
    class_report(root, stages)
    if postponed:
        print(f"\n{len(postponed)} submission{'s' * (len(postponed) > 1)} NOT GRADED YET: the grading machine was "
              f"too busy to tell whether the code is slow (see limits.py). Nothing was recorded for them; run the "
              f"same command again, on a quieter machine or with fewer --jobs: it grades only what is left.")
    return scores, failed


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
    note_evidence(root, student, assignment)
    return None
