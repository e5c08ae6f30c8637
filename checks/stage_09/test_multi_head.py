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


def test_split_heads(stage):
    attention = stage.MultiHeadAttention(8, 2)
    x = torch.arange(2 * 3 * 8, dtype=torch.float).view(2, 3, 8)
    with student_code():
        heads = attention.split_heads(x)
    expect_shape(heads, (2, 2, 3, 4), "split_heads(x)", "(batch, n_heads, seq, d_head), d_head = d_model / n_heads")
    expect(torch.equal(heads[:, 1], x[..., 4:]), "head 1 holds features 4..7 of every position",
           "another arrangement", "view as (batch, seq, n_heads, d_head), then transpose(1, 2): not a plain view")


def test_heads_attend_independently(stage):
    with student_code():
        attention = stage.MultiHeadAttention(8, 2)
        set_weights(attention, {"W_O.weight": torch.eye(8), "W_O.bias": torch.zeros(8)})  # heads as they are
        x = random_vectors(2, 5, 8)
        before = attention(x)
        W_Q = attention.W_Q.weight
        set_weights(attention, {"W_Q.weight": torch.cat([W_Q[:4], -3 * W_Q[4:]])})  # head 1's queries only
        after = attention(x)
    expect_shape(before, (2, 5, 8), "attention(x)", "(batch, seq, d_model): merge the heads back and project with W_O")
    head0_moved = (after[..., :4] - before[..., :4]).abs().max().item()
    head1_moved = (after[..., 4:] - before[..., 4:]).abs().max().item()
    expect(head0_moved < 1e-5 and head1_moved > 1e-4,
           "changing head 1's queries moves head 1's output only",
           f"head 0 moved by {head0_moved:.2g}, head 1 by {head1_moved:.2g}",
           "each head gets its own slice of q, k and v (split_heads) and its own attention weights")


def test_every_weight_of_multi_head_attention_matters(stage):
    with student_code():
        expect_every_weight_matters(stage.MultiHeadAttention(8, 2), random_vectors(2, 5, 8), "multi-head attention",
                                    "the merged heads go through the output projection W_O before they are returned")


@pytest.mark.passes_on_stubs  # a stub uses no ready-made attention either; a shortcut fails it
def test_no_ready_made_attention(stage_source):
    expect_nothing_ready_made(stage_source)
