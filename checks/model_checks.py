"""The checks every language-model stage (01-09) shares; each stage's test file imports them.

Shapes, causality (by perturbation, on random tokens and a real story, and on the trained model's own
answers), the loss ladder (the stage, trained with the shared budget, must beat the previous stage), and
the earlier stages a stage runs, checked again.
"""
import importlib
import inspect
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from lil_transformy.grading.checking import (
    expect,
    expect_shape,
    first_future_leak_by_perturbation,
    observed_loss,
    random_tokens,
    random_vectors,
    student_code,
)
from lil_transformy.grading.limits import TRAINING_WALL_SECONDS
from lil_transformy.ladder import reference_loss
from lil_transformy.stages import get_stage, implementation_folder, stage_of_assignment
from lil_transformy.train import SHARED, pick_device
from lil_transformy.trainings import kept, remember_check, reused, shared_training

from .attention_checks import attention_diagnosis

# What `from ..model_checks import *` gives a stage's test file: the checks every language-model stage runs.
__all__ = ["test_logits_shape", "test_no_peeking_by_perturbation", "test_no_peeking_on_a_real_story",
           "test_loss_on_the_ladder", "test_the_trained_model_never_sees_the_future"]
NO_PEEKING_HINT = {
    "01": "causal_average must average x[:, :t + 1] only: a plain x.mean(dim=1) averages the whole sequence",
    "02": "causal_average (your stage 01) must average x[:, :t + 1] only",
    "03": "a bigram's logits at position t come from token t alone: no mixing across positions",
    "03b": "window(x, n) at position t holds x[t - n + 1], ..., x[t]: pad in front, never behind",
}
# Where the future leaks in when the student's attention_weights is causal and normalised (attention_checks.py
# looks at it first): what each stage adds after it.
AFTER_ATTENTION_HINT = {
    "04": "attention_weights is causal, so look after it: AttentionHead.forward returns attention_weights(q, k) @ v, "
          "and nothing else may mix positions (no sum or mean over the sequence axis)",
    "05": "attention_weights is causal, so look at what this stage adds: the position embeddings are added to each "
          "token vector, and nothing may mix positions outside attention",
    "06": "attention_weights is causal, so look at what this stage adds: the FFN acts on each position's vector "
          "alone (Linear layers on the last axis), never across the sequence",
    "07": "attention_weights is causal, so look at what this stage adds: LayerNorm normalises each position's "
          "vector over d_model (the last axis), never across positions",
    "09": "attention_weights is causal, so look at the heads: split_heads splits d_model into (n_heads, d_head) "
          "and then transposes; a plain view(batch, n_heads, seq, d_head) mixes positions, and so does a merge "
          "that does not undo the split exactly",
}
AFTER_ATTENTION_HINT["08"] = AFTER_ATTENTION_HINT["07"]
POSITIONS_ADD_NOTHING_TOLERANCE = 0.05  # stage 02 may differ from stage 01 by at most this (nats)
# The reference losses were measured on CPU; an MPS or CUDA run of the same code lands a little apart
# (other kernels, other rounding). Grading runs on CPU, without slack.
LOSS_SLACK_OFF_CPU = 0.01


def stage_of(request) -> str:
    return stage_of_assignment(request.path.parent.name).number


def build(Model, cfg):
    with student_code():
        return Model(cfg).eval()


@pytest.mark.shapes
@pytest.mark.parametrize("batch, seq", [(1, 1), (2, 5), (3, 8)])
def test_logits_shape(Model, tiny, batch, seq):
    model = build(Model, tiny)
    with student_code():
        logits = model(random_tokens(tiny.vocab_size, (batch, seq)))
    expect_shape(logits, (batch, seq, tiny.vocab_size), "logits",
                 "one score for every vocabulary id at every position: (batch, seq, vocab)")


def peeking_hint(request) -> str:
    """The likeliest cause of a leak at this stage: the student's own attention first, where it has one."""
    number = stage_of(request)
    if number in NO_PEEKING_HINT:
        return NO_PEEKING_HINT[number]
    attention = request.getfixturevalue("attention_stage")
    return (attention_diagnosis(attention, number) if attention is not None else None) or AFTER_ATTENTION_HINT[number]


def no_peeking(request, model, idx, vocab_size):
    with student_code():
        leak = first_future_leak_by_perturbation(model, idx, vocab_size)
    if leak:
        t, s = leak
        expect(False, f"the logits at positions <= {t} ignore the tokens after them",
               f"the logits at position {t} changed when only token {s} changed: your model sees the future",
               peeking_hint(request))


@pytest.mark.causality
def test_no_peeking_by_perturbation(request, Model, tiny):
    no_peeking(request, build(Model, tiny), random_tokens(tiny.vocab_size, (2, tiny.context)), tiny.vocab_size)


@pytest.mark.causality
def test_no_peeking_on_a_real_story(request, Model, token_data):
    cfg = replace(SHARED, vocab_size=token_data.vocab.size)
    story = token_data.heldout[: cfg.context].unsqueeze(0)  # (1, context): the first held-out tokens
    no_peeking(request, build(Model, cfg), story, cfg.vocab_size)


@pytest.mark.causality
def test_the_attention_it_builds_on_is_causal(request, attention_stage):
    """A stage after 04 runs the student's own stage 04: its causal_mask and attention_weights are checked again
    here (cheaply), and a mistake there is named as stage 04's."""
    expect(attention_stage is not None, "your stage 04 module, which this stage builds on",
           "a module that cannot be loaded", "run pytest checks/stage_04 first")
    with student_code():
        attention_stage.causal_mask(4)  # a stub fails here: not written yet
        attention_stage.attention_weights(random_vectors(1, 4, 8), random_vectors(1, 4, 8))
    problem = attention_diagnosis(attention_stage, stage_of(request))
    expect(problem is None, "your stage 04 causal_mask and attention_weights to pass stage 04's checks",
           "a mistake there", problem or "")


def own_checks(number: str) -> list:
    """The property checks of stage `number`'s own components: those in its test files with no group marker that
    need only its module (and the tiny configuration), run as they are. (Its attention's causality is re-checked by
    test_the_attention_it_builds_on_is_causal, the whole model's by this stage's own causality checks.)"""
    found = []
    for path in sorted((Path(__file__).parent / get_stage(number).assignment).glob("test_*.py")):
        module = importlib.import_module(f"{__package__}.{get_stage(number).assignment}.{path.stem}")
        found += [check for name, check in vars(module).items() if name.startswith("test_")
                  and check.__module__ == module.__name__ and not hasattr(check, "pytestmark")
                  and set(inspect.signature(check).parameters) <= {"stage", "tiny"}]
    return found


@pytest.mark.property
def test_the_stages_it_builds_on_pass_their_checks(request, load_stage, tiny, reseed):
    """The student's earlier stages that run inside this one (`Stage.builds_on`: stage 08's blocks run stage 06's
    FFN) pass their own component checks again, here: a mistake there is named as that stage's."""
    failed = {}  # stage: its first failing check, and why
    for number in get_stage(stage_of(request)).builds_on:
        fixtures = {"stage": load_stage(number), "tiny": tiny}
        for check in own_checks(number):
            reseed()
            try:
                check(**{name: fixtures[name] for name in inspect.signature(check).parameters})
            except pytest.fail.Exception as failure:
                why = "\n".join(line.strip() for line in str(failure.msg).strip().splitlines())
                failed[number] = f"your stage {number} fails its {check.__name__}:\n" + textwrap.indent(why, " " * 4)
                break  # one failure is enough to send the student back there
    first = next(iter(failed), None)
    expect(not failed, "your earlier stages that run in this one to pass their own checks",
           textwrap.indent("\n".join(failed.values()), " " * 12).lstrip(),
           f"fix stage {first} first (pytest checks/stage_{first}): this stage runs its code, so it fails too")


@dataclass
class Scored:
    """One training and scoring of the stage, shared by the two checks that judge it."""
    loss: float
    how: str  # trained how many steps, or from the cache
    leak: str | None  # where the scored model saw the future, or None


SCORED: dict[str, Scored] = {}  # stage number: its run (a pytest run grades one implementation)


def trained_and_scored(request, Model, token_data, student_child, impl, fast_failures) -> Scored:
    """The stage trained with the shared budget (seed 0) and scored on the held-out text, with proof on that very
    answer that no position saw the future (checking.observed_loss). In a student's own run (not isolated) it
    trains only when every fast check of the stage passed, and only once per version of the stage: the notebook,
    `lil-transformy train` and this check share one training (lil_transformy/trainings.py)."""
    number = stage_of(request)
    if number in SCORED:
        return SCORED[number]
    if student_child is None and fast_failures:
        pytest.fail(f"not trained: {len(fast_failures)} fast check{'s' * (len(fast_failures) > 1)} of this stage "
                    f"failed first ({', '.join(fast_failures)}). Fix those (pytest checks/stage_{number} -m 'not "
                    f"training' shows why): this check then trains your model (18-30 s on the course's 2-core test machine "
                    f"when not busy, several times longer on a busy one: README, 'How long a training takes') and counts "
                    f"as failed until it does. Grading trains it regardless.", pytrace=False)
    if student_child is None:  # the student's own run, in this process: they can only fool themselves
        SCORED[number] = own_run(number, impl, token_data)
    else:
        SCORED[number] = graded_run(student_child, number, token_data)
    return SCORED[number]


def own_run(number: str, impl: str, token_data) -> Scored:
    """The student's run: the stage's one training with the shared budget, whoever trained it first, scored here once
    (what this check found is kept with it)."""
    folder = implementation_folder(impl)
    entry = kept(number, folder, token_data)
    if entry is not None and entry["check"] is not None:
        return Scored(entry["check"]["loss"], reused(entry), entry["check"]["leak"])
    terminal = sys.__stderr__ if sys.__stderr__.isatty() else False
    with student_code():
        result, how = shared_training(number, impl, token_data, "the loss check", progress=terminal,
                                      label="training your model")
        model = result.model.eval()
        loss, leak = observed_loss(model, model, token_data.heldout, SHARED, token_data.vocab.size)
    remember_check(number, folder, token_data, loss, leak)
    return Scored(loss, how, leak)


def graded_run(student_child, number: str, token_data) -> Scored:
    """Graded: the judge trains the model with the shared budget, asking a fresh child of its own, which holds no
    text, for each step's loss and gradients (grading/trainer.py), within its CPU budget, and checks one step in
    secret; the judge then scores the trained weights in a child that has answered nothing else of them, from the
    logits it returns, and checks that very answer against a second such child that cannot compare notes."""
    with student_code(), student_child.trained_models(number, token_data.train, token_data.vocab.size) as models:
        loss, leak = observed_loss(*models, token_data.heldout, SHARED, token_data.vocab.size)
    return Scored(loss, f"trained {SHARED.steps} steps by the judge", leak)


@pytest.mark.loss
@pytest.mark.training
@pytest.mark.timeout(TRAINING_WALL_SECONDS + 60)
def test_loss_on_the_ladder(request, Model, token_data, reference, student_child, impl, fast_failures, loss_lines):
    """Trained with the shared budget (seed 0), the stage beats the previous stage's reference loss. Where the
    student's code runs, it trains; the held-out loss is computed here, from the logits it returns."""
    number = stage_of(request)
    passes, expected, hint = ladder_goal(number, reference)
    try:
        run = trained_and_scored(request, Model, token_data, student_child, impl, fast_failures)
    except pytest.fail.Exception:
        loss_lines.append(f"stage {number}: not trained")
        raise
    ok = passes(run.loss) and run.leak is None
    request.node.user_properties.append(("loss", f"{run.loss:.4f}"))  # kept in the verdict (judge.LOSS)
    request.node.user_properties.append(("loss_goal", expected))  # and what it had to beat (judge.LOSS_GOAL)
    loss_lines.append(f"stage {number}: held-out loss {run.loss:.3f}, {'passed' if ok else 'FAILED'}: {expected} "
                      f"({run.how})" + (" but the model sees the future: not scored" if run.leak else ""))
    expect(run.leak is None, "a held-out loss from a model that uses only the tokens up to each position",
           f"a model that sees the future when it is scored ({run.leak})",
           "a loss that used the next tokens means nothing: see the causality check of the trained model")
    expect(ok, expected, f"{run.loss:.3f} ({run.how})", hint)


@pytest.mark.causality
@pytest.mark.training
@pytest.mark.timeout(TRAINING_WALL_SECONDS + 60)
def test_the_trained_model_never_sees_the_future(request, Model, token_data, student_child, impl, fast_failures):
    """The model that is scored, on the answer it gave: the same logits up to every position whose tokens so far are
    the same (checking.observed_loss), however the model was called."""
    run = trained_and_scored(request, Model, token_data, student_child, impl, fast_failures)
    expect(run.leak is None, "the same logits at every position whose tokens so far are the same",
           run.leak or "", "your model sees the future when it is trained or scored: every position may use only "
           "the tokens up to itself, always")


def ladder_goal(number: str, reference: dict):
    """(does a loss pass?, what is expected, the hint) for stage `number`'s loss check."""
    if number == "01":
        baseline = reference["unigram_loss"]
        return (lambda loss: loss < baseline, f"a held-out loss below the unigram baseline {baseline:.3f}",
                "predicting from the context should beat predicting the commonest words")
    if number == "02":
        ref01, _ = reference_loss(reference, "01")
        return (lambda loss: abs(loss - ref01) <= POSITIONS_ADD_NOTHING_TOLERANCE,
                f"about stage 01's loss {ref01:.3f} (within {POSITIONS_ADD_NOTHING_TOLERANCE}): positions under an "
                f"average add (almost) nothing",
                "positions are added to every token vector before causal_average, exactly as in stage 01")
    previous = get_stage(get_stage(number).previous)
    target, _ = reference_loss(reference, previous.number)
    device = pick_device(SHARED.device)
    slack = 0.0 if device.type == "cpu" else LOSS_SLACK_OFF_CPU
    return (lambda loss: loss < target + slack,
            f"a held-out loss below stage {previous.number}'s ({previous.title}) {target:.3f}"
            + (f" + {slack} (trained on {device.type}; the reference was measured on cpu)" if slack else ""),
            f"your stage {number} learns less than the stage before it: are all its components used in forward()?")
