"""One training loop for every stage: same data, same budget; only the architecture changes."""
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .errors import LilTransformyError
from .paths import DEVICE_ENV
from .tokens import TokenData


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
    weight_decay: float = 0.2  # AdamW's decoupled decay, on every parameter
    grad_clip: float = 1.0  # largest gradient norm per step (0: no clipping)
    beta2: float = 0.99  # AdamW's second-moment decay (beta1 is 0.9)
    init: str = "default"  # "default": PyTorch's; "gpt2": weights normal(0, 0.02), biases 0 (LayerNorm as PyTorch's)
    seed: int = 0  # the initial weights (every model, whatever its seed, trains on the same batches)
    device: str = "auto"  # auto = cuda, else mps, else cpu ($LIL_TRANSFORMY_DEVICE overrides auto)
    eval_every: int = 100
    vocab_size: int = 0  # set from the data


SHARED = Config()
PROBE_TOKENS = 8192  # the learning curve's probe: the first held-out tokens, scored every eval_every steps


@dataclass
class TrainResult:
    model: torch.nn.Module
    config: Config
    val_loss: float  # THE held-out loss: mean next-token loss on the whole held-out split
    seconds: float
    history: dict = field(default_factory=dict)  # step, train_loss (one batch), probe_loss (first PROBE_TOKENS held out)

    @property
    def perplexity(self) -> float:
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


def learning_rate(step: int, cfg: Config) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def random_windows(ids: torch.Tensor, cfg: Config, generator: torch.Generator):
    """A batch of random windows: inputs (batch, context) and the next tokens (batch, context)."""
    starts = torch.randint(len(ids) - cfg.context - 1, (cfg.batch_size,), generator=generator)
    windows = torch.stack([ids[s: s + cfg.context + 1] for s in starts.tolist()])  # (batch, context + 1)
    return windows[:, :-1], windows[:, 1:]


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits at each position against the token that follows it."""
    batch, seq = targets.shape
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[:2] != (batch, seq):
        found = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise LilTransformyError(f"the model should return logits of shape (batch, seq, vocab) = "
                                 f"({batch}, {seq}, vocab), but returned {found}")
    return F.cross_entropy(logits.reshape(batch * seq, -1), targets.reshape(-1))


@torch.no_grad()
def evaluate(model, ids: torch.Tensor, cfg: Config, max_tokens: int | None = None) -> float:
    """Mean next-token loss over consecutive, non-overlapping windows of the held-out tokens.

    model: a torch module, or any function of (batch, seq) ids -> logits (the grader's remote model).
    """
    is_module = isinstance(model, torch.nn.Module)
    if is_module:
        model.eval()
    device = next(model.parameters()).device if is_module else torch.device("cpu")
    ids = ids[: max_tokens + 1] if max_tokens else ids
    n_windows = (len(ids) - 1) // cfg.context
    inputs = ids[: n_windows * cfg.context].view(n_windows, cfg.context)
    targets = ids[1: n_windows * cfg.context + 1].view(n_windows, cfg.context)
    total = 0.0
    for first in range(0, n_windows, cfg.batch_size):
        x, y = inputs[first: first + cfg.batch_size].to(device), targets[first: first + cfg.batch_size].to(device)
        total += next_token_loss(model(x), y).item() * len(x)
    if is_module:
        model.train()
    return total / n_windows


@torch.no_grad()
def gpt2_init(model: torch.nn.Module) -> None:
    """GPT-2's initialisation: every Linear and Embedding weight normal(0, 0.02), every Linear bias 0."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)


def train(model_class, data: TokenData, cfg: Config = SHARED, progress: bool = True,
          label: str = "training") -> TrainResult:
    """Build `model_class(cfg)`, train it for cfg.steps on data.train, score it on data.heldout."""
    cfg = replace(cfg, vocab_size=data.vocab.size)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = model_class(cfg)  # PyTorch's default initialisation, as any textbook
    if cfg.init == "gpt2":
        gpt2_init(model)
    elif cfg.init != "default":
        raise LilTransformyError(f"unknown init {cfg.init!r}: use 'default' or 'gpt2'")
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2),
                                  weight_decay=cfg.weight_decay)
    # The same batches for every stage and every seed: a check trains a student's model on these batches, so the
    # seed-to-seed spread a check must allow for is that of the initial weights alone.
    batches = torch.Generator().manual_seed(0)
    history = {"step": [], "train_loss": [], "probe_loss": []}
    start = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=label, disable=not progress, leave=False)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        x, y = random_windows(data.train, cfg, batches)
        loss = next_token_loss(model(x.to(device)), y.to(device))
        if not torch.isfinite(loss):
            raise LilTransformyError(f"the loss became {loss.item()} at step {step}: look for a division by "
                                     f"zero, a log of 0, or a mask that hides every position")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            history["step"].append(step + 1)
            history["train_loss"].append(loss.item())
            history["probe_loss"].append(evaluate(model, data.heldout, cfg, max_tokens=PROBE_TOKENS))
            bar.set_postfix(loss=f"{loss.item():.3f}", probe=f"{history['probe_loss'][-1]:.3f}")
    val_loss = evaluate(model, data.heldout, cfg)
    return TrainResult(model, cfg, val_loss, time.perf_counter() - start, history)


# Fields added after the reference report: listed only when set, so a report made before them still matches.
LATER_FIELDS = {"beta2": 0.99, "init": "default"}


def config_dict(cfg: Config) -> dict:
    return {k: v for k, v in asdict(cfg).items()
            if k not in ("seed", "device", "vocab_size") and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
