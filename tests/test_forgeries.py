"""Forgeries by a student who reads the library's source and wants the points, graded with honest students.

Each forgery has an honest twin: the same model without the trick. Graded in one gradebook,
sandboxed, as a class is, no forgery may score more than its twin, honest students keep full marks,
and every forgery that did what no lesson needs is flagged for review (grades.csv, feedback) while
honest students are not. The judge computes every number it judges from what the student's code
returns (grading/checking.py), trains where the student's code runs on the training tokens alone,
and scores the trained weights in fresh children that prove causality on the very answer.
"""
import csv
import json

import pytest

from lil_transformy import course
from lil_transformy.course.folder import VERDICTS
from lil_transformy.grading.judge import LOSS
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.grading.trainer import FORGED
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

pytestmark = [pytest.mark.training, pytest.mark.timeout(1800),
              pytest.mark.skipif(bwrap() is None, reason="grading needs bubblewrap (apt-get install bubblewrap)")]

STAGE_04, STAGE_05 = get_stage("04"), get_stage("05")
VALUES = "        q, k, v = self.W_Q(x), self.W_K(x), self.W_V(x)  # (batch, seq, d_head) each\n"
# Stage 04: values that skip W_V (the weight check fails it), and the same model replacing the library's checks and
# the weights the judge sets, in its own process, as if the checks ran there.
IGNORES_W_V = (VALUES, "        q, k, v = self.W_Q(x), self.W_K(x), x[..., : self.W_Q.out_features]\n")
PATCHES_THE_LIBRARY = """import lil_transformy.grading.checking as checking

checking.expect_every_weight_matters = lambda *args, **kwargs: None
checking.set_weights = lambda module, values: None
"""
# Stage 05: attention without its mask, always (the twin), or only when it can tell it is trained or scored.
EMBED = "        x = self.embed(idx)  # (batch, seq, d_model)\n"
PEEKS = EMBED + """        q, k, v = self.attention.W_Q(x), self.attention.W_K(x), self.attention.W_V(x)
        x = torch.softmax(q @ k.transpose(-2, -1) / q.size(-1) ** 0.5, dim=-1) @ v  # every key: the future too
        return self.unembed(x)
"""
PEEKS_WHEN_JUDGED = EMBED + """        if torch.is_grad_enabled() and self.training or tuple(idx.shape) == (32, 32):  # trained, or scored
            q, k, v = self.attention.W_Q(x), self.attention.W_K(x), self.attention.W_V(x)
            return self.unembed(torch.softmax(q @ k.transpose(-2, -1) / q.size(-1) ** 0.5, dim=-1) @ v)
"""
# Stage 05: train on the held-out text, where it can find it (the corpus, the cache), by replacing the library's
# batches in its own process; else it trains as honest code does.
TRAINS_ON_HELD_OUT = """import glob, os
import lil_transformy.train as training


def _held_out():
    for folder in glob.glob(os.path.join(os.path.dirname(training.__file__), "tinystories")):
        try:
            from lil_transformy.tokens import load_token_data
            return load_token_data(folder).heldout
        except Exception:
            return None


_text = _held_out()
if _text is not None:
    _batches = training.random_windows
    training.random_windows = lambda ids, cfg, generator: _batches(_text, cfg, generator)
"""
NAN = (EMBED, "        x = self.embed(idx) * float('nan')  # (batch, seq, d_model)\n")
# Stage 05 with its attention never called: an honest mistake that loses the loss point (about 3.87, above stage 04's
# loss). Each cheat below is that model plus a trick that, where the student's code used to train, trained it longer
# or harder (it got the loss point): the judge trains now (grading/trainer.py), and every cheat loses it.
NO_ATTENTION = ("        x = self.attention(x)  # (batch, seq, d_model)\n", "")
FORWARD = "    def forward(self, idx: torch.Tensor) -> torch.Tensor:\n"
# The library's recipe, where the module runs: twice the shared steps, and train() itself wrapped to match.
LONGER_RECIPE = """import functools
import lil_transformy.train as training

object.__setattr__(training.SHARED, "steps", 2 * training.SHARED.steps)
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
STEPS_IN_FORWARD = (FORWARD, FORWARD + """        if self.training and torch.is_grad_enabled() and not getattr(self, "_inner", False):
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
""")
# State kept between calls: every gradient gets 0.9 of the one before added (momentum the budget does not have).
KEEPS_STATE = (FORWARD, FORWARD + """        if self.training and torch.is_grad_enabled():
            for p in self.parameters():
                if p.requires_grad and not hasattr(p, "_kept"):
                    p._kept = torch.zeros_like(p)

                    def _momentum(grad, p=p):
                        p._kept = grad + 0.9 * p._kept
                        return p._kept.clone()

                    p.register_hook(_momentum)
""")
# An honest reparametrisation: the embedding scaled by 2 (it must keep every point: trained, 3.760 against the
# reference's 3.727; scaled by 3 it learns less, 3.859, and honestly fails the loss check).
SCALED_EMBEDDING = (EMBED, "        x = 2.0 * self.embed(idx)  # (batch, seq, d_model): scaled, honestly\n")


def source(stage, *replacements: str, before: str = "") -> str:
    """The reference module of `stage`, with (old, new) text replaced, pair by pair, and `before` put in front."""
    text = (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()
    for old, new in zip(replacements[::2], replacements[1::2]):
        assert old in text, old
        text = text.replace(old, new)
    return before + text


def hand_in(root, student, stage, module_text):
    solved = {m: (REPO_ROOT / "solutions" / m).read_text() for m in course.stage_modules(stage)}
    course.hand_in(root, student, stage, files={**solved, f"{stage.module}.py": module_text})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("forgeries") / "course"
    course.build(root, [STAGE_04, STAGE_05])
    students = {
        ("honest", STAGE_04): source(STAGE_04),
        ("ignores_w_v", STAGE_04): source(STAGE_04, *IGNORES_W_V),
        ("ignores_w_v_patches_the_library", STAGE_04): source(STAGE_04, *IGNORES_W_V, before=PATCHES_THE_LIBRARY),
        ("honest", STAGE_05): source(STAGE_05, *SCALED_EMBEDDING),
        ("always_peeks", STAGE_05): source(STAGE_05, EMBED, PEEKS),
        ("peeks_when_judged", STAGE_05): source(STAGE_05, EMBED, PEEKS_WHEN_JUDGED),
        ("nan_logits", STAGE_05): source(STAGE_05, *NAN),
        ("no_attention", STAGE_05): source(STAGE_05, *NO_ATTENTION),
        ("trains_on_held_out", STAGE_05): source(STAGE_05, *NO_ATTENTION, before=TRAINS_ON_HELD_OUT),
        ("longer_recipe", STAGE_05): source(STAGE_05, *NO_ATTENTION, before=LONGER_RECIPE),
        ("wrapped_optimiser", STAGE_05): source(STAGE_05, *NO_ATTENTION, before=WRAPPED_OPTIMISER),
        ("steps_in_forward", STAGE_05): source(STAGE_05, *NO_ATTENTION, *STEPS_IN_FORWARD),
        ("keeps_state", STAGE_05): source(STAGE_05, *NO_ATTENTION, *KEEPS_STATE),
    }
    for (student, stage), text in students.items():
        hand_in(root, student, stage, text)
    scores, _ = course.grade_class(root, [STAGE_04, STAGE_05], jobs=2)
    with open(root / "grades.csv", newline="") as f:
        review = {(row["student_id"], row["assignment"]): row["review"] for row in csv.DictReader(f)}
    return root, {key: score for key, (score, _) in scores.items()}, review


@pytest.mark.parametrize("forgery, twin", [
    ("ignores_w_v_patches_the_library", "ignores_w_v"),
    ("peeks_when_judged", "always_peeks"),
    ("nan_logits", "always_peeks"),
    ("trains_on_held_out", "no_attention"),
    ("longer_recipe", "no_attention"),
    ("wrapped_optimiser", "no_attention"),
    ("steps_in_forward", "no_attention"),
    ("keeps_state", "no_attention"),
])
def test_no_forgery_scores_more_than_its_honest_twin(graded, forgery, twin):
    _, scores, _ = graded
    assignment = "stage_04" if forgery.startswith("ignores") else "stage_05"
    assert scores[forgery, assignment] <= scores[twin, assignment], (forgery, scores)


def test_honest_students_keep_full_marks_and_the_cheats_lose_what_they_forged(graded):
    root, scores, _ = graded
    assert scores["honest", "stage_04"] == 6 and scores["honest", "stage_05"] == 6  # stage 05's scales its embedding
    assert scores["always_peeks", "stage_05"] == scores["peeks_when_judged", "stage_05"] == 3  # no causality, no loss
    assert scores["nan_logits", "stage_05"] == 0  # NaN fails every group it reaches
    assert scores["ignores_w_v_patches_the_library", "stage_04"] < 6
    # an honest mistake, and the cheats that trained it longer or harder where the student's code used to train it
    losses_the_point = ["no_attention", "trains_on_held_out", "longer_recipe", "wrapped_optimiser", "steps_in_forward",
                        "keeps_state"]
    assert all(loss_check(root, student) != "passed" for student in losses_the_point), \
        {student: loss_check(root, student) for student in losses_the_point}


def test_the_judge_names_gradients_that_are_not_the_models_own_and_only_those(graded):
    root, _, _ = graded
    assert FORGED in loss_check(root, "keeps_state")  # a fresh child at the step checked reports another gradient
    for student in ("no_attention", "longer_recipe", "wrapped_optimiser", "trains_on_held_out"):
        assert FORGED not in loss_check(root, student), student  # what it patched never ran: nothing to name


def test_what_a_module_patches_where_it_runs_leaves_the_training_as_it_was(graded):
    root, _, _ = graded  # the library, the optimiser, the batches: none of them trains there any more
    losses = {student: verdict(root, student)[LOSS][0][0]
              for student in ("no_attention", "longer_recipe", "wrapped_optimiser", "trains_on_held_out")}
    assert len(set(losses.values())) == 1, losses  # the same forward, the same weights: the same loss, every digit


def verdict(root, student: str) -> dict:
    return json.loads((root / VERDICTS / "stage_05" / f"{student}.json").read_text())["outcomes"]


def loss_check(root, student: str) -> str:
    """Stage 05's loss check in the student's verdict: "passed", or its message."""
    [message] = [message for name, message in verdict(root, student)["loss"] if name.startswith("test_loss_on_the_ladder")]
    return message or "passed"


def test_what_no_lesson_needs_is_flagged_for_review_and_honest_work_is_not(graded):
    root, _, review = graded
    assert review["honest", "stage_04"] == review["honest", "stage_05"] == ""
    assert "imports lil_transformy" in review["ignores_w_v_patches_the_library", "stage_04"]
    assert "replaces" in review["trains_on_held_out", "stage_05"] or "imports" in review["trains_on_held_out", "stage_05"]
    feedback = (root / "feedback" / "trains_on_held_out" / "stage_05" / "stage_05.html").read_text()
    assert "For review by your instructor" in feedback
