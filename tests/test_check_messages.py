"""Messages that point at the cause: a renamed scaffold attribute, NaN before causality."""
import subprocess
import sys

import pytest

from lil_transformy.authoring.mutants import solutions_with
from lil_transformy.paths import REPO_ROOT


def run_checks_on(folder, stage, *options):
    done = subprocess.run([sys.executable, "-m", "pytest", f"checks/stage_{stage}", f"--impl={folder}", "-q",
                           "-m", "not training", "-p", "no:cacheprovider", *options],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    return done.stdout


@pytest.mark.parametrize("isolate", ["no", "process"])
def test_a_renamed_scaffold_attribute_is_named(tmp_path, isolate):
    mine = solutions_with(tmp_path / "mine", "stage_09_multi_head.py", "self.W_O", "self.out")
    out = run_checks_on(mine, "09", f"--isolate={isolate}")
    assert "your class or module must keep W_O under that name" in out
    assert "NoneType" not in out


def test_a_mask_that_hides_every_key_is_reported_as_nan_first(tmp_path):
    mine = solutions_with(tmp_path / "mine", "stage_04_attention.py", "~causal_mask(q.size(-2), q.device)",
                          "torch.ones(q.size(-2), q.size(-2), dtype=torch.bool)")
    out = run_checks_on(mine, "04")
    assert "finite numbers in logits" in out and "all -inf" in out


def test_dropout_left_on_in_eval_is_reported_as_randomness_not_as_peeking(tmp_path):
    ffn = "        x = self.ffn(x)  # (batch, seq, d_model): compute on what was gathered\n"
    mine = solutions_with(tmp_path / "mine", "stage_06_ffn.py", ffn,
                          ffn + "        x = nn.functional.dropout(x, 0.1, training=True)\n")
    out = run_checks_on(mine, "06", "-k", "peeking")
    assert "randomness left on in eval()" in out
    assert "sees the future" not in out


def test_an_input_edited_in_place_is_named(tmp_path):
    embed = "        x = self.token_embedding(idx)  # (batch, seq, d_model)\n"
    mine = solutions_with(tmp_path / "mine", "stage_03_bigram.py", embed, "        idx[:, -1] = 0\n" + embed)
    out = run_checks_on(mine, "03", "-k", "peeking", "--isolate=no")
    assert "token ids that changed during the forward pass" in out
