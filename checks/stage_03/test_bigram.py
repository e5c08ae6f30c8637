"""Stage 03 checks: the bigram model sees its own token and nothing else."""
import torch

from lil_transformy.grading.checking import expect, student_code

from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss


def test_logits_depend_on_the_current_token_only(Model, tiny):
    with student_code():
        model = Model(tiny).eval()
        logits = model(torch.tensor([[7, 3, 9, 7, 1, 7]]))[0]
    expect(torch.allclose(logits[0], logits[3], atol=1e-6) and torch.allclose(logits[0], logits[5], atol=1e-6),
           "the same logits wherever token 7 stands (positions 0, 3 and 5)",
           f"logits that differ by up to {(logits[0] - logits[3]).abs().max().item():.2g}",
           "a bigram looks at its own token only: embed, then unembed, with no mixing or positions")
