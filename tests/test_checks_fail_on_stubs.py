"""Every check in checks/ must fail on the untouched stubs: a check a stub passes grades nothing."""
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from lil_transformy.authoring.exercises import write_exercises
from lil_transformy.paths import CHECKS, REPO_ROOT

TRAINING_CHECKS = ("test_loss_on_the_ladder", "test_the_trained_model_never_sees_the_future")


@pytest.mark.parametrize("isolate", ["no", "process"])
def test_every_check_fails_on_the_stubs(tmp_path, isolate):
    """In a student's own run the loss check does not train after a fast check failed: it fails saying so."""
    stubs = tmp_path / "stubs"
    write_exercises(target=stubs)  # fresh from solutions/, whatever a student did to exercises/
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "checks", f"--impl={stubs}", "-q", "-p", "no:cacheprovider",
                    "-m", "not passes_on_stubs", f"--isolate={isolate}",
                    f"--junitxml={report}"], cwd=REPO_ROOT, capture_output=True, timeout=600)
    cases = ET.parse(report).getroot().iter("testcase")
    outcomes = {f"{c.get('classname')}::{c.get('name')}": " ".join(
        f"{child.tag}: {child.get('message') or child.text}" for child in c if child.tag != "properties")
        for c in cases}
    assert len(outcomes) > 20, "the checks were not collected"
    # A check fails on the stub only if it fails *because* of the stub: the stub's own NotImplementedError
    # ("not written yet"), not a missing data folder or another set-up error.
    because = "not written yet"
    not_failed_by_the_stub = {name: outcome for name, outcome in outcomes.items()
                              if not outcome.startswith(("failure", "error")) or not (
                                  because in outcome or (isolate == "no" and name.endswith(TRAINING_CHECKS)
                                                         and "not trained: " in outcome))}
    assert not_failed_by_the_stub == {}, f"these checks do not fail on the stub's NotImplementedError: {not_failed_by_the_stub}"


def test_ready_made_attention_is_caught(tmp_path):
    """The one check a stub passes by design must still fail a shortcut."""
    from _pytest.outcomes import Failed

    spec = importlib.util.spec_from_file_location("attention_checks", CHECKS / "attention_checks.py")
    attention_checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(attention_checks)

    source = ("import torch.nn.functional as F\n\ndef attention(q, k, v):\n"
              "    return F.scaled_dot_product_attention(q, k, v, is_causal=True)\n")
    with pytest.raises(Failed, match="scaled_dot_product_attention in stage_04_attention.py"):
        attention_checks.expect_nothing_ready_made(("stage_04_attention.py", source))
