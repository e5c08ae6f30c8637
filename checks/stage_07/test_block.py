"""Stage 07 checks: residual connections and pre-norm LayerNorm around attention and the FFN.

The judge sets the block's weights and calls its own sublayers on inputs it chose, then compares
the block's output with what it computes from those answers: no stand-in runs next to the
student's code.
"""
import pytest
import torch

from lil_transformy.grading.checking import (
    expect,
    expect_shape,
    parameter_names,
    random_vectors,
    set_weights,
    student_code,
)

from ..attention_checks import expect_nothing_ready_made
from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss
from ..model_checks import test_the_attention_it_builds_on_is_causal, test_the_stages_it_builds_on_pass_their_checks  # noqa: F401

PRE_NORM = "pre-norm: x = x + self.attention(self.ln_1(x)), then x = x + self.ffn(self.ln_2(x))"
# How a block's output is put together from its sublayers: the pre-norm block, and the usual other ways. Each takes
# the student's own sublayers (attention, ffn, ln_1, ln_2) and the input.
FORMS = {
    "pre-norm": lambda a, f, n1, n2, x: (h := x + a(n1(x))) + f(n2(h)),
    "LayerNorm on the sublayers' outputs, x + ln(sublayer(x))": lambda a, f, n1, n2, x: (h := x + n1(a(x))) + n2(f(h)),
    "post-norm, ln(x + sublayer(x)) as in the 2017 transformer": lambda a, f, n1, n2, x: n2((h := n1(x + a(x))) + f(h)),
    "no residual connections, x = sublayer(ln(x))": lambda a, f, n1, n2, x: f(n2(a(n1(x)))),
    "no LayerNorm, x = x + sublayer(x)": lambda a, f, n1, n2, x: (h := x + a(x)) + f(h),
}
SAME = 1e-4  # the same float32 operations in another order differ by ~1e-6


def make_block(stage, d_model=8):
    return stage.Block(d_model, stage.AttentionHead(d_model, d_model))


@pytest.mark.shapes
def test_block_shape(stage):
    x = random_vectors(2, 5, 8)
    with student_code():
        out = make_block(stage)(x)
    expect_shape(out, (2, 5, 8), "block(x)", "the block keeps the residual stream's shape (batch, seq, d_model)")


def test_residual_path(stage):
    """With every weight of attention and the FFN set to zero by the judge, both output zeros (whatever their
    formulation): what is left of the block is its residual path, the identity."""
    x = random_vectors(2, 5, 8)
    with student_code():
        block = make_block(stage)
        set_weights(block, {name: "zeros" for name in parameter_names(block) if name.startswith(("attention.", "ffn."))})
        out = block(x)
    expect_shape(out, (2, 5, 8), "block(x)", "the block keeps the residual stream's shape (batch, seq, d_model)")
    expect(torch.allclose(out, x, atol=1e-6), "block(x) == x when every weight of attention and the FFN is 0",
           f"a difference of {(out - x).abs().max().item():.3g}",
           "add each sublayer's output to its input: x = x + self.attention(self.ln_1(x))")


def test_sublayers_see_normalised_input(stage):
    """The block's output equals the pre-norm composition the judge computes from the block's own sublayers, each
    called here on the input the judge gives it (any LayerNorm that normalises each position passes)."""
    x = 5 + 3 * random_vectors(2, 5, 8)  # far from normalised
    with student_code():
        block = make_block(stage).eval()
        normalised = block.ln_1(x)
        sublayers = (block.attention, block.ffn, block.ln_1, block.ln_2)
        out = block(x)
        expect_shape(out, (2, 5, 8), "block(x)", "the block keeps the residual stream's shape (batch, seq, d_model)")
        # mean 0 and spread 1 per position, as any textbook LayerNorm gives (biased or unbiased std, eps inside or out)
        expect(normalised.mean(-1).abs().max() < 1e-3 and (normalised.std(-1) - 1).abs().max() < 0.1,
               "ln_1(x) with mean 0 and std 1 at each position", "vectors that are not normalised",
               "ln_1 and ln_2 are LayerNorms over d_model, the last axis")
        gaps = {}
        for form, compose in FORMS.items():
            gaps[form] = (out - compose(*sublayers, x)).abs().max().item()
            if gaps[form] <= SAME:
                break
    matches = next((form for form, gap in gaps.items() if gap <= SAME), None)
    expect(matches == "pre-norm", "block(x) == h + ffn(ln_2(h)) where h = x + attention(ln_1(x)), computed here "
           "from your block's own sublayers", f"your block computes {matches}" if matches else
           f"a difference of {gaps['pre-norm']:.3g}, and no other usual arrangement of the sublayers either",
           f"{PRE_NORM}: each sublayer sees the LayerNorm-ed stream and adds its output to the raw stream")


@pytest.mark.passes_on_stubs  # a stub uses no ready-made block either; a shortcut fails it
def test_no_ready_made_block(stage_source):
    expect_nothing_ready_made(stage_source)
