"""Graded cells: one group of a stage's checks, in its own process, messages on stdout, zero on failure."""

import pytest
import torch

from lil_transformy.authoring.exercises import write_exercises
from lil_transformy.grading.judge import ChecksFailed, grade
from lil_transformy.paths import REPO_ROOT


def test_the_reference_gets_the_points(capsys):
    grade("00", "property", REPO_ROOT / "solutions")  # stage 00: no training, so this stays fast
    assert "=> 2 of 2 points" in capsys.readouterr().out


def test_a_stub_gets_zero_and_is_told_why(tmp_path, capsys):
    write_exercises(target=tmp_path)
    with pytest.raises(ChecksFailed, match="3 of 3 checks failed") as failed:
        grade("03", "shapes", tmp_path)
    said = str(failed.value)  # the whole verdict is the error: nbgrader's Validate shows a failed cell's error only
    assert "FAIL  test_logits_shape" in said and "not written yet" in said and "0 of 1 points" in said
    assert capsys.readouterr().err == "", "nbgrader gives zero to a graded cell that writes to stderr"


def test_a_graded_cell_leaves_the_training_to_grading_and_says_so(capsys):
    """A graded cell in a student's kernel (nbgrader's Validate gives it 30 s) runs every check but those that train."""
    grade("03", "loss", REPO_ROOT / "solutions")
    grade("03", "causality", REPO_ROOT / "solutions")
    out = capsys.readouterr().out
    assert "LATER  test_loss_on_the_ladder" in out and "LATER  test_the_trained_model_never_sees_the_future" in out
    assert "PASS  test_no_peeking_by_perturbation" in out and out.count("decided at grading") >= 4


def test_an_interrupted_graded_cell_stops_its_judge_at_once():
    """Ctrl-C in a notebook, or nbgrader's cell timeout (it interrupts the kernel): the kernel lives on, and no judge
    is left running beside it."""
    import subprocess
    import sys

    cell = ("import os, signal, threading, time, psutil\n"
            "threading.Timer(3, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
            "from lil_transformy.grading import grade\n"
            "try:\n"
            f"    grade('09', 'shapes', {str(REPO_ROOT / 'solutions')!r})\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted')\n"
            "time.sleep(1)\n"
            "print('left running:', len(psutil.Process().children(recursive=True)))\n")
    done = subprocess.run([sys.executable, "-c", cell], capture_output=True, text=True, timeout=120)
    assert "interrupted" in done.stdout and "left running: 0" in done.stdout, done.stdout + done.stderr


def test_a_regrade_makes_the_same_random_choices_and_only_the_course_secret_makes_them(tmp_path, monkeypatch):
    """The judge's random choices (where the trained model's windows are cut) come from the course's secret and the
    submission: the same for a re-grade, other for another course, never readable by the student's code."""
    from lil_transformy.grading import judge
    from lil_transformy.grading.checking import judge_generator
    from lil_transformy.grading.sandbox import child_environment
    from lil_transformy.paths import JUDGE_SEED_ENV

    seeds = []
    monkeypatch.setattr(judge, "run_checks", lambda *args, seed=None, **kwargs: (seeds.append(seed), ({}, None))[1])
    for secret in ("course a", "course a", "course b"):
        judge.judged("00", REPO_ROOT / "solutions", tmp_path / f"{len(seeds)}.json", "process", secret=secret)
    assert seeds[0] == seeds[1] != seeds[2] and seeds[0] is not None
    monkeypatch.setenv(JUDGE_SEED_ENV, str(seeds[0]))
    assert torch.equal(torch.randperm(50, generator=judge_generator()), torch.randperm(50, generator=judge_generator()))
    assert JUDGE_SEED_ENV not in child_environment(str(tmp_path), 1)  # the child's environment is a whitelist
