"""One training loop for every stage: same data, same budget; only the architecture changes."""
import contextlib
import ctypes
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TextIO

import torch
import torch.nn.functional as F

from lil_transformy.bars import progress_bar
from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import DEVICE_ENV
from lil_transformy.tokens import TokenData


@dataclass(frozen=True)
class Config:
    """What a model is and how it is trained. SHARED below is the one budget every stage gets."""
    d_model: int = 64
    context: int = 32  # tokens a model sees at once
    batch_size: int = 32
    steps: int = 1130
    lr: float = 9.2e-3  # peak learning rate
    warmup_steps: int = 17  # linear warm-up, then cosine decay to 0 ("constant": no decay)
    schedule: str = "cosine"
    weight_decay: float = 0.175  # AdamW's decoupled decay
    decay: str = "all"  # which parameters decay: "all", or "matrices" (nanoGPT's: not biases, not LayerNorm)
    grad_clip: float = 1.0  # largest gradient norm per step (0: no clipping)
    beta2: float = 0.99  # AdamW's second-moment decay (beta1 is 0.9)
    init: str = "default"  # "default": PyTorch's; "gpt2": weights normal(0, 0.02), biases 0 (LayerNorm as PyTorch's)
    seed: int = 0  # the initial weights (every model, whatever its seed, trains on the same batches)
    device: str = "auto"  # auto = cuda, else mps, else cpu ($LIL_TRANSFORMY_DEVICE overrides auto)
    eval_every: int = 100
    eval_stride: int = 16  # the held-out loss scores each window's last eval_stride tokens (see evaluate)
    vocab_size: int = 0  # set from the data


SHARED = Config()
PROBE_TOKENS = 8192  # the learning curve's probe: the first held-out tokens, scored every eval_every steps


@dataclass
class TrainResult:
    model: torch.nn.Module
    config: Config
    val_loss: float | None  # THE held-out loss: mean next-token loss on the whole held-out split (None: not scored)
    seconds: float
    history: dict = field(default_factory=dict)  # step, train_loss (one batch), probe_loss (first PROBE_TOKENS held out)

    @property
    def perplexity(self) -> float:
        assert self.val_loss is not None, "not scored (train(score=False)): no perplexity"
        return math.exp(self.val_loss)


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        requested = os.environ.get(DEVICE_ENV, "auto")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(requested)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt(3) parameters


def keep_freed_memory() -> None:
    """Keep freed memory in this process instead of handing it back to the OS (glibc's malloc).

    By default glibc serves large blocks with mmap and trims the heap's free top, so the big tensors of each
    step (the logits: 14 MB for stage 09) go back to the OS and are faulted in again, zeroed, on the next:
    about 1.15x slower training, for bit-identical results. The grading child gets the same through its
    environment (sandbox.child_environment). Elsewhere (macOS, musl) there is nothing to do.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # the largest glibc accepts: blocks up to 32 MB come from the heap
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)  # and the heap is not trimmed after each step


def learning_rate(step: int, cfg: Config) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def random_windows(ids, cfg: Config, generator: torch.Generator):
    """A batch of random windows: inputs (batch, context) and the next tokens (batch, context).

    ids: a tensor, or a numpy array (the full preset's memory-mapped uint16 corpus: only the batch is read).
    """
    starts = torch.randint(len(ids) - cfg.context - 1, (cfg.batch_size,), generator=generator)
    windows = torch.stack([torch.as_tensor(ids[s: s + cfg.context + 1], dtype=torch.long)
                           for s in starts.tolist()])  # (batch, context + 1)
    return windows[:, :-1], windows[:, 1:]


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the logits at each position against the token that follows it: the mean, or ("none") each
    position's, (batch, seq)."""
    batch, seq = targets.shape
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[:2] != (batch, seq):
        found = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise LilTransformyError(f"the model should return logits of shape (batch, seq, vocab) = "
                                 f"({batch}, {seq}, vocab), but returned {found}")
    losses = F.cross_entropy(logits.reshape(batch * seq, -1), targets.reshape(-1), reduction=reduction)
    return losses.view(batch, seq) if reduction == "none" else losses


def strided_windows(ids: torch.Tensor, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out loss's windows, (n_windows, context + 1): inputs and next tokens, starting every eval_stride
    tokens; and which predictions each scores, (n_windows, context): its last eval_stride (the first: all)."""
    if not 1 <= cfg.eval_stride <= cfg.context:
        raise LilTransformyError(f"eval_stride must be 1 to context ({cfg.context}), not {cfg.eval_stride}")
    starts = torch.arange(0, len(ids) - cfg.context, cfg.eval_stride)  # (n_windows,)
    windows = ids[starts[:, None] + torch.arange(cfg.context + 1)]  # (n_windows, context + 1)
    scored = torch.zeros(len(windows), cfg.context, dtype=torch.bool)  # (n_windows, context)
    scored[:, cfg.context - cfg.eval_stride:] = True
    scored[0] = True
    return windows, scored


@torch.no_grad()
def evaluate(model, ids: torch.Tensor, cfg: Config, max_tokens: int | None = None) -> float:
    """Mean next-token loss over the held-out tokens, each scored once, from a window that is mostly history.

    Windows of cfg.context tokens start every cfg.eval_stride tokens; a window scores only its last eval_stride
    predictions (the first window all of its own), so every token after the first window is predicted from at least
    context - eval_stride tokens before it, as in generation once the window is full. Scoring every position of
    non-overlapping windows would average in predictions made from 0, 1, 2... tokens, where no model can use context:
    it thins what each stage after the bigram adds (the standard strided evaluation of a fixed-context model).
    model: a torch module, or any function of (batch, seq) ids -> logits (the grader's remote model).
    """
    is_module = isinstance(model, torch.nn.Module)
    if is_module:
        model.eval()
    device = next(model.parameters()).device if is_module else torch.device("cpu")
    windows, scored = strided_windows(ids[: max_tokens + 1] if max_tokens else ids, cfg)
    total = 0.0
    for first in range(0, len(windows), cfg.batch_size):
        batch = windows[first: first + cfg.batch_size].to(device)
        losses = next_token_loss(model(batch[:, :-1]), batch[:, 1:], reduction="none")  # (batch, context)
        total += losses[scored[first: first + cfg.batch_size].to(device)].sum().item()
    if is_module:
        model.train()
    return total / int(scored.sum())


@torch.no_grad()
def gpt2_init(model: torch.nn.Module) -> None:
    """GPT-2's initialisation: every Linear and Embedding weight normal(0, 0.02), every Linear bias 0."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)


def parameter_groups(params, cfg: Config) -> list[dict]:
    """AdamW's groups: every parameter decays, or ("matrices") only those of 2 or more dimensions.

    params: a model, or its parameters in the order of model.parameters() (the grading judge holds only those).
    """
    params = list(params.parameters() if isinstance(params, torch.nn.Module) else params)
    if cfg.decay == "all":
        return [{"params": params, "weight_decay": cfg.weight_decay}]
    if cfg.decay != "matrices":
        raise LilTransformyError(f"unknown decay {cfg.decay!r}: use 'all' or 'matrices'")
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def new_optimizer(params, cfg: Config) -> torch.optim.AdamW:
    """The shared budget's AdamW over `params` (a model, or its parameters in order). foreach: every parameter in
    one call per operation, as on a GPU: on the CPU, the very same numbers (bit for bit) with less Python per step."""
    return torch.optim.AdamW(parameter_groups(params, cfg), lr=cfg.lr, betas=(0.9, cfg.beta2), foreach=True)


def new_model(model_class, cfg: Config, device: torch.device):
    """`model_class(cfg)` seeded with cfg.seed and initialised as cfg.init, on `device`, and its AdamW."""
    torch.manual_seed(cfg.seed)
    model = model_class(cfg)  # PyTorch's default initialisation, as any textbook
    if cfg.init == "gpt2":
        gpt2_init(model)
    elif cfg.init != "default":
        raise LilTransformyError(f"unknown init {cfg.init!r}: use 'default' or 'gpt2'")
    model.to(device)
    return model, new_optimizer(model, cfg)


def training_batches(ids, cfg: Config):
    """The cfg.steps batches of training, in order: (inputs, next tokens), (batch, context) each.

    The same batches for every stage and every seed: a check trains a student's model on these batches, so the
    seed-to-seed spread a check must allow for is that of the initial weights alone.
    """
    batches = torch.Generator().manual_seed(0)
    for _ in range(cfg.steps):
        yield random_windows(ids, cfg, batches)


def finite_loss(loss: torch.Tensor, step: int) -> torch.Tensor:
    if not torch.isfinite(loss):
        raise LilTransformyError(f"the loss became {loss.item()} at step {step}: look for a division by "
                                 f"zero, a log of 0, or a mask that hides every position")
    return loss


def update(optimizer, params: list, step: int, cfg: Config) -> None:
    """The shared budget's update, once each parameter's .grad holds the batch's gradient: the step's learning
    rate (warm-up, then cosine), the gradients clipped to a norm of cfg.grad_clip, AdamW's step. The one update:
    train() and the grading judge (grading/trainer.py) both take it."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, cfg)
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
    optimizer.step()


def training_step(model, optimizer, x: torch.Tensor, y: torch.Tensor, step: int, cfg: Config,
                  precision: contextlib.AbstractContextManager | None = None) -> torch.Tensor:
    """One optimizer step on inputs x and next tokens y, (batch, context) each; returns the batch's loss.

    precision: the context the forward pass runs in (the full preset's bf16 autocast on a GPU).
    """
    with precision or contextlib.nullcontext():
        loss = finite_loss(next_token_loss(model(x), y), step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    update(optimizer, list(model.parameters()), step, cfg)
    return loss


def train(model_class, data: TokenData, cfg: Config = SHARED, progress: bool | TextIO = True,
          label: str = "training", score: bool = True) -> TrainResult:
    """Build `model_class(cfg)`, train it for cfg.steps on data.train, score it on data.heldout.

    progress: a progress bar (True: on stderr; or the stream to draw it on). score=False skips the probe curve
    and the held-out loss: for the loss check, which scores the model itself.
    """
    keep_freed_memory()
    cfg = replace(cfg, vocab_size=data.vocab.size)
    device = pick_device(cfg.device)
    model, optimizer = new_model(model_class, cfg, device)
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "probe_loss": []}
    start = time.perf_counter()
    bar = progress_bar(training_batches(data.train, cfg), total=cfg.steps, desc=label, disable=not progress,
                       leave=False, file=None if isinstance(progress, bool) else progress)
    for step, (x, y) in enumerate(bar):
        loss = training_step(model, optimizer, x.to(device), y.to(device), step, cfg)
        if score and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            history["step"].append(step + 1)
            history["train_loss"].append(loss.item())
            history["probe_loss"].append(evaluate(model, data.heldout, cfg, max_tokens=PROBE_TOKENS))
            bar.set_postfix(loss=f"{loss.item():.3f}", probe=f"{history['probe_loss'][-1]:.3f}", refresh=False)
    val_loss = evaluate(model, data.heldout, cfg) if score else None
    return TrainResult(model, cfg, val_loss, time.perf_counter() - start, history)


# Fields added after the reference report: listed only when set, so a report made before them still matches.
LATER_FIELDS = {"beta2": 0.99, "init": "default", "decay": "all"}


def config_dict(cfg: Config) -> dict:
    return {k: v for k, v in asdict(cfg).items()
            if k not in ("seed", "device", "vocab_size") and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
