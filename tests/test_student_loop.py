"""The student's loop: a fast, quiet, honest answer on every run of `pytest checks/stage_NN`.

The loss check does not train after a fast check failed, and answers from a cache when nothing it
depends on changed since it passed; the likeliest cause is named first, each hint printed once; a
check prints the same numbers in the student's own process and in grading's child.
"""
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lil_transformy import trainings
from lil_transformy.authoring.exercises import write_exercises
from lil_transformy.authoring.mutants import apply, named
from lil_transformy.paths import CACHE_ENV, CHECKS, REPO_ROOT


def mutant(name: str, target: Path) -> Path:
    """A copy of the solutions with one realistic mistake (mutants/NAME.toml)."""
    return apply(named("mutants", name), target)


def run_stage(folder: Path, number: str, cache: Path, *options: str, **environment: str) -> tuple[str, float, dict]:
    """`pytest checks/stage_NN` on `folder` as a student runs it: (output, seconds, {check: failure or None})."""
    report = cache.parent / f"report-{time.monotonic_ns()}.xml"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", f"checks/stage_{number}", f"--impl={folder}",
                           "-p", "no:cacheprovider", f"--junitxml={report}", *options], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, CACHE_ENV: str(cache), **environment})
    seconds = time.perf_counter() - started
    outcomes = {case.get("name"): next(((c.text or c.get("message")).strip().removeprefix("Failed: ") for c in case
                                        if c.tag in ("failure", "error")), None)
                for case in ET.parse(report).getroot().iter("testcase")}
    return done.stdout, seconds, outcomes


@pytest.fixture
def cache(tmp_path, token_data):
    """A cache of its own (the tokenized corpus copied in): no loss check has passed there yet."""
    from lil_transformy.paths import cache_dir

    folder = tmp_path / "cache"
    shutil.copytree(cache_dir(), folder, ignore=shutil.ignore_patterns("loss-checks", "trainings", "wheels", "datasets*", "full*"))
    return folder


def test_after_a_failed_fast_check_the_loss_check_fails_at_once_naming_it(tmp_path, cache):
    out, seconds, outcomes = run_stage(mutant("mask_after_softmax", tmp_path / "mine"), "04", cache)
    loss = outcomes["test_loss_on_the_ladder"]
    assert loss.startswith("not trained: ") and "test_attention_weights_are_causal_and_normalised" in loss
    assert "loss checks" in out and "stage 04: not trained" in out
    assert seconds < 60, f"{seconds:.0f} s: it trained?"  # a training is 20-30 s idle; the fast checks 2-3 s


@pytest.mark.training
@pytest.mark.timeout(600)
def test_a_passing_loss_check_reports_its_loss_and_its_training_serves_later_runs(tmp_path, cache):
    mine = tmp_path / "mine"
    shutil.copytree(REPO_ROOT / "solutions", mine)
    out, _, outcomes = run_stage(mine, "03", cache)
    assert all(message is None for message in outcomes.values())
    summary = next(line for line in out.splitlines() if line.startswith("stage 03: held-out loss"))
    assert "passed" in summary and "below stage 02's" in summary and "trained 1130 steps" in summary
    (mine / "stage_09_multi_head.py").write_text((mine / "stage_09_multi_head.py").read_text() + "\n# a comment\n")
    out, seconds, outcomes = run_stage(mine, "03", cache)  # a later stage edited: stage 03 is as it was
    assert all(message is None for message in outcomes.values()) and "from the cache: trained by the loss check" in out
    assert seconds < 15, f"{seconds:.0f} s for an unchanged stage"
    done = subprocess.run([sys.executable, "-m", "lil_transformy.cli", "train", "03", f"--impl={mine}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, CACHE_ENV: str(cache)})
    assert "from the cache: trained by the loss check" in done.stdout, done.stdout + done.stderr
    assert len((cache / "trainings" / "log.jsonl").read_text().splitlines()) == 1  # one training for all three


def test_the_cache_key_changes_with_every_input(tmp_path, monkeypatch, token_data):
    """The stage's module and the stage modules it imports, the checks, the reference losses (and the library, hashed
    the same way)."""
    mine = tmp_path / "mine"
    shutil.copytree(REPO_ROOT / "solutions", mine)
    checks = tmp_path / "checks"
    shutil.copytree(CHECKS, checks)
    report = tmp_path / "evolution.json"
    shutil.copy(trainings.EVOLUTION_REPORT, report)
    monkeypatch.setattr(trainings, "CHECKS", checks)
    monkeypatch.setattr(trainings, "EVOLUTION_REPORT", report)
    keys = [trainings.training_key("05", mine, token_data)]
    for changed in (mine / "stage_04_attention.py", mine / "stage_05_attention_positions.py", checks / "model_checks.py",
                    checks / "stage_05" / "__init__.py", report):
        changed.write_text(changed.read_text() + "\n")
        keys.append(trainings.training_key("05", mine, token_data))
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("name, number, cause", [
    ("softmax_wrong_axis", "04", "softmax over the queries"),
    ("softmax_wrong_axis", "05", "fix stage 04 first"),
    ("mask_after_softmax", "04", "mask applied after the softmax"),
    ("no_causal_mask", "06", "puts weight on future keys"),
    ("split_heads_by_plain_view", "09", "a plain view(batch, n_heads, seq, d_head) mixes positions"),
])
def test_a_leak_is_blamed_on_its_likeliest_cause(tmp_path, cache, name, number, cause):
    out, _, outcomes = run_stage(mutant(name, tmp_path / "mine"), number, cache, "-m", "not training")
    peeking = {check: message for check, message in outcomes.items() if "peeking" in check and message}
    assert peeking and all(cause in message for message in peeking.values()), peeking
    first_failure = next(check for check, message in outcomes.items() if message)
    assert "peeking" not in first_failure or number != "04", "the component's own check comes first"


def test_a_stubs_hint_is_printed_once(tmp_path, cache):
    write_exercises(target=tmp_path / "stubs")
    out, _, _ = run_stage(tmp_path / "stubs", "04", cache, "-m", "not training", COLUMNS="300", CI="true")
    assert "During handling of the above exception" not in out
    assert out.count("True where j <= i, the lower triangle with its diagonal") == 1  # causal_mask: one check calls it


@pytest.mark.parametrize("name, number", [("mask_after_softmax", "04"), ("ffn_without_nonlinearity", "06"),
                                          ("post_norm_on_the_stream", "07"), ("heads_never_split", "09")])
def test_a_check_prints_the_same_numbers_in_the_students_run_and_in_grading(tmp_path, cache, name, number):
    mine = mutant(name, tmp_path / "mine")
    _, _, local = run_stage(mine, number, cache, "-m", "not training")
    _, _, graded = run_stage(mine, number, cache, "-m", "not training", "--isolate=process")
    assert any(local.values()) and local == graded
