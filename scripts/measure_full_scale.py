"""The full preset's throughput on this machine, for reports/full/README.md's projection (no GPU needed).

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/measure_full_scale.py [--steps 6] [--out reports/full]

1. Data preparation: GPT-2 ids of the shipped slice (~244 k tokens) with the course's tokenizer
   (tokens.gpt2_stream, which the full preset uses too), best of 3; then the whole preparation (datasets, tokenizing,
   counting, vocabulary, memmaps) of the slice written in the hub's format.
2. Training: stage 09 at FULL's size (d_model 128, context 256, batch 64), `--steps` timed steps after 2
   untimed ones, and one scoring pass over held-out windows; parameters of every stage at FULL's size.
Writes OUT/throughput.json.
"""
import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from lil_transformy import data, tokens
from lil_transformy.full.data import load_full_data
from lil_transformy.full.scale import FULL
from lil_transformy.stages import DETOURS, STAGES, model_class
from lil_transformy.train import evaluate, new_model, random_windows, training_step


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def count_parameters(number: str, cfg) -> int:
    return sum(p.numel() for p in model_class(number, "solutions")(cfg).parameters())


def hub_format_copy(folder: Path) -> str:
    """The shipped slice as a dataset folder: train.jsonl of its stories, validation.jsonl of its paragraphs."""
    paragraphs = [p for p in (data.BUNDLED / data.VALIDATION_FILE).read_text().split("\n\n") if p.strip()]
    for name, rows in (("train", data.read_stories(data.BUNDLED / data.TRAIN_FILE)), ("validation", paragraphs)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default="reports/full")
    args = parser.parse_args()
    corpus = data.load_corpus(data.BUNDLED)
    documents = corpus.train + corpus.heldout
    n_tokens = len(tokens.gpt2_stream(documents))
    tokenizing = best_of(3, lambda: tokens.gpt2_stream(documents))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LIL_TRANSFORMY_CACHE"] = tmp
        start = time.perf_counter()
        full = load_full_data(hub_format_copy(Path(tmp)))
        prepare = time.perf_counter() - start
        cfg = replace(FULL, vocab_size=full.vocab.size, device="cpu")
        model, optimizer = new_model(model_class("09", "solutions"), cfg, torch.device("cpu"))
        batches = torch.Generator().manual_seed(0)
        for step in range(2 + args.steps):
            if step == 2:
                start = time.perf_counter()
            training_step(model, optimizer, *random_windows(full.train, cfg, batches), step, cfg)
        train = (time.perf_counter() - start) / args.steps
        start = time.perf_counter()
        evaluate(model, full.heldout, cfg, max_tokens=64 * cfg.eval_stride)  # 64 windows, as 64 * 128 tokens scored
        scoring = (time.perf_counter() - start) / (64 * cfg.eval_stride)
    params = {s.number: {vocab: count_parameters(s.number, replace(FULL, vocab_size=vocab))
                         for vocab in (4096, full.vocab.size)} for s in STAGES[1:] + DETOURS}  # the seed's and ours
    result = {"cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(), "load_average": os.getloadavg(),
              "slice_gpt2_tokens": n_tokens, "tokens_per_s": n_tokens / tokenizing,
              "prepare_seconds": prepare,
              "prepare_tokens_per_s": n_tokens / prepare, "stage09_step_seconds": train,
              "stage09_train_tokens_per_s": cfg.batch_size * cfg.context / train,
              "stage09_scored_tokens_per_s": 1 / scoring, "params": params}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
