"""Messages that point at the cause: a renamed scaffold attribute, NaN before causality, a NaN softmax, stage 00's
conventions, torch's NotImplementedError; and a correct layout of the heads accepted."""
import subprocess
import sys

import pytest

from lil_transformy.authoring.mutants import apply, named, solutions_with
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


def test_heads_that_take_interleaved_features_pass_the_head_checks(tmp_path):
    """Head h takes features h, h + n_heads, ... and the merge undoes it exactly: the contiguous split with permuted
    weights, so correct. The checks test the property (a head holds features of its own position, the same at every
    position; one query feature moves one head's output only), not the layout."""
    mine = apply(named("variants", "interleaved_heads"), tmp_path / "mine")
    out = run_checks_on(mine, "09", "-k", "split_heads or independently")
    assert "2 passed" in out and "failed" not in out


def test_stage_00_names_an_unstable_sort_and_the_end_of_story_counted_outside_n_keep(tmp_path):
    keep = '    frequent_first = np.argsort(-counts, kind="stable")[:n_keep]\n'
    unstable = solutions_with(tmp_path / "unstable", "stage_00_data.py", 'kind="stable"', 'kind="quicksort"')
    out = run_checks_on(unstable, "00", "-k", "build_id_maps")
    assert "a tie in another order" in out and "kind='stable'" in out
    outside = solutions_with(tmp_path / "outside", "stage_00_data.py", keep + "    kept = frequent_first[frequent_first "
                             "!= end_of_story]\n", keep.replace("[:n_keep]", "") + "    kept = frequent_first["
                             "frequent_first != end_of_story][:n_keep]\n")
    out = run_checks_on(outside, "00", "-k", "build_id_maps")
    assert "one too many" in out and "it is one of the n_keep, not kept on top of them" in out


def test_a_softmax_that_overflows_on_large_future_scores_is_named_here_and_in_later_stages(tmp_path):
    mine = apply(named("mutants", "softmax_overflows_on_large_scores"), tmp_path / "mine")
    assert "exp(1000) = inf" in run_checks_on(mine, "04", "-k", "large_future_scores")
    later = run_checks_on(mine, "05", "-k", "builds_on")
    assert "your stage 04 fails its test_attention_weights_survive_large_future_scores" in later


def test_not_written_yet_is_said_of_the_stub_only():
    from lil_transformy.grading.checking import not_implemented

    stub = "stage 08, forward: not written yet. Hint: the blocks in order"
    assert not_implemented(stub) == "stage 08, forward: not written yet\n  hint: the blocks in order"
    assert not_implemented("") == "not written yet"  # nbgrader's bare stub
    torch_says = 'Module [ModuleList] is missing the required "forward" function'
    assert "not written yet" not in not_implemented(torch_says) and "calls an nn.ModuleList" in not_implemented(torch_says)
    assert not_implemented("mine") == "your code raised NotImplementedError: mine"


def test_calling_a_module_list_is_the_students_bug_not_a_stub(tmp_path):
    mine = solutions_with(tmp_path / "mine", "stage_08_stacked.py", "        for block in self.blocks:\n"
                          "            x = block(x)  # (batch, seq, d_model)\n", "        x = self.blocks(x)\n")
    out = run_checks_on(mine, "08", "-k", "logits_shape")
    assert "your code calls an nn.ModuleList as if it were a module" in out and "not written yet" not in out


def test_a_reversed_mask_is_named_by_the_scale_check_not_the_scaling(tmp_path):
    mine = solutions_with(tmp_path / "mine", "stage_04_attention.py", "torch.tril(torch.ones(seq, seq",
                          "torch.triu(torch.ones(seq, seq")
    out = run_checks_on(mine, "04", "-k", "scale_by_sqrt")
    assert "causal_mask is not True exactly on and below the diagonal" in out and "divide" not in out
