"""Stage 09 checks: multi-head attention splits d_model into heads that attend independently."""
import pytest
import torch

from lil_transformy.grading.checking import (
    expect,
    expect_every_weight_matters,
    expect_shape,
    random_vectors,
    set_weights,
    student_code,
)

from ..attention_checks import expect_nothing_ready_made
from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss
from ..model_checks import test_the_attention_it_builds_on_is_causal, test_the_stages_it_builds_on_pass_their_checks  # noqa: F401
from ..stage_08.test_stacked import (  # noqa: F401  the model is stage 08's, with other heads
    test_every_block_runs_once_in_order,
    test_two_blocks_with_their_own_weights,
)


def head_layout(heads: torch.Tensor, x: torch.Tensor) -> str | None:
    """What is wrong with split_heads(x) as a split into heads, or None. x[b, s, f] = its own index, so every number
    of `heads` says which batch, position and feature it came from. Any layout of features into heads is correct
    (contiguous slices, interleaved, any fixed assignment): each head holds features of the position it is at, the
    same features at every position, and every feature belongs to exactly one head."""
    batch, seq, d_model = x.size()
    came_from = heads.round().long()  # (batch, n_heads, seq, d_head): indices into x
    source_batch, source_position = came_from // (seq * d_model), came_from // d_model % seq
    mixed = (source_position != torch.arange(seq).view(1, 1, seq, 1)) | (
        source_batch != torch.arange(batch).view(batch, 1, 1, 1))
    if mixed.any():
        b, h, s, _ = torch.nonzero(mixed)[0].tolist()
        return (f"head {h} at position {s} of sequence {b} holds features of position(s) "
                f"{sorted(set(source_position[b, h, s].tolist()))} of sequence(s) "
                f"{sorted(set(source_batch[b, h, s].tolist()))}: positions are mixed")
    features = came_from % d_model  # (batch, n_heads, seq, d_head)
    if not torch.equal(features, features[:1, :, :1].expand_as(features)):
        return "a head holds different features at different positions"
    owned = sorted(features[0, :, 0].flatten().tolist())
    if owned != list(range(d_model)):
        return f"the heads together hold features {owned}, not each of 0..{d_model - 1} once"
    return None


def test_split_heads(stage):
    attention = stage.MultiHeadAttention(8, 2)
    x = torch.arange(2 * 3 * 8, dtype=torch.float).view(2, 3, 8)  # (batch, seq, d_model): every number its own index
    with student_code():
        heads = attention.split_heads(x)
    expect_shape(heads, (2, 2, 3, 4), "split_heads(x)", "(batch, n_heads, seq, d_head), d_head = d_model / n_heads")
    problem = head_layout(heads, x)
    expect(problem is None, "each head holds d_head features of the position it is at, the same features at every "
           "position, each feature in one head (which features go to which head is yours to choose)", str(problem),
           "a plain view or reshape straight to (batch, n_heads, seq, d_head) cuts the memory in the wrong order: "
           "split the last axis (d_model) into (n_heads, d_head) first, then move the heads axis before seq")


def test_heads_attend_independently(stage):
    """Changing one query feature changes the scores of the one head it belongs to: only the d_head features that
    head writes may move (W_O = identity shows them), wherever the head keeps them."""
    with student_code():
        attention = stage.MultiHeadAttention(8, 2)
        W_Q = random_vectors(8, 8) / 8 ** 0.5  # the judge's own queries, so it knows them
        set_weights(attention, {"W_O.weight": torch.eye(8), "W_O.bias": torch.zeros(8), "W_Q.weight": W_Q})
        x = random_vectors(2, 5, 8)
        before = attention(x)
        moved = []  # per query feature: which output features moved
        for feature in range(8):
            scaled = W_Q.clone()
            scaled[feature] *= -3  # this query feature only: one head's scores change
            set_weights(attention, {"W_Q.weight": scaled})
            after = attention(x)
            moved.append(((after - before).abs().amax(dim=(0, 1)) > 1e-4).nonzero().flatten().tolist())
    expect_shape(before, (2, 5, 8), "attention(x)", "(batch, seq, d_model): merge the heads back and project with W_O")
    wrong = next((f for f in range(8) if not 0 < len(moved[f]) <= 4), None)
    expect(wrong is None, "changing one query feature moves the output of one head only: at most d_head = 4 of the "
           "8 features (with W_O the identity), and at least one",
           f"changing query feature {wrong} moved output features {moved[wrong] if wrong is not None else []}",
           "each head gets its own d_head features of q, k and v (split_heads) and its own attention weights; "
           "merge the heads back so that each head's output lands in features of its own")


def test_every_weight_of_multi_head_attention_matters(stage):
    with student_code():
        expect_every_weight_matters(stage.MultiHeadAttention(8, 2), random_vectors(2, 5, 8), "multi-head attention",
                                    "the merged heads go through the output projection W_O before they are returned")


@pytest.mark.passes_on_stubs  # a stub uses no ready-made attention either; a shortcut fails it
def test_no_ready_made_attention(stage_source):
    expect_nothing_ready_made(stage_source)
