"""Probes: the parts of a check that need the student's objects up close, returning data only.

When grading, a probe runs in the child that holds the student's objects (`remote.run_probe`);
locally it runs right here. Either way the check that called it judges what it returns.
"""
import torch

from lil_transformy.tokens import load_token_data
from lil_transformy.train import SHARED, train


class Zero(torch.nn.Module):
    """A sublayer that outputs zeros: what is left of a block is its residual path."""

    def forward(self, x):
        return torch.zeros_like(x)


class Recorder(torch.nn.Module):
    """A sublayer that remembers what it was given and outputs zeros."""

    def forward(self, x):
        self.seen = x
        return torch.zeros_like(x)


def input_gradient_map(forward, x: torch.Tensor) -> torch.Tensor:
    """(seq, seq): [t, s] = the largest |d out[:, t] / d x[:, s]|. forward: (batch, seq, d) -> (batch, seq, ...)."""
    x = x.detach().clone().requires_grad_(True)
    out = forward(x)
    seq = x.size(1)
    grads = torch.zeros(seq, seq)
    for t in range(seq):
        (grad,) = torch.autograd.grad(out[:, t].sum(), x, retain_graph=True, allow_unused=True)
        if grad is not None:
            grads[t] = grad.abs().amax(dim=(0, 2))
    return grads


def embedding_gradient_map(model: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """(seq, seq): [t, s] = the largest gradient of the logits at t on any embedding output at position s.

    Follows every nn.Embedding output (token and position vectors) back from the logits.
    """
    captured = []

    def keep(module, inputs, output):
        output.retain_grad()
        captured.append(output)

    model.train()
    hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    try:
        logits = model(idx)
    finally:
        for hook in hooks:
            hook.remove()
    seq = idx.size(1)
    grads = torch.zeros(seq, seq)
    for t in range(seq):
        for out in captured:
            out.grad = None
        logits[:, t].sum().backward(retain_graph=True)
        for out in captured:
            if out.grad is not None and out.dim() >= 2 and out.size(-2) == seq:
                grads[t] = torch.maximum(grads[t], out.grad.reshape(-1, seq, out.size(-1)).abs().amax(dim=(0, 2)))
    return grads


def set_parameters(module: torch.nn.Module, values: dict) -> None:
    """Overwrite parameters by dotted name ("W_O.weight") with a tensor, "normal" (N(0, 1)) or "zeros"."""
    fills = {"normal": torch.randn_like, "zeros": torch.zeros_like}
    with torch.no_grad():
        for name, value in values.items():
            parameter = module.get_parameter(name)
            parameter.copy_(fills[value](parameter) if isinstance(value, str) else value)


def train_with_the_shared_budget(model_class, progress=False) -> dict:
    """The stage trained as the loss check trains it: {"model": the trained model, "steps": ...}.

    progress: False, or a terminal to draw the progress bar on (never pytest's captured output)."""
    # score=False: the judge scores the trained model itself, from the logits it asks for
    result = train(model_class, load_token_data(), SHARED, progress=progress, label="training your model",
                   score=False)
    result.model.eval()
    return {"model": result.model, "steps": result.config.steps}


@torch.no_grad()
def logits(model: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """The model's logits in eval mode, without building a graph."""
    model.eval()
    return model(idx)


def blocks(model: torch.nn.Module) -> dict:
    """How many modules of class Block the model holds, and how many parameter tensors two of them share."""
    found = [m for m in model.modules() if type(m).__name__ == "Block"]
    shared = {id(p) for p in found[0].parameters()} & {id(p) for p in found[1].parameters()} if len(found) > 1 else set()
    return {"count": len(found), "shared": len(shared)}


def block_call_order(model: torch.nn.Module, idx: torch.Tensor) -> list:
    """The order in which the model's Block modules run on one forward pass (their order in model.modules())."""
    calls = []
    found = [m for m in model.modules() if type(m).__name__ == "Block"]
    hooks = [block.register_forward_hook(lambda module, inputs, output, i=i: calls.append(i))
             for i, block in enumerate(found)]
    try:
        model.eval()(idx)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def weight_effects(module: torch.nn.Module, x: torch.Tensor) -> list:
    """For every weight matrix (a parameter of 2 or more dimensions, found by walking the module): its name,
    the largest gradient a fixed random readout of the output puts on it, and how far the output moves
    when the matrix is perturbed. A 1-d parameter (a bias, a LayerNorm gain) may legitimately not matter:
    a bias on the keys, for one, shifts every score of a query alike, which the softmax ignores."""
    generator = torch.Generator().manual_seed(0)
    out = module(x)
    readout = torch.randn(out.shape, generator=generator)
    weights = [(name, p) for name, p in module.named_parameters() if p.dim() >= 2]
    grads = torch.autograd.grad((out * readout).sum(), [p for _, p in weights], allow_unused=True)
    effects = []
    with torch.no_grad():
        base = module(x)
        for (name, parameter), grad in zip(weights, grads):
            saved = parameter.clone()
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.5)
            moved = (module(x) - base).abs().max().item()
            parameter.copy_(saved)
            effects.append({"name": name, "shape": list(parameter.shape), "moved": moved,
                            "gradient": 0.0 if grad is None else grad.abs().max().item()})
    return effects
