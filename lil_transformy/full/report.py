"""The full preset's evolution: every stage on all of TinyStories, reported beside the seed project's table.

The seed trained each stage for its own number of epochs; FULL gives every stage one budget, so where a
number differs from the seed's, the table says by how much (our loss - the seed's).
"""
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from lil_transformy.evolve import PROMPT, write_json
from lil_transformy.full.data import FULL_DATASET, load_full_data
from lil_transformy.full.scale import FULL, precision, train_full
from lil_transformy.plots import evolution_figure
from lil_transformy.sampling import sample_text
from lil_transformy.stages import Stage, model_class
from lil_transformy.train import Config, config_dict, pick_device

# The seed's held-out losses (its 08 and 09 as perplexities; its 03b a trigram, as ours). 09: 2 heads, 1.48 M params.
SEED_LOSS = {"01": 5.601, "02": 5.603, "03": 3.577, "03b": math.log(23.8), "04": 3.221, "05": 2.873,
             "06": 2.595, "07": 2.387, "08": math.log(8.7), "09": math.log(8.3)}
SEED_NOTE = ("The seed: d_model 128, context 256, vocabulary 4,096 (98.75 % coverage), all of TinyStories, each "
             "stage trained for its own number of epochs; its 03b trigram reached perplexity 23.8 (4-gram 20.2), "
             "its 08 and 09 were reported as perplexities (8.7, 8.3), its 09 had 2 heads (ours 4: the same "
             "parameters) and 1.48 M parameters.")


def checkpoint_path(out: Path, number: str, seed: int) -> Path:
    return out / "checkpoints" / f"stage_{number}-seed{seed}.pt"


def evolve_full(stages: list[Stage], seeds: list[int], out: Path, impl: str = "solutions", cfg: Config = FULL,
                dataset: str = FULL_DATASET, compile_model: bool = False) -> dict:
    """Train every stage (resuming any from its checkpoint) and write evolution.json, .md and .png into `out`."""
    data = load_full_data(dataset)
    device = pick_device(cfg.device)
    config = {**config_dict(cfg), "seeds": seeds, "vocab_size": data.vocab.size, "coverage": data.vocab.coverage,
              "train_tokens": len(data.train), "heldout_tokens": len(data.heldout), "dataset": dataset,
              "data_fingerprint": data.fingerprint, "device": str(device), "torch": torch.__version__,
              "impl": impl, "compile": compile_model,
              "precision": "bf16 autocast" if isinstance(precision(device), torch.autocast) else "fp32"}
    report: dict[str, Any] = {"config": config, "unigram_loss": data.unigram_loss, "stages": {}}
    started = time.perf_counter()
    for stage in stages:
        for seed in seeds:
            result = train_full(model_class(stage.number, impl), data, replace(cfg, seed=seed),
                                checkpoint_path(out, stage.number, seed), compile_model,
                                label=f"stage {stage.number} seed {seed}")
            entry = report["stages"].setdefault(stage.number, {
                "title": stage.title, "val_loss": [], "seconds": [],
                "params": sum(p.numel() for p in result.model.parameters()), "history": result.history,
                "sample": sample_text(result.model, data.vocab, PROMPT, result.config.context, seed=seed)})
            assert result.val_loss is not None  # train_full scores every model
            entry["val_loss"].append(round(result.val_loss, 4))
            entry["seconds"].append(round(result.seconds, 1))
            write_json(report, out)  # what is done so far survives an interruption
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_json(report, out)
    (out / "evolution.md").write_text(markdown_table(report))
    evolution_figure(report).savefig(out / "evolution.png", dpi=110)
    return report


def markdown_table(report: dict) -> str:
    c = report["config"]
    tokens = c["steps"] * c["batch_size"] * c["context"]
    setup = (f"Every stage on {c['dataset']}: {c['train_tokens']:,} training tokens, held-out loss on "
             f"{c['heldout_tokens']:,} tokens (windows every {c['eval_stride']} tokens, each scoring its last "
             f"{c['eval_stride']}), vocabulary {c['vocab_size']:,} ({c['coverage']:.2%} coverage). One budget for "
             f"every stage: {c['steps']:,} steps of {c['batch_size']} x {c['context']} tokens = {tokens:,} "
             f"tokens ({tokens / c['train_tokens']:.2f} epochs); d_model {c['d_model']}, lr {c['lr']} "
             f"({c['schedule']}, {c['warmup_steps']} warm-up), weight decay {c['weight_decay']}; {c['device']}, "
             f"{c['precision']}{', torch.compile' if c['compile'] else ''}, torch {c['torch']}, seeds {c['seeds']}.")
    lines = [setup, f"Unigram baseline: {report['unigram_loss']:.3f}.", "", SEED_NOTE, "",
             ("| stage | model | seed loss | seed ppl | our loss | our ppl | ours - seed | params | tokens seen "
              "| min | device | sample |"), "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for number, s in report["stages"].items():
        ours, seed = sum(s["val_loss"]) / len(s["val_loss"]), SEED_LOSS[number]
        sample = s["sample"].replace("\n", " ").replace("|", "/")
        lines.append(f"| {number} | {s['title']} | {seed:.3f} | {math.exp(seed):.1f} | {ours:.3f} | "
                     f"{math.exp(ours):.1f} | {ours - seed:+.3f} | {s['params']:,} | {tokens:,} | "
                     f"{sum(s['seconds']) / len(s['seconds']) / 60:.1f} | {c['device']} | {sample} |")
    return "\n".join(lines + ["", "Learning curves: evolution.png (probe loss on the first held-out tokens)."]) + "\n"
