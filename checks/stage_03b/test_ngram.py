"""Stage 03b checks (detour): window() puts the last n token vectors side by side; the n-gram LM."""
import torch

from lil_transformy.grading.checking import expect, expect_shape, random_tokens, student_code

from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss


def test_window_values(stage):
    x = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])  # (batch 1, seq 4, d 1)
    with student_code():
        out = stage.window(x, 3)
    expect_shape(out, (1, 4, 3), "window(x, 3)", "(batch, seq, n * d): n vectors side by side at every position")
    expected = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]])
    expect(torch.equal(out, expected), f"{expected[0].tolist()} (oldest first, zeros before the start)",
           f"{out[0].tolist()}", "position t holds x[t - 2], x[t - 1], x[t] for n = 3, in that order")


def test_the_window_is_fixed(Model, tiny):
    """The logits at the last position change with the last n tokens, and not with anything older."""
    with student_code():
        model = Model(tiny).eval()
        n = model.n
        idx = random_tokens(tiny.vocab_size, (1, tiny.context))
        base = model(idx)[0, -1]
        moved = []
        for s in range(tiny.context):
            changed = idx.clone()
            changed[0, s] = (changed[0, s] + 1) % tiny.vocab_size
            moved.append(not torch.allclose(model(changed)[0, -1], base, atol=1e-6))
    seen = [s for s, m in enumerate(moved) if m]
    expected = list(range(tiny.context - n, tiny.context))
    expect(seen == expected, f"the last position depends on tokens {expected} (the last n = {n})",
           f"it depends on tokens {seen}", "concatenate the n newest token vectors: window(x, self.n)")
