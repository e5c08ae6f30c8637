"""The main job: train every stage with the shared budget and write the evolution report."""
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from lil_transformy.ladder import LADDER_GAP_SIGMAS, LADDER_WORST_MARGIN, rung
from lil_transformy.plots import evolution_figure
from lil_transformy.sampling import sample_text
from lil_transformy.stages import Stage, get_stage, model_class
from lil_transformy.tokens import TokenData, load_token_data
from lil_transformy.train import SHARED, Config, config_dict, pick_device, train

PROMPT = "Once upon a time, there was a little girl named Lily. She"


def unigram_loss(data: TokenData) -> float:
    """The held-out loss of always predicting the training frequencies (add-one smoothed)."""
    counts = torch.bincount(data.train, minlength=data.vocab.size).double() + 1
    log_probs = (counts / counts.sum()).log()
    return float(-log_probs[data.heldout].mean())


def evolve(stages: list[Stage], seeds: list[int], out: Path, impl: str = "solutions",
           cfg: Config = SHARED) -> dict:
    data = load_token_data()
    config = {**config_dict(cfg), "seeds": seeds, "vocab_size": data.vocab.size,
              "train_tokens": len(data.train), "heldout_tokens": len(data.heldout),
              "data_fingerprint": data.fingerprint, "device": str(pick_device(cfg.device)),
              "torch": torch.__version__, "impl": impl}
    report: dict[str, Any] = {
        "config": config,
        "unigram_loss": unigram_loss(data),
        "stages": earlier_stages(out, config, [s.number for s in stages]),
    }
    started = time.perf_counter()
    started_with = set(report["stages"])
    runs = tqdm([(stage, seed) for stage in stages for seed in seeds], desc="evolve", unit="model")
    for stage, seed in runs:
        runs.set_postfix(stage=stage.number, seed=seed)
        result = train(model_class(stage.number, impl), data, replace(cfg, seed=seed),
                       label=f"stage {stage.number} seed {seed}")
        entry = report["stages"].setdefault(stage.number, {
            "title": stage.title, "val_loss": [], "seconds": [],
            "params": sum(p.numel() for p in result.model.parameters()),
            "history": result.history,
            "sample": sample_text(result.model, data.vocab, PROMPT, result.config.context, seed=seed)})
        assert result.val_loss is not None  # train() scored it
        entry["val_loss"].append(round(result.val_loss, 4))
        entry["seconds"].append(round(result.seconds, 1))
        write_json(report, out)  # what is done so far survives an interruption
    report["stages"] = dict(sorted(report["stages"].items()))
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["kept_from_earlier_run"] = sorted(started_with)
    write_report(report, out)
    return report


def earlier_stages(out: Path, config: dict, rerun: list[str]) -> dict:
    """The other stages of a report already in `out`, made with exactly this config, data and torch.

    Training is deterministic, so re-running only the stages that changed gives the same report
    as re-running all of them.
    """
    path = out / "evolution.json"
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    if earlier.get("config") != config:
        return {}
    return {number: entry for number, entry in earlier["stages"].items() if number not in rerun}


def write_json(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "evolution.json.tmp"
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(out / "evolution.json")


def write_report(report: dict, out: Path) -> None:
    write_json(report, out)
    (out / "evolution.md").write_text(markdown_table(report))
    evolution_figure(report).savefig(out / "evolution.png", dpi=110)


def markdown_table(report: dict) -> str:
    c = report["config"]
    lines = [f"Held-out loss on {c['heldout_tokens']:,} tokens (vocabulary {c['vocab_size']:,}; windows every "
             f"{c['eval_stride']} tokens, each scoring its last {c['eval_stride']}); "
             f"d_model {c['d_model']}, context {c['context']}, batch {c['batch_size']}, {c['steps']} steps, "
             f"lr {c['lr']} ({c['schedule']}, {c['warmup_steps']} warm-up), weight decay {c['weight_decay']}, "
             f"seeds {c['seeds']} (the initial weights: every seed trains on the same batches), {c['device']}.",
             f"Unigram baseline: {report['unigram_loss']:.3f}.", "",
             "| stage | model | held-out loss (mean) | per seed | vs previous | perplexity | params | s/model | sample |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    previous = report["unigram_loss"]
    for number, s in report["stages"].items():
        mean = statistics.fmean(s["val_loss"])
        sample = s["sample"].replace("\n", " ").replace("|", "/")
        lines.append(f"| {number} | {s['title']} | {mean:.3f} | {', '.join(f'{v:.3f}' for v in s['val_loss'])} "
                     f"| {mean - previous:+.3f} | {math.exp(mean):.1f} | {s['params']:,} "
                     f"| {statistics.fmean(s['seconds']):.0f} | {sample} |")
        previous = mean
    return "\n".join(lines + ["", *ladder_table(report)]) + "\n"


def ladder_table(report: dict) -> list[str]:
    """Per transition: how far each stage lands below the one before, against its seed-to-seed spread."""
    losses = {number: entry["val_loss"] for number, entry in report["stages"].items()}
    lines = [f"The ladder: gap = previous stage's mean - this stage's mean; sd = this stage's seed-to-seed "
             f"standard deviation; worst margin = previous mean - this stage's worst seed (what the loss check "
             f"compares, seed by seed). A rung holds with room when gap >= {LADDER_GAP_SIGMAS} sd and "
             f"worst margin >= {LADDER_WORST_MARGIN}.", "",
             "| transition | gap | sd | gap / sd | worst margin | holds with room |", "| --- | --- | --- | --- | --- | --- |"]
    for number in losses:
        step = rung(losses, get_stage(number))
        if step is not None:
            lines.append(f"| {step.below} → {number} | {step.gap:+.3f} | {step.sd:.4f} | {step.gap / step.sd:.1f} | "
                         f"{step.worst:+.3f} | {'yes' if step.score >= 1 else '**no**'} |")
    return lines
