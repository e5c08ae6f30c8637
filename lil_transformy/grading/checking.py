"""What the checks share: messages that teach, causality probes, the loss ladder.

Checks (checks/stage_NN/) grade a student's code; they call these so every stage words its
failures the same way: what was expected, what was found, a hint.
"""
import os
import re
from contextlib import contextmanager

import pytest
import torch

from lil_transformy.errors import LilTransformyError
from lil_transformy.grading.limits import MachineOverloaded
from lil_transformy.grading.remote import NON_FINITE, ChildGone, StudentCodeError
from lil_transformy.paths import JUDGE_SEED_ENV
from lil_transformy.train import strided_windows


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
        message = not_implemented(str(error))
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


STUB = re.compile(r"^stage \w+, \w+: not written yet\.")  # the message of a stub in exercises/ (authoring/exercises.py)
NO_FORWARD = re.compile(r'^Module \[(\w+)\] is missing the required "forward" function')  # torch's words


def not_implemented(text: str) -> str:
    """"Not written yet" for the stub's own NotImplementedError (or nbgrader's bare one); any other is the student's
    code's, worded as such: torch raises it when a module without forward is called (an nn.ModuleList, say)."""
    if STUB.match(text) or not text:
        return (text or "not written yet").replace(". Hint: ", "\n  hint: ", 1)  # the summary line: the first line
    no_forward = NO_FORWARD.match(text)
    if no_forward and no_forward.group(1) in ("ModuleList", "ModuleDict"):
        return (f"your code calls an nn.{no_forward.group(1)} as if it were a module: it holds modules and has no "
                f"forward of its own (torch: {text})\n  hint: loop over it and call each module it holds in turn")
    if no_forward:
        return (f"your code calls a {no_forward.group(1)} that has no forward method (torch: {text})\n  hint: is "
                f"forward spelled so, and indented inside its class?")
    return f"your code raised NotImplementedError: {text}"


# The checks' random inputs come from their own generator, reseeded before every check (checks/conftest.py), while
# the student's code draws its initial weights from torch's global one, seeded alike where it runs: a check sees
# the same inputs and the same weights in the student's own pytest and in grading, so it prints the same numbers.
INPUTS = torch.Generator()


def random_tokens(vocab_size: int, shape: tuple) -> torch.Tensor:
    return torch.randint(vocab_size, shape, generator=INPUTS)


def random_vectors(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=INPUTS)




RANDOMNESS_HINT = ("randomness left on in eval(): dropout must switch off (nn.Dropout does; F.dropout needs "
                   "training=self.training), and forward must not draw random numbers")


def expect_finite(tensor: torch.Tensor, what: str) -> None:
    """NaN or inf first: every comparison with NaN is false, so it would pass checks it should fail."""
    bad = ~torch.isfinite(tensor.detach())
    if bad.any():
        where = torch.nonzero(bad)[0].tolist()
        expect(False, f"finite numbers in {what}", f"{tensor.detach().flatten()[bad.flatten()][0].item()} "
               f"at index {where}", NON_FINITE)


def expect_shape(tensor, shape: tuple, what: str, hint: str) -> None:
    found = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else f"a {type(tensor).__name__}"
    expect(isinstance(tensor, torch.Tensor) and tuple(tensor.shape) == tuple(shape),
           f"{what} of shape {tuple(shape)}", f"{found}", hint)
    if tensor.is_floating_point():
        expect_finite(tensor, what)


def first_future_leak(forward, inputs: torch.Tensor, change, atol: float = 1e-5):
    """(t, s) such that changing input position s > t (`change(inputs, s)`) changed the output at t, or None.

    forward: (batch, seq, ...) -> (batch, seq, ...). Every future position is changed in turn; the judge compares
    the outputs (no gradient the student's process reports). Causes that would pass for "sees the future" fail
    first, as what they are: non-finite outputs (NaN hides any change), an input edited in place, and outputs
    that change from one call to the next.
    """
    original = inputs.clone()
    with torch.no_grad():
        base = forward(inputs)
        expect(isinstance(base, torch.Tensor) and base.dim() >= 2 and base.shape[:2] == inputs.shape[:2],
               f"a tensor of shape ({inputs.size(0)}, {inputs.size(1)}, ...)", f"{type(base).__name__} "
               f"{tuple(base.shape) if isinstance(base, torch.Tensor) else ''}", "one output per position")
        if base.is_floating_point():
            expect_finite(base, "the output (a causality check cannot compare NaN)")
        expect(torch.equal(inputs, original), "a forward pass that leaves its input as it was",
               f"{'token ids' if not inputs.is_floating_point() else 'inputs'} that changed during the forward "
               "pass", "an in-place edit of the input (idx[...] = ..., "
               "idx += ...) changes the caller's tensor: compute a new tensor instead")
        drift = (forward(inputs) - base).abs().max().item()
        expect(drift <= atol, "the same output twice for the same input, in eval mode",
               f"outputs that differ by up to {drift:.3g} between two calls", RANDOMNESS_HINT)
        for s in range(1, inputs.size(1)):
            moved = (forward(change(inputs, s))[:, :s] - base[:, :s]).abs().amax(dim=tuple(range(2, base.dim())))
            moved = moved.amax(dim=0)  # (s,): the largest change at each earlier position
            if not torch.isfinite(moved).all() or (moved > atol).any():
                return int(torch.nonzero(~(moved <= atol))[0]), s
    return None


def first_future_leak_by_perturbation(forward, idx: torch.Tensor, vocab_size: int):
    """first_future_leak for (batch, seq) token ids: token s becomes another id, a different one in each row."""
    def change(idx: torch.Tensor, s: int) -> torch.Tensor:
        changed = idx.clone()
        changed[:, s] = (changed[:, s] + 1 + torch.arange(idx.size(0)) % (vocab_size - 1)) % vocab_size
        return changed

    return first_future_leak(forward, idx, change)


def first_future_leak_of_vectors(forward, x: torch.Tensor):
    """first_future_leak for (batch, seq, d) vectors: vector s moves by a random step."""
    def change(x: torch.Tensor, s: int) -> torch.Tensor:
        changed = x.clone()
        changed[:, s] += random_vectors(x.size(0), x.size(-1))
        return changed

    return first_future_leak(forward, x, change)


def parameter_names(module) -> list[str]:
    """The names of the student's module's parameters (a plain call: its named_parameters())."""
    return [name for name, _ in module.named_parameters()]


def set_weights(module, values: dict) -> None:
    """Load values into the student's module by name (its own load_state_dict: whatever it does with them, the
    judge then looks only at its outputs). A value is a tensor, "normal" (N(0, 1)) or "zeros"; a bias the module
    does not have (a student's choice) is not set, a missing weight fails the check, naming it."""
    current = module.state_dict()
    missing = [name for name in values if name not in current and not name.endswith(".bias")]
    expect(not missing, f"a parameter named {', '.join(missing)} in your module", "none",
           f"if the scaffold defines {(missing or [''])[0].split('.')[0]}, your class or module must keep "
           f"{(missing or [''])[0].split('.')[0]} under that name: the checks use it (`contract` in "
           f"lil_transformy/stages.py)")
    fills = {"normal": lambda t: torch.randn(t.shape, generator=INPUTS), "zeros": torch.zeros_like}
    module.load_state_dict({name: fills[value](current[name]) if isinstance(value, str) else value
                            for name, value in values.items() if name in current}, strict=False)


def expect_every_weight_matters(module, x: torch.Tensor, what: str, hint: str) -> None:
    """Every weight matrix of the student's `module` changes its output when the judge changes it, and the output
    is back when the judge puts it back: judged from outputs alone, on weights the judge set."""
    with torch.no_grad():
        base = module(x)
        expect(isinstance(base, torch.Tensor) and base.is_floating_point(), f"a float tensor from your {what}",
               f"a {type(base).__name__}", hint)
        expect_finite(base, f"the output of your {what}")
        state = {name: value.clone() for name, value in module.state_dict().items()}  # in-process: not live
        matrices = [name for name in parameter_names(module) if name in state and state[name].dim() >= 2]
        idle = []
        for name in matrices:
            set_weights(module, {name: state[name] + 0.5 * torch.randn(state[name].shape, generator=INPUTS)})
            moved = module(x)
            set_weights(module, {name: state[name]})
            back = module(x)
            expect(isinstance(moved, torch.Tensor) and isinstance(back, torch.Tensor) and moved.shape == base.shape
                   and torch.allclose(back, base, atol=1e-6), f"your {what}'s output back as it was once {name} is",
                   "a different output", "forward must depend only on the input and the weights")
            expect_finite(moved, f"the output of your {what}")
            if (moved - base).abs().max() <= 1e-6:
                idle.append(f"{name} {tuple(state[name].shape)} never does")
    expect(bool(matrices) and not idle, f"every weight matrix of your {what} to shape its output (a change when it "
           f"changes)", ", ".join(idle) or "no weight matrix at all", hint)


TWIN_SHARE = 4  # one window in this many is asked again, in the second child, with a different continuation
TWIN_TOLERANCE = 1e-3  # of a logit projection: float rounding is 1e-5; a model that sees the future moves it by 0.1+


def expect_logits(logits, batch: torch.Tensor, vocab_size: int) -> None:
    """Data the judge will compute with: a float tensor of shape (batch, seq, vocab), every number finite."""
    expect(isinstance(logits, torch.Tensor) and logits.is_floating_point(), "a float tensor of logits",
           f"a {type(logits).__name__}" + (f" of {logits.dtype}" if isinstance(logits, torch.Tensor) else ""),
           "forward(idx) returns the logits: (batch, seq, vocab) floats")
    expect_shape(logits, (*batch.shape, vocab_size), "logits", "(batch, seq, vocab): one score per id per position")


def judge_generator() -> torch.Generator:
    """The judge's random choices, which the student's code cannot predict: seeded from the course's secret and the
    submission when grading gave a seed (a re-grade prints the same messages), else from the operating system."""
    seed = os.environ.get(JUDGE_SEED_ENV)
    return torch.Generator().manual_seed(int(seed) if seed else int.from_bytes(os.urandom(4), "little"))


@torch.no_grad()
def observed_loss(scored, twin, ids: torch.Tensor, cfg, vocab_size: int) -> tuple[float, str | None]:
    """The held-out loss of the trained model `scored` (a fresh child), from the logits it returns for the held-out
    windows (train.strided_windows), and where that very answer saw the future (None: nowhere).

    A random quarter of the windows goes again to `twin`, the same weights in another fresh child, with every token
    after a random cut replaced by the same positions of another held-out window: text like any other, which `twin`
    cannot compare with what `scored` was asked. A causal model gives the same logits at every position up to the
    cut; one that looks ahead does not. The logits are compared through a random projection the judge keeps.
    """
    windows, scored_positions = strided_windows(ids, cfg)  # (n, context + 1), (n, context)
    inputs, targets = windows[:, :-1], windows[:, 1:]
    judge = judge_generator()
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
    leak = None
    for first in range(0, len(twins), cfg.batch_size):
        batch = twins[first: first + cfg.batch_size]
        logits = twin(batch)
        expect_logits(logits, batch, vocab_size)
        for row, i in enumerate(range(first, first + len(batch))):
            moved = (logits[row] @ projection - seen[int(sampled[i])]).abs()  # (context,)
            moved[after_cut[i]] = 0  # past the cut the inputs differ, and so may the logits
            if leak is None and moved.max() > TWIN_TOLERANCE:
                leak = (f"the trained model's logits at position {int(moved.argmax())} changed when only tokens after "
                        f"position {int(cuts[i])} changed (held-out window {int(sampled[i])})")
    return total / int(scored_positions.sum()), leak
