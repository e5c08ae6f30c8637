"""The one library routine a grading child runs for the judge: training the student's model.

Everything else a check judges is computed by the judge from the outputs of the student's code on
inputs it chose (checking.py). Training needs the student's objects up close; it runs in a fresh
child that holds the training tokens the judge sends and nothing else, and only its result, the
weights, counts: the judge scores them in other fresh children (checks/model_checks.py).
"""
import numpy as np
import torch

from lil_transformy.tokens import TokenData
from lil_transformy.train import SHARED, train
from lil_transformy.vocab import Vocabulary


def train_on(model_class, train_ids: torch.Tensor, vocab_size: int) -> dict:
    """`model_class` trained with the shared budget on the training tokens the judge sent (the child has no other
    text): {"state": its state dict, "steps": ...}."""
    data = TokenData(Vocabulary(np.arange(vocab_size), 1.0), train_ids, torch.empty(0, dtype=torch.long),
                     "sent by the judge", "")
    result = train(model_class, data, SHARED, progress=False, score=False)
    return {"state": result.model.state_dict(), "steps": result.config.steps}
