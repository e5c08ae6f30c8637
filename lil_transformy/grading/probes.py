"""Probes: library code that runs next to the student's objects, in the child when grading (`remote.run_probe`).

Only what cannot be judged from outputs alone is here, and it is kept small, because a student's
module can replace library code in its own process: the training (its result, the weights, is
scored by the judge in fresh children), and the stage 07/08 sublayer stand-ins and block probes
(README, "What a student's code can still influence"). Everything else a check judges is computed
by the judge from the outputs of the student's code on inputs the judge chose (checking.py).
"""
import numpy as np
import torch

from lil_transformy.tokens import TokenData
from lil_transformy.train import SHARED, train
from lil_transformy.vocab import Vocabulary


class Zero(torch.nn.Module):
    """A sublayer that outputs zeros: what is left of a block is its residual path."""

    def forward(self, x):
        return torch.zeros_like(x)


class Recorder(torch.nn.Module):
    """A sublayer that remembers what it was given and outputs zeros."""

    def forward(self, x):
        self.seen = x
        return torch.zeros_like(x)


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


def train_on(model_class, train_ids: torch.Tensor, vocab_size: int) -> dict:
    """`model_class` trained with the shared budget on the training tokens the judge sent (the child has no other
    text): {"state": its state dict, "steps": ...}. The judge scores it in another, fresh child."""
    data = TokenData(Vocabulary(np.arange(vocab_size), 1.0), train_ids, torch.empty(0, dtype=torch.long),
                     "sent by the judge", "")
    result = train(model_class, data, SHARED, progress=False, score=False)
    return {"state": result.model.state_dict(), "steps": result.config.steps}
