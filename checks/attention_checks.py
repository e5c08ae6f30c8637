"""Checks shared by the stages whose lesson includes attention."""
import torch

from lil_transformy.grading.checking import NON_FINITE, expect, random_vectors

FORBIDDEN = ("MultiheadAttention", "scaled_dot_product_attention", "TransformerEncoderLayer", "nn.Transformer")


def expect_nothing_ready_made(stage_source: tuple[str, str]) -> None:
    """stage_source: (file name, text) of the student's module (the `stage_source` fixture)."""
    name, source = stage_source
    used = [word for word in FORBIDDEN if word in source]
    expect(not used, "attention and blocks written out by hand", f"{', '.join(used)} in {name}",
           "this stage teaches how they work: build them from matmul, masking, softmax and your earlier stages")


def attention_diagnosis(stage04, number: str) -> str | None:
    """Why a model built on the student's attention (their stage 04 module) sees the future, if the cause is there.

    Each known mistake leaves its own trace on the weights of random queries and keys: a wrong mask, a softmax
    over the queries (the columns sum to 1, not the rows: a later query's score changes an earlier one's
    weights), weight above the diagonal, rows that do not sum to 1 (a mask applied after the softmax).
    None: the attention weights are fine, so the cause is elsewhere.
    """
    first = "" if number == "04" else (" This stage uses your stage 04 attention: fix stage 04 first "
                                       "(pytest checks/stage_04); this check fails because of it.")
    lower = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    q, k = random_vectors(2, 5, 4), random_vectors(2, 5, 4)  # (batch, seq, d_head)
    try:
        mask, weights = stage04.causal_mask(5), stage04.attention_weights(q, k)
    except Exception:  # a stub or a crash: the stage's own checks say so
        return None
    if not (isinstance(mask, torch.Tensor) and mask.shape == (5, 5) and torch.equal(mask.bool(), lower)):
        return "causal_mask is not True exactly on and below the diagonal (see test_causal_mask)." + first
    if not (isinstance(weights, torch.Tensor) and weights.shape == (2, 5, 5) and weights.is_floating_point()):
        return None
    if not torch.isfinite(weights).all():
        return NON_FINITE + "." + first
    rows_sum_to_1 = torch.allclose(weights.sum(-1), torch.ones(2, 5), atol=1e-5)
    columns_sum_to_1 = torch.allclose(weights.sum(-2), torch.ones(2, 5), atol=1e-5)
    if not rows_sum_to_1 and columns_sum_to_1:
        return ("attention_weights normalises each key's column, not each query's row: softmax over the queries "
                "(dim=-2). Then a later query's score changes an earlier query's weights, and the future leaks in: "
                "softmax over the keys, the last axis (dim=-1)." + first)
    if weights[:, ~lower].abs().max() > 1e-6:
        return ("attention_weights puts weight on future keys (above the diagonal): set those scores to -inf with "
                "causal_mask before the softmax." + first)
    if not rows_sum_to_1:
        return ("the rows of attention_weights do not sum to 1: is the mask applied after the softmax? The softmax "
                "then normalises over the future keys too; mask the scores first, then softmax over the keys." + first)
    return None
