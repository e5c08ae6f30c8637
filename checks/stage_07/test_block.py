"""Stage 07 checks: residual connections and pre-norm LayerNorm around attention and the FFN."""
import pytest
import torch

from lil_transformy.grading.checking import expect, expect_shape, random_vectors, student_code
from lil_transformy.grading.probes import Recorder, Zero

from ..attention_checks import expect_nothing_ready_made
from ..model_checks import (  # noqa: F401
    test_logits_shape,
    test_loss_on_the_ladder,
    test_no_peeking_by_perturbation,
    test_no_peeking_on_a_real_story,
    test_the_attention_it_builds_on_is_causal,
    test_the_trained_model_never_sees_the_future,
)


def make_block(stage, d_model=8):
    return stage.Block(d_model, stage.AttentionHead(d_model, d_model))


@pytest.mark.shapes
def test_block_shape(stage):
    x = random_vectors(2, 5, 8)
    with student_code():
        out = make_block(stage)(x)
    expect_shape(out, (2, 5, 8), "block(x)", "the block keeps the residual stream's shape (batch, seq, d_model)")


def test_residual_path(stage):
    block = make_block(stage)
    block.attention, block.ffn = Zero(), Zero()
    x = random_vectors(2, 5, 8)
    with student_code():
        out = block(x)
    expect(torch.allclose(out, x, atol=1e-6), "block(x) == x when attention and FFN output zeros",
           f"a difference of {(out - x).abs().max().item():.3g}",
           "add each sublayer's output to its input: x = x + self.attention(self.ln_1(x))")


def test_sublayers_see_normalised_input(stage):
    block = make_block(stage)
    block.attention, block.ffn = Recorder(), Recorder()
    x = 5 + 3 * random_vectors(2, 5, 8)
    with student_code():
        block(x)
    for name, sublayer in (("attention", block.attention), ("ffn", block.ffn)):
        seen = getattr(sublayer, "seen", None)
        # mean 0 and spread 1 per position, as any textbook LayerNorm gives (biased or unbiased std, eps inside or out)
        normalised = seen is not None and seen.mean(-1).abs().max() < 1e-3 and (seen.std(-1) - 1).abs().max() < 0.1
        expect(bool(normalised), f"{name} to receive LayerNorm-ed vectors (mean 0, std 1 per position)",
               "raw, unnormalised vectors" if seen is not None else f"{name} was never called",
               f"pre-norm: {name}(ln(x)), with ln_1 before attention and ln_2 before the FFN")


@pytest.mark.passes_on_stubs  # a stub uses no ready-made block either; a shortcut fails it
def test_no_ready_made_block(stage_source):
    expect_nothing_ready_made(stage_source)
