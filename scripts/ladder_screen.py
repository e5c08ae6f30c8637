"""Screen one shared budget (plus two architecture levers) on chosen stages and seeds, one model at a time.

Levers beyond Config, applied to the reference solutions for the run only (the lesson files stay as they are):
    --heads H  stage 09's N_HEADS (4 in the lesson)
    --ffn M    FeedForward's width, M * d_model (stage 06's WIDTH: 8 in the lesson; stages 06-09)
Every trained model's held-out loss is appended to scripts/ladder_runs.jsonl, keyed by the Config (less the
seed), the levers that touch that stage, the stage and the seed; a model already there is not trained again.
Runs of seeds other than 0 made before train() gave every seed the same batches (the seed also chose the
batches then) are kept without the "batches" mark, and are not shown; so are runs scored before the held-out loss
had eval_stride (non-overlapping windows), whose keys lack it.

    PYTHONPATH=. nice -n 19 python scripts/ladder_screen.py run --set weight_decay=0.2 --heads 8 --stages 03-09 --seeds 0
    PYTHONPATH=. python scripts/ladder_screen.py show --set weight_decay=0.2 --heads 8 --seeds 0,1,2
"""
import argparse
import json
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_budget import LADDER, REF_MS, REF_WORK, transitions  # noqa: E402

from lil_transformy.stages import load_stage_module, model_class, parse_stages  # noqa: E402
from lil_transformy.train import SHARED, train  # noqa: E402

RUNS = Path(__file__).resolve().parent / "ladder_runs.jsonl"
# Trial 26 of the Optuna search (reports/budget_search.md), to full precision: the base every --set edits.
BASE = replace(SHARED, d_model=64, context=32, batch_size=32, steps=1235, lr=0.009194671589795114,
               warmup_steps=17, weight_decay=0.14969118366519074, beta2=0.99)
VOCAB = 3433


def parse_set(items: list[str]):
    cfg = BASE
    for item in items:
        key, _, value = item.partition("=")
        kind = type(getattr(BASE, key))
        cfg = replace(cfg, **{key: kind(value)})
    return cfg


def key(cfg, stage: str, seed: int, heads: int, ffn: int) -> str:
    c = {k: v for k, v in asdict(cfg).items() if k not in ("seed", "device", "vocab_size")}
    levers = {"cfg": c, "stage": stage, "seed": seed,
              "heads": heads if stage == "09" else None, "ffn": ffn if stage >= "06" else None}
    if seed != 0:  # seed 0 trained on seed 0's batches before and after every seed got them
        levers["batches"] = "seed 0"
    return json.dumps(levers, sort_keys=True)


def load_runs() -> dict[str, float]:
    if not RUNS.exists():
        return {}
    out = {}
    for line in RUNS.read_text().splitlines():
        r = json.loads(line)
        out[r["key"]] = r["val_loss"]
    return out


def flops_per_token(cfg, ffn: int) -> float:
    """Stage 09's forward multiply-adds per token: 2 blocks (q, k, v, out; causal scores and mix; FFN) + unembed."""
    d, ctx = cfg.d_model, cfg.context
    return 2 * (4 * d * d + ctx * d + 2 * ffn * d * d) + d * VOCAB


def predicted_seconds(cfg, ffn: int = 4) -> float:
    """search_budget.py's formula (22 ms/step at d 64, ctx 32, batch 32, proportional to batch*ctx*d), times
    the FLOP ratio of a FeedForward width other than 4 (an estimate: the formula was fitted at width 4)."""
    base = REF_MS / 1000 * cfg.batch_size * cfg.context * cfg.d_model / REF_WORK * cfg.steps
    return base * flops_per_token(cfg, ffn) / flops_per_token(cfg, 4)


def apply_levers(heads: int, ffn: int) -> None:
    load_stage_module("09", "solutions").N_HEADS = heads
    ffn_module = load_stage_module("06", "solutions")

    def init(self, d_model: int):
        nn.Module.__init__(self)
        self.up = nn.Linear(d_model, ffn * d_model)
        self.down = nn.Linear(ffn * d_model, d_model)
    ffn_module.FeedForward.__init__ = init


def run(cfg, stages, seeds, heads, ffn, prune: float | None) -> None:
    from lil_transformy.tokens import load_token_data
    apply_levers(heads, ffn)
    data = load_token_data()
    done = load_runs()
    for seed in seeds:
        previous = None
        for stage in stages:
            k = key(cfg, stage, seed, heads, ffn)
            if k in done:
                loss = done[k]
            else:
                result = train(model_class(stage, "solutions"), data, replace(cfg, seed=seed), progress=False)
                loss = round(result.val_loss, 4)
                with RUNS.open("a") as f:
                    f.write(json.dumps({"key": k, "val_loss": loss, "seconds": round(result.seconds, 1)}) + "\n")
                done[k] = loss
            print(f"seed {seed} stage {stage} {loss:.4f}" + (f" gap {previous - loss:+.4f}" if previous else ""),
                  flush=True)
            if prune is not None and previous is not None and previous - loss < prune:
                print(f"PRUNED seed {seed} at {stage}: gap {previous - loss:.4f} < {prune}", flush=True)
                return
            previous = loss


def show(cfg, seeds, heads, ffn, label: str) -> str:
    done = load_runs()
    losses = {}
    for stage in LADDER:
        v = [done.get(key(cfg, stage, s, heads, ffn)) for s in seeds]
        if all(x is not None for x in v):
            losses[stage] = v
    changed = {k: v for k, v in asdict(cfg).items() if getattr(BASE, k) != v}
    lines = [f"### {label}", "",
             f"Config: trial 26{' with ' + str(changed) if changed else ''}; N_HEADS {heads}, FFN {ffn} x d_model; "
             f"seeds {seeds} (initial weights; every seed trains on the same batches); "
             f"stage 09 predicted {predicted_seconds(cfg, ffn):.1f} s.", "",
             "| stage | mean | sd | worst | per seed |", "| --- | --- | --- | --- | --- |"]
    for stage, v in losses.items():
        lines.append(f"| {stage} | {statistics.fmean(v):.4f} | {statistics.stdev(v) if len(v) > 1 else 0:.4f} "
                     f"| {max(v):.4f} | {', '.join(f'{x:.4f}' for x in v)} |")
    if len(seeds) > 1:
        rows = [r for r in transitions({st: losses.get(st, []) for st in LADDER})]  # pairs with both stages
        lines += ["", "| transition | mean gap | sd | worst margin | gap / 3 sd | worst / 0.03 |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['t']} | {r['gap']:.4f} | {r['sd']:.4f} | {r['worst']:.4f} | {r['z']:.2f} | {r['w']:.2f} |"
                  for r in rows]
        if len(rows) == len(LADDER) - 1:
            score = min(r["score"] for r in rows)
            lines += ["", f"score (min over transitions of min(gap/3sd, worst/0.03)): {score:.2f}"
                      + (" — MEETS the goal" if score >= 1 else "")]
    else:
        lines += ["", "seed-0 gaps: " + ", ".join(
            f"{p}->{s} {losses[p][0] - losses[s][0]:+.4f}" for p, s in zip(LADDER, LADDER[1:])
            if p in losses and s in losses)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "show"])
    parser.add_argument("--set", nargs="*", default=[])
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=8)
    parser.add_argument("--stages", default="03-09")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--prune", type=float)
    parser.add_argument("--label", default="candidate")
    args = parser.parse_args()
    cfg = parse_set(args.set)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.mode == "run":
        run(cfg, [s.number for s in parse_stages(args.stages)], seeds, args.heads, args.ffn, args.prune)
    print(show(cfg, seeds, args.heads, args.ffn, args.label))
