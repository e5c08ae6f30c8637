"""Stage 01 — bag of words: embed → average → unembed.

The amoeba. Each position predicts the next token from the *average* of the token vectors seen
so far: the model knows which words came before, but not their order, and the newest word
counts no more than the first. What it can learn is co-occurrence: after "princess" and
"castle", words like "king" get likelier. What it writes is word soup.
"""
import torch
from torch import nn


def causal_average(x: torch.Tensor) -> torch.Tensor:
    """Each position's vector becomes the mean of its own and all earlier vectors.

    x: (batch, seq, d_model) -> (batch, seq, d_model), out[:, t] = x[:, :t + 1].mean(dim=1).
    Never look at later positions: they are what the model must predict.
    """
    ### BEGIN SOLUTION hint: position t's output is the mean of the t + 1 vectors at positions 0..t and of no later one: a running total along the sequence axis, over how many it holds
    seq = x.size(1)
    counts = torch.arange(1, seq + 1, device=x.device, dtype=x.dtype).view(1, seq, 1)  # (1, seq, 1)
    return x.cumsum(dim=1) / counts
    ### END SOLUTION


class BagOfWordsLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)  # token id -> vector
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)  # vector -> a score for every next token

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) token ids -> logits: (batch, seq, vocab)."""
        ### BEGIN SOLUTION hint: logits (batch, seq, vocab): each position predicts the next token from the average of the token vectors up to it, the bag of words so far
        x = self.token_embedding(idx)  # (batch, seq, d_model)
        x = causal_average(x)  # (batch, seq, d_model)
        return self.unembed(x)  # (batch, seq, vocab)
        ### END SOLUTION
