"""The grading wing, the security boundary: where a verdict on a student's code is decided.

judge.py runs a stage's checks on a submission in a fresh pytest (the judge), the student's code
in a child process (remote.py) inside a sandbox (sandbox.py) under CPU-second budgets (limits.py);
checking.py is what the checks share (messages that teach, causality probes, setting weights),
trainer.py the graded training, which the judge drives; nbgrader_hooks.py puts the verdict into nbgrader's autograde.
A graded cell of a released notebook calls `grade` (below): that name is part of every release.
"""
from lil_transformy.grading.judge import grade

__all__ = ["grade"]
