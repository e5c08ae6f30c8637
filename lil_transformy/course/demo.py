"""`lil-transformy course demo`: build a course, submit three students (the reference, the stubs, an attention
without its causal mask), grade them, and check every score is the expected one."""
import shutil
import tempfile
from pathlib import Path

from lil_transformy.authoring.mutants import apply, read_patches
from lil_transformy.course.autograde import grade_class
from lil_transformy.course.release import build, stage_modules
from lil_transformy.grading.judge import GROUPS
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import Stage, stage_of_assignment

BROKEN_ATTENTION = "no_causal_mask"  # mutants/no_causal_mask.toml: the `broken` student's stage 04

STUDENTS = ("reference", "stub", "broken")

def submit(root: Path, student: str, stage: Stage) -> Path:
    """A copy of the release as `student`'s submission; `reference` and `broken` bring their own modules."""
    folder = root / "submitted" / student / stage.assignment
    shutil.copytree(root / "release" / stage.assignment, folder)
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
    scores, _ = grade_class(root, stages, sandboxed, jobs)
    wrong = {key: want for key in scores
             if (want := expected_score(key[0], stage_of_assignment(key[1]),
                                        groups[stage_of_assignment(key[1]).number])) != scores[key][0]}
    for (student, assignment), want in wrong.items():
        print(f"NOT as expected: {student} got {scores[student, assignment][0]:g} in {assignment}, expected {want:g}")
    if not wrong:
        print("as expected: reference full marks, stub zero, broken loses the causality points (stages 04-09)")
    return not wrong
