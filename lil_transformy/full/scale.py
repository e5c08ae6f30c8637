"""The seed's own scale: one stage on all of TinyStories (d_model 128, context 256) on a GPU, a Mac or a CPU.

The course trains on a 1 MB slice with SHARED (train.py), and nothing here changes that path. FULL is
the preset for the full corpus, one budget for every stage. It has a loop of its own, built from
train.py's pieces (new_model, training_step, evaluate), because the full run needs what train() must
not grow: batches read from a memory-mapped corpus, bf16 autocast, torch.compile, and checkpoints, so a
stage stopped half way resumes where it stopped.

Determinism. Initial weights (seeded, made on the CPU) and batches (a CPU generator, seed 0) are the
same on every device. On a CPU a run is bit-identical to itself, and a stage interrupted and resumed
from its checkpoint ends with the same weights, bit for bit, as one that ran through (a test checks).
On CUDA (bf16 autocast, non-deterministic scatter-adds in embedding gradients) and MPS (other kernels)
the arithmetic differs: runs agree closely, not bit for bit, across devices or with each other.
"""
import contextlib
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from lil_transformy.errors import LilTransformyError
from lil_transformy.full.data import FullData
from lil_transformy.train import (
    PROBE_TOKENS,
    Config,
    TrainResult,
    evaluate,
    new_model,
    pick_device,
    random_windows,
    training_step,
)

# One budget for every stage: 20,000 steps of 64 windows of 256 tokens = 328 M tokens (0.7 of an epoch),
# sized so the ten models fit in about an hour on one current GPU (a projection: reports/full/README.md).
FULL = Config(d_model=128, context=256, batch_size=64, steps=20_000, lr=3e-3, warmup_steps=300,
              weight_decay=0.1, eval_every=500, eval_stride=128)
CHECKPOINT_EVERY = 1000  # steps between checkpoints: at most a few minutes of a stage lost to an interruption


def precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for the forward pass on CUDA: matmuls in bf16, the loss and softmax in fp32 (autocast's
    own lists), weights and AdamW in fp32. MPS and CPU train in fp32. The held-out loss is scored in fp32 everywhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_full(model_class, data: FullData, cfg: Config = FULL, checkpoint: Path | None = None,
               compile_model: bool = False, checkpoint_every: int = CHECKPOINT_EVERY, label: str = "training",
               progress: bool = True) -> TrainResult:
    """Train `model_class(cfg)` for cfg.steps on the memory-mapped corpus, resuming from `checkpoint` if it exists.

    The checkpoint is written every `checkpoint_every` steps and at the end; a finished one is only scored again.
    """
    cfg = replace(cfg, vocab_size=data.vocab.size)
    device = pick_device(cfg.device)
    model, optimizer = new_model(model_class, cfg, device)
    batches = torch.Generator().manual_seed(0)  # the same batches for every stage, as train()
    state: dict[str, Any] = {"step": 0, "seconds": 0.0, "history": {"step": [], "train_loss": [], "probe_loss": []}}
    made_with = {**asdict(cfg), "data": data.fingerprint}  # a checkpoint resumes only the run it was made by
    if checkpoint and checkpoint.exists():
        state = resume(checkpoint, made_with, model, optimizer, batches)
    forward = torch.compile(model) if compile_model else model  # shares the weights: checkpoints save `model`
    tokens_per_step = cfg.batch_size * cfg.context
    bar = tqdm(total=cfg.steps * tokens_per_step, initial=state["step"] * tokens_per_step, desc=label, unit="tok",
               unit_scale=True, disable=not progress)  # tokens/s and time left
    started = time.perf_counter() - state["seconds"]
    for step in range(state["step"], cfg.steps):
        x, y = random_windows(data.train, cfg, batches)  # (batch, context) each, int64, read from the memmap
        loss = training_step(forward, optimizer, x.to(device), y.to(device), step, cfg, precision(device))
        bar.update(tokens_per_step)
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            history = state["history"]
            history["step"].append(step + 1)
            history["train_loss"].append(loss.item())
            history["probe_loss"].append(evaluate(model, data.heldout, cfg, max_tokens=PROBE_TOKENS))
            bar.set_postfix(loss=f"{loss.item():.3f}", probe=f"{history['probe_loss'][-1]:.3f}")
        if checkpoint and ((step + 1) % checkpoint_every == 0 or step + 1 == cfg.steps):
            state.update(step=step + 1, seconds=time.perf_counter() - started)
            save(checkpoint, made_with, model, optimizer, batches, state)
    bar.close()
    seconds = time.perf_counter() - started
    return TrainResult(model, cfg, evaluate(model, data.heldout, cfg), seconds, state["history"])


def save(path: Path, made_with: dict, model, optimizer, batches: torch.Generator, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"made_with": made_with, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "batches": batches.get_state(), **state}, tmp)
    tmp.replace(path)  # an interruption while saving leaves the previous checkpoint whole


def resume(path: Path, made_with: dict, model, optimizer, batches: torch.Generator) -> dict:
    """Load weights, AdamW's moments and the batch generator: training continues as if never stopped."""
    saved = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and numbers: runs no code
    if saved["made_with"] != made_with:
        raise LilTransformyError(f"the checkpoint {path} was made with another configuration or data: delete it "
                                 f"to start this stage again, or run with the configuration it was made with")
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    batches.set_state(saved["batches"])
    return {key: saved[key] for key in ("step", "seconds", "history")}
