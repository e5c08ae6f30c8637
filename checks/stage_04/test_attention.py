"""Stage 04 checks: the causal mask, attention weights, one attention head."""
import math

import pytest
import torch

from lil_transformy.grading.checking import (
    expect,
    expect_every_weight_matters,
    expect_shape,
    random_vectors,
    student_code,
)

from ..attention_checks import attention_diagnosis, expect_nothing_ready_made
from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss


@pytest.mark.causality
def test_causal_mask(stage):
    with student_code():
        mask = stage.causal_mask(4)
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    expect(isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.shape == (4, 4)
           and torch.equal(mask, expected), f"a (4, 4) bool mask {expected.int().tolist()}",
           f"{mask.int().tolist() if isinstance(mask, torch.Tensor) else mask}",
           "row i (a query) may see columns j <= i (keys up to itself): True on and below the diagonal")


@pytest.mark.causality
def test_attention_weights_are_causal_and_normalised(stage):
    q, k = random_vectors(2, 3, 5, 8), random_vectors(2, 3, 5, 8)  # (batch, heads, seq, d_head)
    with student_code():
        weights = stage.attention_weights(q, k)
    expect_shape(weights, (2, 3, 5, 5), "weights", "(..., seq_query, seq_key): q @ k.transpose(-2, -1)")
    above = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    expect(weights[..., above].abs().max() == 0, "0 above the diagonal (no weight on future keys)",
           f"up to {weights[..., above].abs().max():.3f} above the diagonal", "mask the scores with -inf before the softmax")
    row_sums = weights.sum(dim=-1)
    expect(torch.allclose(row_sums, torch.ones_like(row_sums), atol=1e-5), "every row sums to 1",
           f"row sums from {row_sums.min():.3f} to {row_sums.max():.3f}",
           "softmax over the keys (the last axis), after masking")


SCALE_HINTS = {  # the weight on key 0 that each scaling gives: a wrong mask is named first (attention_diagnosis)
    round(math.exp(4) / (math.exp(4) + 1), 3): "the scores are not scaled: divide them by sqrt(d_head), the size of "
                                                "the last axis of q",
    round(math.exp(4 / 16) / (math.exp(4 / 16) + 1), 3): "divided by d_head itself: divide by its square root",
    None: "divide the scores by sqrt(d_head), the size of the last axis of q (not of the sequence)",
}


def test_attention_weights_scale_by_sqrt_d_head(stage):
    q, k = torch.zeros(1, 2, 16), torch.zeros(1, 2, 16)
    q[0, 1, 0], k[0, 0, 0] = 4.0, 1.0  # query 1 scores key 0 at 4 and key 1 at 0
    with student_code():
        weights = stage.attention_weights(q, k)
    expected = math.exp(4 / 4) / (math.exp(4 / 4) + 1)  # scaled by 1/sqrt(16)
    found = weights[0, 1, 0].item()
    ok = abs(found - expected) < 1e-4
    expect(ok, f"weight {expected:.3f} on key 0 (score 4 / sqrt(d_head = 16) = 1)", f"{found:.3f}",
           "" if ok else attention_diagnosis(stage, "04") or SCALE_HINTS.get(round(found, 3), SCALE_HINTS[None]))


LARGE_SCORES_HINT = ("a large score overflows exp (exp(1000) = inf, and inf * 0 = NaN when a mask multiplies it "
                     "away), and a row's max taken over the future keys too makes every allowed exp 0 (0 / 0 = NaN): "
                     "hide the future scores with -inf before the softmax (torch.softmax subtracts the row's max for "
                     "you), or subtract the max of the allowed scores only")


def test_attention_weights_survive_large_future_scores(stage):
    """A future key's score far above the allowed ones (1000 against 0 and 1) must not change the weights: it is
    masked. Written out by hand, softmax breaks on it: exp overflows, or the row's max is a masked score."""
    q, k = torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)
    q[..., 0], k[0, :, 0] = 2.0, torch.tensor([0.0, 1.0, 1000.0])  # scores / sqrt(4): every query's are [0, 1, 1000]
    refused = None
    try:
        with student_code():
            weights = stage.attention_weights(q, k)
    except pytest.fail.Exception as failure:  # graded: the child refuses to send NaN back, and says so
        refused = failure
    if refused is not None:
        expect("NaN" not in str(refused.msg), "finite weights when a future key scores 1000 and the allowed ones 0 "
               "and 1", "NaN or infinite weights", LARGE_SCORES_HINT)
        raise refused
    expect(isinstance(weights, torch.Tensor) and weights.shape == (1, 3, 3), "weights of shape (1, 3, 3)",
           f"{tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__}",
           "(..., seq_query, seq_key): q @ k.transpose(-2, -1)")
    where = torch.nonzero(~torch.isfinite(weights)).tolist()
    expect(not where, "finite weights when a future key scores 1000 and the allowed ones 0 and 1",
           f"NaN or inf at [batch, query, key] {where[:3]}: {weights[0].tolist()}", LARGE_SCORES_HINT)
    k[0, :, 0] = torch.tensor([0.0, 1.0, 2.0])  # ordinary scores: a mask that fails on them is the causality checks'
    with student_code():
        if stage.attention_weights(q, k)[0].triu(1).abs().max() > 1e-6:
            return  # no mask at all: causality's points, not this check's
    expected = "[1, 0, 0] for query 0 (it sees only key 0) and about [0, 0, 1] for query 2 (key 2 is its own)"
    ok = torch.allclose(weights[0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-5) and weights[0, 2, 2] > 0.999
    expect(ok and weights[0, 1, 2].abs() < 1e-6, "weights " + expected + ", none on a future key",
           f"{[[round(w, 3) for w in row] for row in weights[0].tolist()]}",
           "a mask that adds a large negative number must outweigh any score: -inf (masked_fill) always does")


def test_attention_head(stage):
    head = stage.AttentionHead(12, 6)
    x = random_vectors(2, 5, 12)
    same = x[:, :1].expand(2, 5, 12)  # every position holds the same vector
    with student_code():
        out = head(x)
        out_same = head(same)
        value = head(x[:, :1])  # (2, 1, 6): one position, so it can only attend to itself: its value vector
    expect_shape(out, (2, 5, 6), "head(x)", "(batch, seq, d_head): one mixed value vector per position")
    expect(torch.allclose(out_same, value.expand_as(out_same), atol=1e-5), "when every position holds the same "
           "vector, every output is that vector's value (a weighted mix of identical values)",
           f"a difference of {(out_same - value).abs().max():.3g}",
           "the output is attention_weights(q, k) @ v: rows of weights that sum to 1, times the values v = W_V(x)")


def test_every_weight_of_the_head_matters(stage):
    with student_code():
        expect_every_weight_matters(stage.AttentionHead(12, 6), random_vectors(2, 5, 12), "attention head",
                                    "is each projection used in forward()? scores from q = W_Q(x) and k = W_K(x), "
                                    "then the weights mix the values v = W_V(x), not x itself")


def test_attention_sees_a_bag_of_predecessors(Model, tiny):
    """No positions yet: shuffling the earlier tokens leaves the last position's logits unchanged."""
    with student_code():
        model = Model(tiny).eval()
        idx = torch.tensor([[5, 9, 2, 7, 3]])
        shuffled = torch.tensor([[2, 7, 9, 5, 3]])
        same = torch.allclose(model(idx)[0, -1], model(shuffled)[0, -1], atol=1e-5)
    expect(same, "the same last-position logits when the earlier tokens are shuffled", "different logits",
           "stage 04 has no position embeddings: attention sees *which* tokens came before, not where")


@pytest.mark.passes_on_stubs  # a stub uses no ready-made attention either; a shortcut fails it
def test_no_ready_made_attention(stage_source):
    expect_nothing_ready_made(stage_source)
