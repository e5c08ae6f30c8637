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


def test_dropout_left_on_in_eval_is_reported_as_randomness_not_as_peeking(tmp_path):
    shutil.copytree(REPO_ROOT / "solutions", tmp_path / "mine")
    module = tmp_path / "mine" / "stage_06_ffn.py"
    source = module.read_text()
    old = "        x = self.ffn(x)  # (batch, seq, d_model): compute on what was gathered\n"
    assert old in source
    module.write_text(source.replace(old, old + "        x = nn.functional.dropout(x, 0.1, training=True)\n"))
    out = run_checks_on(tmp_path / "mine", "06", "-k", "peeking")
    assert "randomness left on in eval()" in out
    assert "sees the future" not in out


def test_an_input_edited_in_place_is_named(tmp_path):
    shutil.copytree(REPO_ROOT / "solutions", tmp_path / "mine")
    module = tmp_path / "mine" / "stage_03_bigram.py"
    source = module.read_text()
    old = "        x = self.token_embedding(idx)  # (batch, seq, d_model)\n"
    assert old in source
    module.write_text(source.replace(old, "        idx[:, -1] = 0\n" + old))
    out = run_checks_on(tmp_path / "mine", "03", "-k", "peeking", "--isolate=no")
    assert "token ids that changed during the forward pass" in out
