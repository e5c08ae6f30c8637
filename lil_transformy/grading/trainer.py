"""The graded training, driven by the judge: the student's model only answers the questions the judge asks.

The judge (this module's `judge_trains`, in the pytest process that never imports the student's code) holds
everything that makes the shared budget the budget: the weights between steps, the batches and their order,
AdamW and its state, the schedule, the clipping and the number of steps, all from train.py (the same
`training_batches`, `new_optimizer` and `update` that train() takes). Each step it sends the weights and the batch
to a child holding the student's model and gets back the loss and the gradients (`gradients`, run there), then
takes the step itself. Patching the library, the optimiser or torch in the child changes nothing: no training
runs there.

What the child says is checked, at steps it cannot predict (the judge's secret generator): a fresh child, which
has seen no other question, must give the same gradients (state kept between steps shows), and the judge's own
cross-entropy of the logits two more fresh children return for the weights moved by +-EPSILON along a direction
mixing the reported gradient and a random one must change as the gradient says (a gradient that is not the one of
the model's own forward, on that batch, at those weights, shows). A mismatch fails the loss check.
"""
import secrets
from dataclasses import replace
from typing import Callable, ContextManager

import torch

from lil_transformy.errors import LilTransformyError
from lil_transformy.train import (
    SHARED,
    Config,
    finite_loss,
    new_model,
    new_optimizer,
    next_token_loss,
    training_batches,
    update,
)

CHECKED_STEPS = 2  # steps whose gradients the judge checks, drawn in secret
EPSILON = 1e-3  # the finite differences' step along a unit direction in weight space
SAME_GRADIENT = 1e-3  # a fresh child's gradient may differ from the reported one by this, relative to its norm
SLOPE_TOLERANCE = 0.05  # the finite difference may differ from the reported slope by this times the gradient's norm
SAME_LOSS = 1e-3  # nats: the reported loss against the judge's own, from the logits at +-EPSILON
FORGED = "the gradients your model reported during training are not those of its own forward pass"


# ------------------------------------------------------------------------------------------------- child side
def initial(model_class, vocab_size: int) -> dict:
    """The model's initial weights, as train() makes them (seed cfg.seed): {"state": its state dict, "parameters":
    the names of model.parameters() in order, "aliases": {a state key: the parameter it is (tied weights)}}."""
    model, _ = new_model(model_class, replace(SHARED, vocab_size=vocab_size), torch.device("cpu"))
    names = {id(p): name for name, p in model.named_parameters()}
    return {"state": model.state_dict(), "parameters": list(names.values()),
            "aliases": {key: names[id(t)] for key, t in model.state_dict(keep_vars=True).items()
                        if id(t) in names and key != names[id(t)]}}


def gradients(model, state: dict, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The batch's loss and each parameter's gradient (none: it played no part), at the weights `state`."""
    model.load_state_dict(state)
    model.train()
    model.zero_grad(set_to_none=True)
    loss = next_token_loss(model(x), y)
    loss.backward()
    return {"loss": loss.item(), "gradients": {name: p.grad for name, p in model.named_parameters()
                                              if p.grad is not None}}


def logits(model, state: dict, x: torch.Tensor) -> torch.Tensor:
    """The logits at the weights `state`, from the very forward pass `gradients` differentiates."""
    model.load_state_dict(state)
    model.train()
    with torch.enable_grad():
        return model(x)


# what the judge may ask (remote.answer)
ANSWERS: dict[str, Callable[..., object]] = {"initial": initial, "gradients": gradients, "logits": logits}


# ------------------------------------------------------------------------------------------------- judge side
class Weights:
    """The judge's weights: the parameters it trains (leaf tensors, in the order of model.parameters()) and the
    rest of the state dict (buffers), as the child's initial answer gave them."""

    def __init__(self, start: dict):
        self.names = [str(name) for name in start["parameters"]]
        self.aliases = {str(key): str(name) for key, name in start["aliases"].items()}
        self.fixed = {key: t for key, t in start["state"].items() if key not in self.names and key not in self.aliases}
        self.params = [start["state"][name].clone().requires_grad_() for name in self.names]

    def state(self, params: list[torch.Tensor] | None = None) -> dict:
        """The state dict to send: these parameters (default: the judge's own) and the buffers."""
        values = dict(zip(self.names, [p.detach() for p in params or self.params]))
        return {**self.fixed, **values, **{key: values[name] for key, name in self.aliases.items()}}

    def flat(self, grads: dict) -> torch.Tensor:
        """The reported gradients as one vector over every parameter (0 where none was reported)."""
        unknown = set(grads) - set(self.names)
        if unknown:
            raise LilTransformyError(f"{FORGED}: gradients for {sorted(unknown)[:3]}, which are not its parameters")
        parts = []
        for name, p in zip(self.names, self.params):
            g = grads.get(name)
            if g is not None and (not isinstance(g, torch.Tensor) or g.shape != p.shape):
                raise LilTransformyError(f"{FORGED}: the gradient of {name} is not a tensor of its shape "
                                         f"{tuple(p.shape)}")
            parts.append((torch.zeros_like(p) if g is None else g.float()).detach().reshape(-1))
        return torch.cat(parts)

    def moved(self, direction: torch.Tensor, by: float) -> dict:
        """The state dict of the judge's weights moved by `by` along the flat `direction`."""
        sizes = [p.numel() for p in self.params]
        steps = direction.split(sizes)
        return self.state([p.detach() + by * step.view_as(p) for p, step in zip(self.params, steps)])


def judge_trains(fresh_child: Callable[[], ContextManager], train_ids: torch.Tensor, vocab_size: int,
                 cfg: Config = SHARED) -> dict:
    """The student's model trained with the shared budget by the judge: {"weights": the trained state dict,
    "steps": ..., "checked": the steps whose gradients were checked}.

    fresh_child(): a context manager giving (a remote, a handle on the model class) in a fresh child.
    """
    cfg = replace(cfg, vocab_size=vocab_size)
    checked = sorted(secrets.SystemRandom().sample(range(cfg.steps), min(CHECKED_STEPS, cfg.steps)))
    with fresh_child() as (remote, model_class):
        weights = Weights(remote.ask("trainer", "initial", model_class, vocab_size))  # its first answer
        optimizer = new_optimizer(weights.params, cfg)
        model = model_class(cfg)
        for step, (x, y) in enumerate(training_batches(train_ids, cfg)):
            reply = remote.ask("trainer", "gradients", model, weights.state(), x, y)
            loss, grads = reply["loss"], reply["gradients"]
            finite_loss(torch.tensor(float(loss)), step)
            flat = weights.flat(grads)
            if step in checked:
                check_gradients(fresh_child, weights, x, y, float(loss), flat, cfg)
            for name, p in zip(weights.names, weights.params):
                p.grad = grads[name].float() if name in grads else None  # none: AdamW leaves it as train() does
            update(optimizer, weights.params, step, cfg)
    return {"weights": weights.state(), "steps": cfg.steps, "checked": checked}


def check_gradients(fresh_child, weights: Weights, x, y, loss: float, reported: torch.Tensor, cfg: Config) -> None:
    """Raise LilTransformyError unless the reported gradient (flat) and loss are those of the model's own forward at
    these weights on this batch: a fresh child must report the same, and the judge's own finite differences agree."""
    with fresh_child() as (remote, model_class):
        again = remote.ask("trainer", "gradients", model_class(cfg), weights.state(), x, y)
    fresh = weights.flat(again["gradients"])
    if (fresh - reported).norm() > SAME_GRADIENT * fresh.norm() + 1e-7 or abs(float(again["loss"]) - loss) > SAME_LOSS:
        raise LilTransformyError(
            f"{FORGED}: a fresh process given the same weights and batch reports a gradient {relative(reported, fresh)} "
            f"away (loss {float(again['loss']):.4f}, not {loss:.4f}). Does your model keep something between calls, or "
            f"change its own weights while training? The judge trains it: forward must only compute the logits")
    secret = torch.Generator().manual_seed(secrets.randbits(63))
    direction = torch.randn(len(reported), generator=secret)
    direction = direction / direction.norm() + (reported / reported.norm() if reported.norm() > 0 else 0)
    direction /= direction.norm()
    ends = []
    for by in (EPSILON, -EPSILON):  # each in a fresh child: neither knows what the other was asked
        with fresh_child() as (remote, model_class):
            ends.append(float(next_token_loss(remote.ask("trainer", "logits", model_class(cfg), weights.moved(
                direction, by), x).double(), y)))
    slope, told = (ends[0] - ends[1]) / (2 * EPSILON), float(reported @ direction)
    if abs(slope - told) > SLOPE_TOLERANCE * reported.norm() + 1e-4 or abs(sum(ends) / 2 - loss) > SAME_LOSS:
        raise LilTransformyError(
            f"{FORGED}: along a direction the judge chose, the loss it computes from your model's logits changes by "
            f"{slope:.4f} per unit, and your gradient says {told:.4f} (loss {sum(ends) / 2:.4f} there, reported "
            f"{loss:.4f}). The judge trains your model: forward must only compute the logits, and the gradients "
            f"must be those of that loss")


def relative(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"{float((a - b).norm() / max(float(b.norm()), 1e-12)):.2%}"

