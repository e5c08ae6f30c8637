"""Stage 06 checks: the feed-forward layer works on each position alone, and is not linear."""
import torch

from lil_transformy.grading.checking import (
    expect,
    expect_every_weight_matters,
    expect_shape,
    random_vectors,
    student_code,
)

from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss
from ..model_checks import test_the_attention_it_builds_on_is_causal, test_the_stages_it_builds_on_pass_their_checks  # noqa: F401


def test_feed_forward_shape_and_positionwise(stage):
    ffn = stage.FeedForward(8)
    x = random_vectors(2, 5, 8)
    with student_code():
        out = ffn(x)
        changed = x.clone()
        changed[:, 2] += 1.0
        moved = (ffn(changed) - out).abs().amax(dim=(0, 2))  # (seq,)
    expect_shape(out, (2, 5, 8), "ffn(x)", "widen (WIDTH * d_model) and narrow back: the output has x's shape")
    others = [t for t in range(5) if t != 2 and moved[t] > 1e-6]
    expect(not others and moved[2] > 0, "changing position 2 changes the output at position 2 only",
           f"positions {others} changed too" if others else "position 2 did not change",
           "the FFN works on every position on its own: no mixing across the sequence")


def test_feed_forward_is_not_linear(stage):
    ffn = stage.FeedForward(8)
    a, b = random_vectors(1, 3, 8), random_vectors(1, 3, 8)
    with student_code():
        gap = (ffn(a + b) - ffn(a) - ffn(b) + ffn(torch.zeros_like(a))).abs().max().item()
    expect(gap > 1e-4, "a nonlinear function: ffn(a + b) - ffn(a) - ffn(b) + ffn(0) != 0", f"a gap of {gap:.2g}",
           "without the GELU between up and down, two linear layers are one linear layer")


def test_every_weight_of_the_ffn_matters(stage):
    with student_code():
        expect_every_weight_matters(stage.FeedForward(8), random_vectors(2, 3, 8), "feed-forward layer",
                                    "forward() should use both layers: down(activation(up(x)))")
