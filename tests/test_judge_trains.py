"""The judge trains (grading/trainer.py): a student's module cannot train longer, harder or differently.

Stage 05 with its attention never called is an honest mistake that loses the loss point (about 3.867, above
stage 04's loss). Each cheat below is that model plus a trick that, where the student's code used to train it,
trained it longer or harder: graded as `course grade` grades (the judge, sandboxed; the loss group alone), every
cheat loses the point its honest twin loses, and the judge names the ones whose gradients are not those of their
own forward. An honest reparametrisation (a scaled embedding) keeps its point.
"""
import pytest

from lil_transformy.course import stage_modules
from lil_transformy.grading.judge import run_checks
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.grading.trainer import FORGED
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

pytestmark = [pytest.mark.training, pytest.mark.timeout(3600),
              pytest.mark.skipif(bwrap() is None, reason="grading needs bubblewrap (apt-get install bubblewrap)")]

STAGE_05 = get_stage("05")
ATTENTION = "        x = self.attention(x)  # (batch, seq, d_model)\n"
EMBED = "        x = self.embed(idx)  # (batch, seq, d_model)\n"
FORWARD = "    def forward(self, idx: torch.Tensor) -> torch.Tensor:\n"
# The library's recipe, where the module runs: three times the shared steps, and train() itself wrapped to match.
LONGER_RECIPE = """import functools
import lil_transformy.train as training

object.__setattr__(training.SHARED, "steps", 3 * training.SHARED.steps)
_train = training.train
training.train = functools.wraps(_train)(lambda model_class, data, cfg=training.SHARED, **kw: _train(
    model_class, data, training.SHARED, **kw))
"""
# The optimiser's class, where the module runs: every step taken three times, at twice the learning rate.
WRAPPED_OPTIMISER = """import torch

_step = torch.optim.AdamW.step


def _harder(self, *args, **kwargs):
    for group in self.param_groups:
        group["lr"] *= 2
    for _ in range(3):
        _step(self, *args, **kwargs)


torch.optim.AdamW.step = _harder
"""
# Two optimiser steps of its own inside forward, on the batch's own next tokens, whenever it is trained.
STEPS_IN_FORWARD = FORWARD + """        if self.training and torch.is_grad_enabled() and not getattr(self, "_inner", False):
            self._inner = True
            inner = torch.optim.SGD(self.parameters(), lr=0.5)
            for _ in range(2):
                logits = self(idx[:, :-1])
                loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), idx[:, 1:].flatten())
                inner.zero_grad()
                loss.backward()
                inner.step()
            self.zero_grad(set_to_none=True)
            self._inner = False
"""
# State kept between calls: every gradient gets 0.9 of the one before added (momentum the budget does not have).
KEEPS_STATE = FORWARD + """        if self.training and torch.is_grad_enabled():
            for p in self.parameters():
                if p.requires_grad and not hasattr(p, "_kept"):
                    p._kept = torch.zeros_like(p)

                    def _momentum(grad, p=p):
                        p._kept = grad + 0.9 * p._kept
                        return p._kept.clone()

                    p.register_hook(_momentum)
"""
SCALED_EMBEDDING = (EMBED, "        x = 3.0 * self.embed(idx)  # (batch, seq, d_model): scaled, honestly\n")


def source(*replacements: tuple[str, str], before: str = "") -> str:
    text = (REPO_ROOT / "solutions" / f"{STAGE_05.module}.py").read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return before + text


NO_ATTENTION = (ATTENTION, "")
STUDENTS = {
    "no_attention": source(NO_ATTENTION),  # the honest twin of every cheat
    "longer_recipe": source(NO_ATTENTION, before=LONGER_RECIPE),
    "wrapped_optimiser": source(NO_ATTENTION, before=WRAPPED_OPTIMISER),
    "steps_in_forward": source(NO_ATTENTION, (FORWARD, STEPS_IN_FORWARD)),
    "keeps_state": source(NO_ATTENTION, (FORWARD, KEEPS_STATE)),
    "scaled_embedding": source(SCALED_EMBEDDING),
}


@pytest.fixture(scope="module")
def loss_checks(tmp_path_factory) -> dict[str, str | None]:
    """Each student's loss check, as the judge grades it (sandboxed): None if it passed, else why it failed."""
    found = {}
    for student, text in STUDENTS.items():
        folder = tmp_path_factory.mktemp(student)
        for module in stage_modules(STAGE_05):
            (folder / module).write_text((REPO_ROOT / "solutions" / module).read_text())
        (folder / f"{STAGE_05.module}.py").write_text(text)
        outcomes, problem = run_checks("05", folder, isolate="sandbox", select="loss")
        assert problem is None, problem
        (_, found[student]), = outcomes["loss"]
    return found


@pytest.mark.parametrize("cheat", [s for s in STUDENTS if s not in ("no_attention", "scaled_embedding")])
def test_every_cheat_loses_the_loss_point_its_honest_twin_loses(loss_checks, cheat):
    assert loss_checks["no_attention"] is not None and "3.8" in loss_checks["no_attention"]
    assert loss_checks[cheat] is not None, f"{cheat} got the loss point its honest twin does not"


def test_gradients_not_of_the_models_own_forward_are_named(loss_checks):
    assert FORGED in loss_checks["keeps_state"]
    assert FORGED not in loss_checks["no_attention"]


def test_an_honest_reparametrisation_keeps_its_point(loss_checks):
    assert loss_checks["scaled_embedding"] is None, loss_checks["scaled_embedding"]
