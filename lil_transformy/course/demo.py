"""`lil-transformy course demo`: build a course, submit three students (the reference, the stubs, an attention
without its causal mask), grade them, and check every score is the expected one."""
import shutil
import tempfile
from pathlib import Path

from lil_transformy.authoring.mutants import apply, named
from lil_transformy.course.autograde import grade_class
from lil_transformy.course.release import build, stage_modules
from lil_transformy.grading.judge import GROUPS
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import Stage, stage_of_assignment

BROKEN_ATTENTION = "no_causal_mask"  # mutants/no_causal_mask.toml: the `broken` student's stage 04

STUDENTS = ("reference", "stub", "broken")

def hand_in(root: Path, student: str, stage: Stage, source: Path | None = None,
            files: dict[str, str] | None = None) -> Path:
    """`student`'s submission of `stage`, in nbgrader's layout: a copy of the release, with the stage modules
    of `source` (a folder laid out as solutions/; None: the release's stubs, untouched) and `files` over it."""
    folder = root / "submitted" / student / stage.assignment
    shutil.copytree(root / "release" / stage.assignment, folder)
    if source is not None:
        for module in stage_modules(stage):  # their own solution of this stage and the ones before
            shutil.copy(source / module, folder)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


def submit(root: Path, student: str, stage: Stage) -> Path:
    """The demo's students: `reference` hands in the solutions, `stub` the release, `broken` a stage 04 without
    its causal mask."""
    if student != "broken":
        return hand_in(root, student, stage, REPO_ROOT / "solutions" if student == "reference" else None)
    with tempfile.TemporaryDirectory() as tmp:
        return hand_in(root, student, stage, apply(named("mutants", BROKEN_ATTENTION), Path(tmp) / "copy"))

def expected_score(student: str, stage: Stage, groups: list[str]) -> float:
    full = sum(GROUPS[g].points for g in groups)
    if student == "stub":
        return 0
    if student == "broken" and "04" <= stage.number and "causality" in groups and stage.number != "03b":
        # its model sees the future: the causality points, and the loss point (a loss that used the future is none)
        return full - GROUPS["causality"].points - GROUPS["loss"].points * ("loss" in groups)
    return full

def demo(root: Path, stages: list[Stage], sandboxed: bool = True, jobs: int = 1, db: str | None = None) -> bool:
    """Build, submit three students per stage, grade; True if every score is the expected one."""
    groups = build(root, stages, db=db)
    for stage in stages:
        for student in STUDENTS:
            submit(root, student, stage)
    scores, _ = grade_class(root, stages, sandboxed, jobs)
    wrong = {key: want for key in scores
             if (want := expected_score(key[0], stage_of_assignment(key[1]),
                                        groups[stage_of_assignment(key[1]).number])) != scores[key][0]}
    for (student, assignment), want in wrong.items():
        print(f"NOT as expected: {student} got {scores[student, assignment][0]:g} in {assignment}, expected {want:g}")
    if not wrong:
        print("as expected: reference full marks, stub zero, broken loses the causality and loss points (stages 04-09)")
    return not wrong
