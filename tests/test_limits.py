"""A verdict never depends on how busy the grading machine is (lil_transformy/grading/limits.py).

Real processes, real load: code that loops uses up its CPU seconds, code that sleeps reaches the
wall-clock backstop without computing, and code that wants the CPU but is starved by other work
(the same busy loop, niced below as many busy loops as there are cores, all on one core) is "not
graded yet" — for one check, and for a whole judge, whose verdict is then not saved.
"""
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from lil_transformy.authoring.exercises import write_exercises
from lil_transformy.grading.judge import judged, not_graded_yet
from lil_transformy.grading.limits import OVERLOADED, Budget, MachineOverloaded, OverBudget

BUSY = [sys.executable, "-c", "while True: pass"]


@contextmanager
def started(command, nice=0):
    """A process on CPU 0 only, stopped afterwards."""
    process = subprocess.Popen(command, preexec_fn=lambda: (os.sched_setaffinity(0, {0}), os.nice(nice)))
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def verdict_of(budget: Budget, seconds: float):
    """What the budget says within `seconds`: the exception it raises, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            budget.check()
        except (OverBudget, MachineOverloaded) as error:
            return error
        time.sleep(0.1)
    return None


def test_code_that_loops_uses_up_its_cpu_seconds():
    with started(BUSY) as loop:
        found = verdict_of(Budget(loop.pid, cpu_seconds=1, wall_seconds=60), 20)
    assert isinstance(found, OverBudget) and "more than 1 CPU seconds" in str(found) and "loop" in str(found)


def test_code_that_sleeps_reaches_the_backstop_and_is_told_so():
    with started(["sleep", "60"]) as sleeper:
        found = verdict_of(Budget(sleeper.pid, cpu_seconds=30, wall_seconds=1), 20)
    assert isinstance(found, OverBudget) and "sleep" in str(found)


def test_code_starved_of_the_cpu_is_not_graded_yet():
    with started(BUSY), started(BUSY), started(BUSY, nice=19) as starved:  # CPU 0: two loops, and ours below them
        found = verdict_of(Budget(starved.pid, cpu_seconds=30, wall_seconds=3), 20)
    assert isinstance(found, MachineOverloaded) and str(found).startswith(OVERLOADED)


@pytest.mark.timeout(300)
def test_a_judge_starved_of_the_cpu_saves_no_verdict_and_the_next_run_grades(tmp_path):
    """The whole judge (pytest and the student's child) on one core under two busy loops, with a 5 s backstop."""
    write_exercises(target=tmp_path / "stubs")
    saved = tmp_path / "verdicts" / "ada.json"
    judge = (f"import os, sys; os.sched_setaffinity(0, {{0}}); os.nice(19); "
             f"from pathlib import Path; from lil_transformy.grading import judge; "
             f"judge.ALL_CHECKS_WALL_SECONDS = 5; "
             f"print(judge.judged('00', Path({str(tmp_path / 'stubs')!r}), Path({str(saved)!r}), 'process')[1])")
    with started(BUSY), started(BUSY):
        done = subprocess.run([sys.executable, "-c", judge], capture_output=True, text=True, timeout=240)
    assert not_graded_yet(done.stdout.strip()), done.stdout + done.stderr
    assert not saved.exists(), "a verdict reached on an overloaded machine was saved"
    outcomes, problem = judged("00", tmp_path / "stubs", saved, "process")  # the next run, on a quiet machine
    assert problem is None and outcomes and saved.exists()
