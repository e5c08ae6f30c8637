"""Graded cells: one group of a stage's checks, in its own process, messages on stdout, zero on failure."""
import contextlib
import io

import pytest

from lil_transformy.authoring.exercises import write_exercises
from lil_transformy.grading.judge import GROUPS, ChecksFailed, grade, run_checks
from lil_transformy.paths import REPO_ROOT


def test_the_reference_gets_the_points(capsys):
    grade("00", "property", REPO_ROOT / "solutions")  # stage 00: no training, so this stays fast
    assert "=> 2 of 2 points" in capsys.readouterr().out


def test_a_stub_gets_zero_and_is_told_why(tmp_path, capsys):
    write_exercises(target=tmp_path)
    with pytest.raises(ChecksFailed, match="3 of 3 checks failed"):
        grade("03", "shapes", tmp_path)
    out = capsys.readouterr()
    assert "FAIL  test_logits_shape" in out.out and "not written yet" in out.out and "0 of 1 points" in out.out
    assert out.err == "", "nbgrader gives zero to a graded cell that writes to stderr"


def test_skipped_checks_and_no_checks_earn_nothing(tmp_path):
    """A module that skips every check at import: skipped is not passed, in every group."""
    from lil_transformy.grading.judge import verdict

    write_exercises(target=tmp_path)
    module = tmp_path / "stage_00_data.py"
    module.write_text("import pytest\npytest.skip('nothing to see', allow_module_level=True)\n" + module.read_text())
    by_group, problem = run_checks("00", tmp_path)
    text, earned = verdict("00", "property", by_group, problem)
    assert earned == 0 and "FAIL" in text
    assert verdict("00", "property", by_group, problem, partial_credit=True)[1] == 0  # skipped: no share either
    assert verdict("00", "shapes", {}, None) == ("stage 00 (data prep) - shapes: your code returns tensors of the "
                                                 "right shape\n=> 0 of 1 points: no checks ran", 0.0)


def test_partial_credit_is_a_share_per_passing_check_and_off_by_default():
    from lil_transformy.grading.judge import verdict

    by_group = {"causality": [("test_a", None), ("test_b", "expected: x"), ("test_c", None), ("test_d", None)]}
    assert verdict("05", "causality", by_group, None)[1] == 0
    text, earned = verdict("05", "causality", by_group, None, partial_credit=True)
    assert earned == 1.5 and "=> 1.5 of 2 points: 1 of 4 checks failed (partial credit)" in text


def test_the_judge_never_imports_the_students_module(tmp_path):
    """A module that patches torch and pytest where it is imported changes only its own outputs."""
    import shutil

    shutil.copytree(REPO_ROOT / "solutions", tmp_path / "mine")
    module = tmp_path / "mine" / "stage_04_attention.py"
    module.write_text("import torch, pytest\ntorch.allclose = lambda *a, **k: True\npytest.fail = lambda *a, **k: None\n"
                      + module.read_text().replace('    scores = scores.masked_fill(~causal_mask(q.size(-2), q.device), '
                                                   'float("-inf"))\n', ""))
    by_group, problem = run_checks("04", tmp_path / "mine", isolate="process", select="not training")
    assert problem is None
    assert any(message and "sees the future" in message for _, message in by_group["causality"])


def test_every_check_is_in_exactly_one_group():
    class Collector:
        def pytest_collection_finish(self, session):
            self.items = session.items

    collector = Collector()
    with contextlib.redirect_stdout(io.StringIO()):
        assert pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", str(REPO_ROOT / "checks"),
                            "--impl=solutions"], plugins=[collector]) == 0
    for item in collector.items:
        groups = [g for g, spec in GROUPS.items() if item.get_closest_marker(spec.marker)]
        assert len(groups) == 1, f"{item.nodeid} is in {groups}"


def test_an_endless_loop_costs_its_run_says_why_and_leaves_nothing_running(tmp_path):
    """The judge's backstop stops the run, and the student's looping code dies with the judge."""
    import subprocess
    import time

    def children():
        found = subprocess.run(["pgrep", "-f", "lil_transformy.grading.remote"], capture_output=True, text=True).stdout
        return set(found.split())

    before = children()
    write_exercises(target=tmp_path)
    module = tmp_path / "stage_03_bigram.py"
    module.write_text(module.read_text().replace("        # YOUR CODE HERE\n", "        while True:\n            pass\n"))
    outcomes, problem = run_checks("03", tmp_path, seconds=10)
    assert outcomes == {} and "did not finish within 1" in problem and "loop forever" in problem
    time.sleep(2)
    assert children() - before == set(), "the student's process outlived its judge"
