"""What the checks share: messages that teach, causality probes, the loss ladder.

Checks (checks/stage_NN/) grade a student's code; they call these so every stage words its
failures the same way: what was expected, what was found, a hint.
"""
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from lil_transformy.errors import LilTransformyError
from lil_transformy.grading.limits import MachineOverloaded
from lil_transformy.grading.probes import embedding_gradient_map, input_gradient_map, weight_effects
from lil_transformy.grading.remote import ChildGone, StudentCodeError, run_probe
from lil_transformy.paths import cache_dir
from lil_transformy.train import SHARED, pick_device, strided_windows


def expect(ok: bool, expected: str, found: str, hint: str) -> None:
    """Fail with a message a stuck student can act on."""
    if not ok:
        pytest.fail(f"\n  expected: {expected}\n  found:    {found}\n  hint:     {hint}", pytrace=False)


@contextmanager
def student_code():
    """A stub's NotImplementedError, or an error in the student's (remote) code, fails the check in one line.

    The failure hides the student's exception (`from None`), so the message is printed once, not again under
    "During handling of the above exception, another exception occurred"."""
    try:
        yield
        return
    except NotImplementedError as error:
        message = str(error) if "not written yet" in str(error) else f"not written yet: {error}"
    except AttributeError as error:  # a renamed attribute of the scaffold, or a typo in the student's code
        missing = re.search(r"attribute '(\w+)'|has no attribute `(\w+)`", str(error))
        name = next((g for g in missing.groups() if g), None) if missing else None
        message = f"your code raised AttributeError: {error}" + (
            f"\n  hint: if the scaffold defines {name}, your class or module must keep {name} under that name: the "
            f"checks use it (the names each stage's checks rely on: `contract` in lil_transformy/stages.py)"
            if name else "")
    except ChildGone as error:  # it ended, crashed, or was stopped for using its CPU budget: says which
        message = str(error)
    except LilTransformyError as error:  # the library refused what the student's code did (e.g. a loss of NaN)
        message = str(error)
    except StudentCodeError as error:
        message = f"your code raised {error}"
    except MachineOverloaded as error:  # not the student's doing: grading says "not graded yet"
        message = str(error)
    raise pytest.fail.Exception(message, pytrace=False) from None


# The checks' random inputs come from their own generator, reseeded before every check (checks/conftest.py), while
# the student's code draws its initial weights from torch's global one, seeded alike where it runs: a check sees
# the same inputs and the same weights in the student's own pytest and in grading, so it prints the same numbers.
INPUTS = torch.Generator()


def random_tokens(vocab_size: int, shape: tuple) -> torch.Tensor:
    return torch.randint(vocab_size, shape, generator=INPUTS)


def random_vectors(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=INPUTS)


NON_FINITE_HINT = ("a row of scores that is all -inf (a mask that hides every key, the diagonal too) gives NaN "
                   "after the softmax; so does a division by zero or a log of 0")


RANDOMNESS_HINT = ("randomness left on in eval(): dropout must switch off (nn.Dropout does; F.dropout needs "
                   "training=self.training), and forward must not draw random numbers")


def expect_finite(tensor: torch.Tensor, what: str) -> None:
    """NaN or inf first: every comparison with NaN is false, so it would pass checks it should fail."""
    bad = ~torch.isfinite(tensor.detach())
    if bad.any():
        where = torch.nonzero(bad)[0].tolist()
        expect(False, f"finite numbers in {what}", f"{tensor.detach().flatten()[bad.flatten()][0].item()} "
               f"at index {where}", NON_FINITE_HINT)


def expect_shape(tensor, shape: tuple, what: str, hint: str) -> None:
    found = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else f"a {type(tensor).__name__}"
    expect(isinstance(tensor, torch.Tensor) and tuple(tensor.shape) == tuple(shape),
           f"{what} of shape {tuple(shape)}", f"{found}", hint)
    if tensor.is_floating_point():
        expect_finite(tensor, what)


def first_future_leak_by_perturbation(forward, idx: torch.Tensor, vocab_size: int, atol: float = 1e-5):
    """(t, s) such that changing token s > t changed the output at t, or None.

    forward: (batch, seq) token ids -> (batch, seq, ...). Every future position is changed in turn.
    Causes that would pass for "sees the future" fail first, as what they are: non-finite outputs (NaN
    hides any change), an input edited in place, and outputs that change from one call to the next.
    """
    original = idx.clone()
    with torch.no_grad():
        base = forward(idx)
        if isinstance(base, torch.Tensor) and base.is_floating_point():
            expect_finite(base, "the output (a causality check cannot compare NaN)")
        expect(torch.equal(idx, original), "a forward pass that leaves its input as it was",
               "token ids that changed during the forward pass", "an in-place edit of the input (idx[...] = ..., "
               "idx += ...) changes the caller's tensor: compute a new tensor instead")
        drift = (forward(idx) - base).abs().max().item()
        expect(drift <= atol, "the same output twice for the same input, in eval mode",
               f"outputs that differ by up to {drift:.3g} between two calls", RANDOMNESS_HINT)
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
    return first_leak(run_probe(input_gradient_map, forward, x))


def embedding_gradient_leak(model, idx: torch.Tensor):
    """(t, s) such that the logits at t have a gradient from an embedding at position s > t, or None."""
    return first_leak(run_probe(embedding_gradient_map, model, idx))


def expect_every_weight_matters(module, x: torch.Tensor, what: str, hint: str) -> None:
    """Every weight matrix of the student's `module` must change its output and get a gradient."""
    effects = run_probe(weight_effects, module, x)
    idle = [e for e in effects if not (e["moved"] > 1e-6 and e["gradient"] > 0)]
    expect(effects and not idle, f"every weight matrix of your {what} to shape its output (a gradient, and a "
           f"change when it changes)", ", ".join(f"{e['name']} {tuple(e['shape'])} never does" for e in idle)
           or "no weight matrix at all", hint)


def first_leak(gradients: torch.Tensor):
    """(t, s) with s > t and a nonzero (or non-finite) gradient [t, s], the smallest t first; or None."""
    future = torch.triu(torch.ones_like(gradients, dtype=torch.bool), diagonal=1)
    leaks = torch.nonzero(future & ((gradients != 0) | ~torch.isfinite(gradients)))
    return tuple(leaks[0].tolist()) if len(leaks) else None


def loss_cache_file(number: str) -> Path:
    return cache_dir() / "loss-checks" / f"stage_{number}.json"


def loss_cache_key(number: str, folder: Path) -> str:
    """Keyed like a graded verdict (the stage modules, the checks, the library, the reference losses), and the
    device the student trains on."""
    from lil_transformy.grading.judge import submission_key

    return f"{submission_key(number, folder, 'no')} {pick_device(SHARED.device).type}"


def cached_loss(number: str, folder: Path) -> float | None:
    """The loss of the last passing loss check of stage `number`, if nothing it depends on changed since."""
    try:
        saved = json.loads(loss_cache_file(number).read_text())
        return float(saved["loss"]) if saved["key"] == loss_cache_key(number, folder) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember_loss(number: str, folder: Path, loss: float) -> None:
    path = loss_cache_file(number)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps({"key": loss_cache_key(number, folder), "loss": loss}))
    os.replace(partial, path)


TWIN_SHARE = 4  # one window in this many is asked again, in the second child, with a different continuation
TWIN_TOLERANCE = 1e-3  # of a logit projection: float rounding is 1e-5; a model that sees the future moves it by 0.1+


def expect_logits(logits, batch: torch.Tensor, vocab_size: int) -> None:
    """Data the judge will compute with: a float tensor of shape (batch, seq, vocab), every number finite."""
    expect(isinstance(logits, torch.Tensor) and logits.is_floating_point(), "a float tensor of logits",
           f"a {type(logits).__name__}" + (f" of {logits.dtype}" if isinstance(logits, torch.Tensor) else ""),
           "forward(idx) returns the logits: (batch, seq, vocab) floats")
    expect_shape(logits, (*batch.shape, vocab_size), "logits", "(batch, seq, vocab): one score per id per position")


@torch.no_grad()
def observed_loss(scored, twin, ids: torch.Tensor, cfg, vocab_size: int) -> float:
    """The held-out loss of the trained model `scored` (a fresh child), from the logits it returns for the held-out
    windows (train.strided_windows), and proof on that very answer that no position saw the future.

    A random quarter of the windows goes again to `twin`, the same weights in another fresh child, with every token
    after a random cut replaced by the same positions of another held-out window: text like any other, which `twin`
    cannot compare with what `scored` was asked. A causal model gives the same logits at every position up to the
    cut; one that looks ahead does not. The logits are compared through a random projection the judge keeps.
    """
    windows, scored_positions = strided_windows(ids, cfg)  # (n, context + 1), (n, context)
    inputs, targets = windows[:, :-1], windows[:, 1:]
    judge = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))  # nothing the child can predict
    sampled = torch.randperm(len(inputs), generator=judge)[: len(inputs) // TWIN_SHARE].sort().values
    cuts = torch.randint(0, cfg.context - 1, (len(sampled),), generator=judge)  # (n_sampled,)
    donors = torch.randint(0, len(inputs), (len(sampled),), generator=judge)
    after_cut = torch.arange(cfg.context) > cuts[:, None]  # (n_sampled, context)
    projection = torch.randn(vocab_size, generator=judge)
    projection /= projection.norm()
    total, seen = 0.0, {}
    for first in range(0, len(inputs), cfg.batch_size):
        batch = inputs[first: first + cfg.batch_size]
        logits = scored(batch)
        expect_logits(logits, batch, vocab_size)
        losses = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab_size), targets[first: first + len(batch)]
                                                   .reshape(-1), reduction="none").view(batch.shape)
        total += losses[scored_positions[first: first + len(batch)]].sum().item()
        for i in range(first, first + len(batch)):
            seen[i] = logits[i - first] @ projection  # (context,)
    twins = torch.where(after_cut, inputs[donors], inputs[sampled])  # (n_sampled, context)
    for first in range(0, len(twins), cfg.batch_size):
        batch = twins[first: first + cfg.batch_size]
        logits = twin(batch)
        expect_logits(logits, batch, vocab_size)
        for row, i in enumerate(range(first, first + len(batch))):
            moved = (logits[row] @ projection - seen[int(sampled[i])]).abs()  # (context,)
            moved[after_cut[i]] = 0  # past the cut the inputs differ, and so may the logits
            if moved.max() > TWIN_TOLERANCE:
                t = int(moved.argmax())
                expect(False, "the same logits at every position whose tokens so far are the same",
                       f"the trained model's logits at position {t} changed when only tokens after position "
                       f"{int(cuts[i])} changed (held-out window {int(sampled[i])})",
                       "your model sees the future when it is trained or scored: a held-out loss from it means "
                       "nothing. Every position may use only the tokens up to itself, always")
    return total / int(scored_positions.sum())
