"""What the stage notebooks share: one call per step of a lesson, so a notebook holds the story.

A notebook never defines a model component: it imports the student's (or the reference's)
stage module, trains it with the shared loop, and looks at it with these helpers.
"""
import os
import sys
from contextlib import contextmanager
from dataclasses import replace

import matplotlib.pyplot as plt
import torch

from lil_transformy import stages
from lil_transformy.errors import LilTransformyError
from lil_transformy.evolve import PROMPT
from lil_transformy.ladder import reference_report
from lil_transformy.paths import EVOLUTION_REPORT
from lil_transformy.plots import attention_heatmaps
from lil_transformy.sampling import sample_text
from lil_transformy.tokens import TokenData, word_order_pair
from lil_transformy.train import PROBE_TOKENS, SHARED, Config, TrainResult, config_dict, train
from lil_transformy.trainings import shared_training

QUICK_ENV = "LIL_TRANSFORMY_QUICK"  # "1": a short run, for CI and a first look on a laptop; a number > 1: that many steps
QUICK = replace(SHARED, steps=200, warmup_steps=20, eval_every=25)
VALIDATING = replace(QUICK, steps=20, warmup_steps=5, eval_every=20)  # does the notebook run? within Validate's 30 s
PROMPTS = (PROMPT, "Tom and his dog went to the park. The dog", "The sun was")


def budget() -> Config:
    """The shared training budget, or its quick version when $LIL_TRANSFORMY_QUICK is set (1: QUICK) or nbgrader's
    Validate runs the notebook (it gives a cell 30 s; the loss is decided at grading)."""
    if os.environ.get("NBGRADER_VALIDATING") and QUICK_ENV not in os.environ:
        return VALIDATING
    quick = os.environ.get(QUICK_ENV, "0")
    if not quick.isdigit():
        raise LilTransformyError(f"${QUICK_ENV} is 1 (a quick run) or a number of steps, not {quick!r}")
    steps = int(quick)
    if steps == 0:
        return SHARED
    if steps == 1:
        return QUICK
    return replace(QUICK, steps=steps, warmup_steps=min(QUICK.warmup_steps, steps // 4), eval_every=max(1, steps // 8))


def train_stage(number: str, impl: str, data: TokenData, model_class=None, label: str | None = None) -> TrainResult:
    """Train stage `number` of `impl` (or `model_class`) with the budget; print its held-out loss.

    With the shared budget, the stage's one training is shared with its loss check and `lil-transformy train`
    (lil_transformy/trainings.py): kept, when nothing it was trained from has changed since, else trained now."""
    cfg = budget()
    label = label or f"stage {number}"
    if cfg == SHARED and model_class is None:
        result, how = shared_training(number, impl, data, "the notebook", label=label)
        print(f"{label}: held-out loss {result.val_loss:.3f} (perplexity {result.perplexity:.0f}), {how}")
        return result
    result = train(model_class or stages.model_class(number, impl), data, cfg, label=label)
    mode = "quick mode, " if cfg != SHARED else ""
    print(f"{label}: held-out loss {result.val_loss:.3f} (perplexity {result.perplexity:.0f}) "
          f"after {cfg.steps} steps ({mode}{result.seconds:.0f} s)")
    return result


def trained_like_the_references(cfg: Config, reference_config: dict) -> bool:
    """Whether a run's learning curve may be drawn against the reference curves: the same budget and schedule.

    The learning rate decays to 0 at the last step, so the schedule depends on the total steps: step 200 of a
    quick run is not step 200 of a full run, and no point of the references' history matches a quick run.
    """
    return all(reference_config.get(key) == value for key, value in config_dict(cfg).items() if key != "eval_every")


def plot_learning_curves(results: dict[str, TrainResult], earlier: list[str]):
    """The probe loss during training: these runs (solid) against the reference runs of `earlier` stages (dotted).

    The references are drawn only when these runs had the references' budget; a quick run is shown alone, and the
    plot and the printed text say why. The probe is the first PROBE_TOKENS held-out tokens; a stage's held-out
    loss (printed) is on all of them.
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    report = reference_report() if EVOLUTION_REPORT.exists() else {"config": config_dict(SHARED), "stages": {}}
    references = {number: report["stages"][number] for number in earlier if number in report["stages"]}
    reference_steps, steps = report["config"]["steps"], max(result.config.steps for result in results.values())
    if all(trained_like_the_references(result.config, report["config"]) for result in results.values()):
        for number, entry in references.items():
            ax.plot(entry["history"]["step"], entry["history"]["probe_loss"], linestyle=":",
                    label=f"{number} {entry['title']} (reference, {reference_steps:,} steps)")
        ax.set_title("Learning curves: same data, same budget, only the architecture changes")
    else:
        ax.set_title(f"Quick mode: {steps:,} steps, the learning rate decaying to 0 over them\nnot comparable "
                     f"with the full-budget reference curves ({reference_steps:,} steps), so they are not drawn",
                     fontsize=10)
        if references:
            print(f"Quick mode ({steps:,} steps): the reference curves of stages {', '.join(references)} trained "
                  f"the full budget ({reference_steps:,} steps) with another learning-rate schedule, so they "
                  f"cannot be compared with this run and are not drawn. To compare, train the full budget: "
                  f"unset ${QUICK_ENV}.")
    for label, result in results.items():
        ax.plot(result.history["step"], result.history["probe_loss"], linewidth=2.5, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"probe loss: first {PROBE_TOKENS:,} held-out tokens (nats / token)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_samples(result: TrainResult, vocab, prompts=PROMPTS, seed: int = 0) -> None:
    """What the trained model writes after each prompt (temperature 0.8, top 50)."""
    for prompt in prompts:
        text = sample_text(result.model, vocab, prompt, result.config.context, seed=seed)
        print(f"{prompt!r}\n  -> {text[len(prompt):]!r}\n")


@torch.no_grad()
def next_token_table(model, vocab, texts, k: int = 5) -> None:
    """The k most likely next tokens after each text, side by side."""
    model.eval()
    device = next(model.parameters()).device
    for text in texts:
        ids = torch.as_tensor(vocab.encode(text)).unsqueeze(0).to(device)  # (1, seq)
        probs = torch.softmax(model(ids)[0, -1], dim=-1)  # (vocab,)
        top = torch.topk(probs, k)
        guesses = ", ".join(f"{vocab.decode([i])!r} {p:.3f}" for p, i in zip(top.values.tolist(), top.indices.tolist()))
        print(f"{text!r:28} -> {guesses}")


@torch.no_grad()
def word_order_difference(model, vocab) -> float:
    """The largest difference between the last-position logits of the word-order pair."""
    model.eval()
    device = next(model.parameters()).device
    a, b = word_order_pair(vocab)
    return float((model(a.to(device))[0, -1] - model(b.to(device))[0, -1]).abs().max())


@contextmanager
def recorded_attention(model):
    """Collect every attention_weights(q, k) result of one forward pass, in call order.

    Attention modules call the stage-04 function `attention_weights` by name; for the length of the
    `with`, every stage module the model's layers come from gets a recording wrapper under that name.
    """
    recorded = []
    modules = {sys.modules[type(m).__module__] for m in model.modules()}
    originals = {module: module.attention_weights for module in modules if hasattr(module, "attention_weights")}

    def wrap(original):
        def recording(q, k):
            weights = original(q, k)
            recorded.append(weights.detach().cpu())
            return weights
        return recording

    for module, original in originals.items():
        module.attention_weights = wrap(original)
    try:
        yield recorded
    finally:
        for module, original in originals.items():
            module.attention_weights = original


@torch.no_grad()
def plot_attention(model, vocab, ids: torch.Tensor):
    """Heat maps of every head's weights on the token `ids` (seq,): row = the position attending, column = where it looks."""
    model.eval()
    device = next(model.parameters()).device
    ids = ids[: SHARED.context]
    with recorded_attention(model) as recorded:
        model(ids.unsqueeze(0).to(device))
    # (batch 1, heads, query, key) from a multi-head layer, (batch 1, query, key) from a single head: (heads, query, key)
    heads = [weights[0] if weights.dim() == 4 else weights for weights in recorded]
    maps = {f"block {layer + 1}, head {head + 1}": weights.numpy() for layer, layer_heads in enumerate(heads)
            for head, weights in enumerate(layer_heads)}
    if len(maps) == 1:
        maps = {"where each position looks": next(iter(maps.values()))}
    return attention_heatmaps(maps, [vocab.decode([i]) for i in ids.tolist()])


def plot_coverage(curve, vocab_size: int, coverage: float) -> None:
    """Stage 00: the share of the corpus the k most frequent token types cover."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(range(1, len(curve) + 1), curve)
    ax.axvline(vocab_size, color="tab:red", linestyle=":", label=f"{vocab_size:,} ids cover {coverage:.1%}")
    ax.set_xscale("log")
    ax.set_xlabel("the k most frequent GPT-2 token types")
    ax.set_ylabel("share of the training tokens covered")
    ax.set_title("A few thousand token types cover almost all of TinyStories")
    ax.legend()
    fig.tight_layout()
