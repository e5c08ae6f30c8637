"""What the checks share: messages that teach, causality probes, the loss ladder.

Checks (checks/stage_NN/) grade a student's code; they call these so every stage words its
failures the same way: what was expected, what was found, a hint.
"""
import json
import statistics
from contextlib import contextmanager

import pytest
import torch

from .paths import REPO_ROOT

EVOLUTION_REPORT = REPO_ROOT / "reports" / "evolution.json"
# The same words in another order, ending on the same token: only word order tells them apart.
WORD_ORDER_PAIR = ("The girl saw the dog.", "The dog saw the girl.")
# Starts the message of a check that could not run for a reason outside the student's code (data,
# tokenizer, reference report): `progress` reports it instead of counting it against the student.
NOT_YOUR_CODE = "set-up problem, not your code: "


def expect(ok: bool, expected: str, found: str, hint: str) -> None:
    """Fail with a message a stuck student can act on."""
    if not ok:
        pytest.fail(f"\n  expected: {expected}\n  found:    {found}\n  hint:     {hint}", pytrace=False)


@contextmanager
def student_code():
    """A stub's NotImplementedError fails the check in one line, without a traceback."""
    try:
        yield
    except NotImplementedError as error:
        pytest.fail(f"not written yet: {error}", pytrace=False)


def expect_shape(tensor, shape: tuple, what: str, hint: str) -> None:
    found = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else f"a {type(tensor).__name__}"
    expect(isinstance(tensor, torch.Tensor) and tuple(tensor.shape) == tuple(shape),
           f"{what} of shape {tuple(shape)}", f"{found}", hint)


def first_future_leak_by_perturbation(forward, idx: torch.Tensor, vocab_size: int, atol: float = 1e-5):
    """(t, s) such that changing token s > t changed the output at t, or None.

    forward: (batch, seq) token ids -> (batch, seq, ...). Every future position is changed in turn.
    """
    with torch.no_grad():
        base = forward(idx)
        for s in range(1, idx.size(1)):
            changed = idx.clone()
            changed[:, s] = (changed[:, s] + 1 + torch.arange(idx.size(0)) % (vocab_size - 1)) % vocab_size
            moved = (forward(changed)[:, :s] - base[:, :s]).abs().amax(dim=tuple(range(2, base.dim())))
            moved = moved.amax(dim=0)  # (s,): the largest change at each earlier position
            if (moved > atol).any():
                return int(torch.nonzero(moved > atol)[0]), s
    return None


def first_future_leak_by_gradient(forward, x: torch.Tensor):
    """(t, s) such that the output at t has a gradient from the input at s > t, or None.

    forward: (batch, seq, d) floats -> (batch, seq, ...).
    """
    x = x.detach().clone().requires_grad_(True)
    out = forward(x)
    for t in range(x.size(1) - 1):
        (grad,) = torch.autograd.grad(out[:, t].sum(), x, retain_graph=True, allow_unused=True)
        if grad is None:
            continue
        leaks = grad[:, t + 1:].abs().amax(dim=(0, 2)) > 0  # (seq - t - 1,)
        if leaks.any():
            return t, t + 1 + int(torch.nonzero(leaks)[0])
    return None


def embedding_gradient_leak(model: torch.nn.Module, idx: torch.Tensor):
    """(t, s) such that the logits at t have a gradient from an embedding at position s > t, or None.

    Follows every nn.Embedding output (token and position vectors) back from the logits.
    """
    captured = []

    def keep(module, inputs, output):
        output.retain_grad()
        captured.append(output)

    hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    try:
        logits = model(idx)
    finally:
        for hook in hooks:
            hook.remove()
    seq = idx.size(1)
    for t in range(seq - 1):
        for out in captured:
            out.grad = None
        logits[:, t].sum().backward(retain_graph=True)
        for out in captured:
            if out.grad is None or out.dim() < 2 or out.size(-2) != seq:
                continue
            leaks = out.grad.reshape(-1, seq, out.size(-1))[:, t + 1:].abs().amax(dim=(0, 2)) > 0
            if leaks.any():
                return t, t + 1 + int(torch.nonzero(leaks)[0])
    return None


def reference_report() -> dict:
    """reports/evolution.json, made by `lil-transformy evolve --seeds 0,1,2 --out reports`."""
    return json.loads(EVOLUTION_REPORT.read_text())


def reference_loss(report: dict, number: str) -> tuple[float, float]:
    """(mean, seed-to-seed spread) of a stage's held-out loss in the reference report."""
    losses = report["stages"][number]["val_loss"]
    return statistics.fmean(losses), max(losses) - min(losses)


def word_order_pair(vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """WORD_ORDER_PAIR as two (1, seq) id tensors."""
    a, b = (torch.as_tensor(vocab.encode(text)).unsqueeze(0) for text in WORD_ORDER_PAIR)
    return a, b
