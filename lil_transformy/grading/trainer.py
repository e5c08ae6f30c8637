"""The graded training, driven by the judge: the student's model only answers the questions the judge asks.

The judge (`judge_trains`, in the pytest process that never imports the student's code) holds everything that makes
the shared budget the budget: the weights between steps, the batches and their order, AdamW and its state, the
schedule, the clipping and the number of steps, all from train.py (the same `training_batches`, `new_optimizer` and
`update` that train() takes). Each step it writes its weights into a file of the child's folder and asks the child
holding the student's model for the batch's loss (`gradients`, run there), which writes the gradients into another;
then the judge takes the step itself. Patching the library, the optimiser or torch in the child changes nothing: no
training runs there, and what it writes into the weights file is overwritten before the next question.

What the child says is checked at a step it cannot predict (the judge's secret draw), once training is over: a fresh
child, which has seen no other question, must give the same loss and gradients (state kept between steps shows),
and the judge's own cross-entropy of the logits two more fresh children return for the weights moved by +-EPSILON
along a direction mixing the reported gradient and a random one must change as the gradient says (a gradient that
is not that of the model's own forward, on that batch, at those weights, shows). A mismatch fails the loss check.
Those two children then hold the trained weights for scoring: the check costs one child more than scoring alone, and
the three start once the model has answered a step, loading torch and building the model while the training runs.
"""
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from lil_transformy.errors import LilTransformyError
from lil_transformy.stages import model_class
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

WEIGHTS, GRADIENTS = "weights.f32", "gradients.f32"  # in the child's folder: the judge's weights, the child's answer
EPSILON = 1e-3  # the finite differences' step along a unit direction in weight space
SAME_GRADIENT = 1e-3  # a fresh child's gradient may differ from the reported one by this, relative to its norm
SLOPE_TOLERANCE = 0.05  # the finite difference may differ from the reported slope by this times the gradient's norm
SAME_LOSS = 1e-3  # nats: the reported loss against the judge's own, from the logits at +-EPSILON
FORGED = "the gradients your model reported during training are not those of its own forward pass"


# ------------------------------------------------------------------------------------------------- child side
def initial(folder: str, number: str, vocab_size: int) -> dict:
    """Stage `number`'s model from the student's modules in `folder`, with its initial weights as train() makes them
    (seed cfg.seed): {"model": it (a handle for the judge), "state": its state dict, "parameters": the names of
    model.parameters() in order, "aliases": {a state key: the parameter it is (tied weights)}}."""
    model, _ = new_model(model_class(number, folder), replace(SHARED, vocab_size=vocab_size), torch.device("cpu"))
    names = {id(p): name for name, p in model.named_parameters()}
    return {"model": model, "state": model.state_dict(), "parameters": list(names.values()),
            "aliases": {key: names[id(t)] for key, t in model.state_dict(keep_vars=True).items()
                        if id(t) in names and key != names[id(t)]}}


def open_plain_file(path: Path, flags: int) -> int:
    """A descriptor of the regular file `path` itself: the child's folder is the child's, and the judge reads and
    writes there too, so never through a link it put there, never blocking on a pipe it made."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LilTransformyError(f"{path.name} is not a plain file")
    return fd


def read_floats(path: Path, into: torch.Tensor) -> None:
    """Fill the float32 tensor `into` from the file (written in place each step: no new pages, one system call)."""
    fd = open_plain_file(path, os.O_RDONLY)
    try:
        if os.readv(fd, [into.numpy().data]) != into.numel() * 4 or os.read(fd, 1):
            raise LilTransformyError(f"{path.name} does not hold {into.numel():,} numbers")
    finally:
        os.close(fd)


def write_floats(path: Path, values: torch.Tensor) -> None:
    fd = open_plain_file(path, os.O_WRONLY | os.O_CREAT)
    try:
        data = values.numpy().data.cast("B")
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def load_weights(folder: str, model, names: list[str]) -> list[torch.Tensor]:
    """The judge's weights (folder/WEIGHTS: the parameters `names` one after the other) into the model's parameters."""
    params = dict(model.named_parameters())
    chosen = [params[name] for name in names]
    flat = torch.empty(sum(p.numel() for p in chosen))
    read_floats(Path(folder) / WEIGHTS, flat)
    with torch.no_grad():
        for p, value in zip(chosen, flat.split([p.numel() for p in chosen])):
            p.copy_(value.view_as(p))
    return chosen


def gradients(folder: str, model, names: list[str], step: int, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The batch's loss at the judge's weights, and each parameter's gradient written to folder/GRADIENTS (0 where
    none): {"loss": ..., "missing": the parameters that played no part (no gradient)}. torch's seed is the step's,
    wherever the question is asked: a model that draws random numbers draws the same ones at a step."""
    params = load_weights(folder, model, names)
    torch.manual_seed(step)
    model.train()
    model.zero_grad(set_to_none=True)
    loss = next_token_loss(model(x), y)
    loss.backward()
    write_floats(Path(folder) / GRADIENTS, torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1)
                                                      for p in params]).float())
    return {"loss": loss.item(), "missing": [name for name, p in zip(names, params) if p.grad is None]}


def logits(folder: str, model, names: list[str], step: int, x: torch.Tensor) -> torch.Tensor:
    """The logits at the judge's weights, from the very forward pass `gradients` differentiates."""
    load_weights(folder, model, names)
    torch.manual_seed(step)
    model.train()
    with torch.enable_grad():
        return model(x)


# what the judge may ask (remote.answer)
ANSWERS: dict[str, Callable[..., object]] = {"initial": initial, "gradients": gradients, "logits": logits}


# ------------------------------------------------------------------------------------------------- judge side
class RemoteModel:
    """A child holding the student's model, with the weights the judge gives it (its folder's WEIGHTS)."""

    def __init__(self, remote):
        """`remote` was asked for its `initial` model when it started (judge_trains): here the answer is read."""
        self.remote, self.folder = remote, Path(remote.child.cwd)
        remote.restart_budget()  # its own check starts now
        self.start = remote.reply()
        self.model = self.start["model"]

    def gradients(self, weights: "Weights", params: list[torch.Tensor], step: int, x, y) -> tuple[float, dict]:
        """The child's loss and gradients (by parameter name; None: it played no part) at `params`, on (x, y). The
        gradients are views of the judge's one buffer, refilled at the next question."""
        weights.write(params, self.folder / WEIGHTS)
        reply = self.remote.ask("trainer", "gradients", self.model, weights.names, step, x, y)
        try:
            read_floats(self.folder / GRADIENTS, weights.received)
        except (OSError, LilTransformyError) as error:
            raise LilTransformyError(f"{FORGED}: the gradients cannot be read ({error})") from None
        missing = {str(name) for name in reply["missing"]}
        grads = weights.received.split(weights.sizes)
        return float(reply["loss"]), {name: None if name in missing else g.view_as(p)
                                      for name, g, p in zip(weights.names, grads, weights.params)}

    def logits(self, weights: "Weights", params: list[torch.Tensor], step: int, x) -> torch.Tensor:
        weights.write(params, self.folder / WEIGHTS)
        return self.remote.ask("trainer", "logits", self.model, weights.names, step, x)


class Weights:
    """The judge's weights: the parameters it trains (leaf tensors, in the order of model.parameters()) and the
    rest of the state dict (buffers), as the training child's initial answer gave them."""

    def __init__(self, start: dict):
        self.names = [str(name) for name in start["parameters"]]
        self.aliases = {str(key): str(name) for key, name in start["aliases"].items()}
        self.fixed = {key: t for key, t in start["state"].items() if key not in self.names and key not in self.aliases}
        self.params = [start["state"][name].float().clone().requires_grad_() for name in self.names]
        self.sizes = [p.numel() for p in self.params]
        self.received = torch.empty(sum(self.sizes))  # the last gradients a child wrote

    def state(self) -> dict:
        """The trained state dict: the parameters, their aliases and the buffers."""
        values = {name: p.detach().clone() for name, p in zip(self.names, self.params)}
        return {**self.fixed, **values, **{key: values[name] for key, name in self.aliases.items()}}

    def write(self, params: list[torch.Tensor], path: Path) -> None:
        write_floats(path, torch.cat([p.detach().reshape(-1) for p in params]))

    def moved(self, params: list[torch.Tensor], direction: torch.Tensor, by: float) -> list[torch.Tensor]:
        """`params` moved by `by` along the flat `direction`."""
        return [p + by * step.view_as(p) for p, step in zip(params, direction.split(self.sizes))]


@dataclass
class Checked:
    """What the judge keeps of the step it checks once training is over."""
    step: int
    params: list[torch.Tensor]
    x: torch.Tensor
    y: torch.Tensor
    loss: float
    gradient: torch.Tensor  # flat, 0 where none


def flat(grads: dict, weights: Weights) -> torch.Tensor:
    return torch.cat([(torch.zeros_like(p) if grads[name] is None else grads[name]).reshape(-1)
                      for name, p in zip(weights.names, weights.params)])


def judge_trains(fresh_children: Callable[[int], list], number: str, train_ids: torch.Tensor, vocab_size: int,
                 secret: torch.Generator, cfg: Config = SHARED) -> tuple:
    """Stage `number`'s model trained with the shared budget by the judge, one step of it checked in secret: two
    models, in fresh children, holding the trained weights in eval mode, to be scored.

    fresh_children(n): n fresh children (remote.Remote) that have seen no question, started together and closed
    by the caller. The first answers the training's questions; once it has answered one, three more start and build
    the model while the training runs, then check a step (`check_gradients`), and two of them hold the trained
    weights. secret: the judge's random choices (checking.judge_generator): the step it checks, and how.
    """
    cfg = replace(cfg, vocab_size=vocab_size)
    chosen = int(torch.randint(cfg.steps, (1,), generator=secret))
    [remote] = fresh_children(1)
    remote.send("trainer", "initial", number, vocab_size)
    child = RemoteModel(remote)
    weights = Weights(child.start)
    optimizer = new_optimizer(weights.params, cfg)
    checkers: list = []
    for step, (x, y) in enumerate(training_batches(train_ids, cfg)):
        loss, grads = child.gradients(weights, weights.params, step, x, y)
        finite_loss(torch.tensor(loss), step)
        if not checkers:  # the model trains: the three that check it start now (not for a model that cannot)
            checkers = fresh_children(3)
            for checker in checkers:
                checker.send("trainer", "initial", number, vocab_size)
        if step == chosen:
            checked = Checked(step, [p.detach().clone() for p in weights.params], x, y, loss, flat(grads, weights))
        for p, name in zip(weights.params, weights.names):
            p.grad = grads[name]  # None: AdamW leaves it as train() does
        update(optimizer, weights.params, step, cfg)
    again, plus, minus = (RemoteModel(checker) for checker in checkers)
    check_gradients(weights, checked, again, plus, minus, secret)
    trained = weights.state()
    for scorer in (plus, minus):  # each has answered one question of the check, at other weights
        scorer.model.load_state_dict(trained)
    return plus.model.eval(), minus.model.eval()


def check_gradients(weights: Weights, checked: Checked, again: RemoteModel, plus: RemoteModel, minus: RemoteModel,
                    secret: torch.Generator) -> None:
    """Raise LilTransformyError unless the reported loss and gradient of a step are those of the model's own forward
    at those weights on that batch: `again`, which has seen no other question, reports the same, and the judge's own
    cross-entropy of the logits `plus` and `minus` return at the weights moved by +-EPSILON along a direction it
    chose (each sees one end: none knows what the others were asked) changes as the gradient says."""
    reported = checked.gradient
    direction = torch.randn(len(reported), generator=secret)
    direction = direction / direction.norm() + (reported / reported.norm() if reported.norm() > 0 else 0)
    direction /= direction.norm()
    loss, grads = again.gradients(weights, checked.params, checked.step, checked.x, checked.y)
    ends = [float(next_token_loss(child.logits(weights, weights.moved(checked.params, direction, by), checked.step,
                                               checked.x).double(), checked.y))
            for child, by in ((plus, EPSILON), (minus, -EPSILON))]
    fresh = flat(grads, weights)
    if (fresh - reported).norm() > SAME_GRADIENT * fresh.norm() + 1e-7 or abs(loss - checked.loss) > SAME_LOSS:
        raise LilTransformyError(
            f"{FORGED}: at step {checked.step}, a fresh process given the same weights and batch reports a gradient "
            f"{relative(reported, fresh)} away (loss {loss:.4f}, not {checked.loss:.4f}). Does your model keep "
            f"something between calls, or change its own weights while training? The judge trains it: forward must "
            f"only compute the logits")
    slope, told = (ends[0] - ends[1]) / (2 * EPSILON), float(reported @ direction)
    if abs(slope - told) > SLOPE_TOLERANCE * reported.norm() + 1e-4 or abs(sum(ends) / 2 - checked.loss) > SAME_LOSS:
        raise LilTransformyError(
            f"{FORGED}: at step {checked.step}, along a direction the judge chose, the loss it computes from your "
            f"model's logits changes by {slope:.4f} per unit, and your gradient says {told:.4f} (loss "
            f"{sum(ends) / 2:.4f} there, reported {checked.loss:.4f}). The judge trains your model: forward must only "
            f"compute the logits, and the gradients must be those of that loss")


def relative(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"{float((a - b).norm() / max(float(b.norm()), 1e-12)):.2%}"
