"""Messages that point at the cause: a renamed scaffold attribute, NaN before causality."""
import shutil
import subprocess
import sys

import pytest

from lil_transformy.paths import REPO_ROOT


def run_checks_on(folder, stage, *options):
    done = subprocess.run([sys.executable, "-m", "pytest", f"checks/stage_{stage}", f"--impl={folder}", "-q",
                           "-m", "not training", "-p", "no:cacheprovider", *options],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    return done.stdout


@pytest.mark.parametrize("isolate", ["no", "process"])
def test_a_renamed_scaffold_attribute_is_named(tmp_path, isolate):
    shutil.copytree(REPO_ROOT / "solutions", tmp_path / "mine")
    module = tmp_path / "mine" / "stage_09_multi_head.py"
    module.write_text(module.read_text().replace("self.W_O", "self.out"))
    out = run_checks_on(tmp_path / "mine", "09", f"--isolate={isolate}")
    assert "your class must keep the attribute W_O under that name" in out
    assert "NoneType" not in out


def test_a_mask_that_hides_every_key_is_reported_as_nan_first(tmp_path):
    shutil.copytree(REPO_ROOT / "solutions", tmp_path / "mine")
    module = tmp_path / "mine" / "stage_04_attention.py"
    source = module.read_text()
    assert "~causal_mask(q.size(-2), q.device)" in source
    module.write_text(source.replace("~causal_mask(q.size(-2), q.device)", "torch.ones(q.size(-2), q.size(-2), "
                                                                           "dtype=torch.bool)"))
    out = run_checks_on(tmp_path / "mine", "04")
    assert "finite numbers in logits" in out and "all -inf" in out
