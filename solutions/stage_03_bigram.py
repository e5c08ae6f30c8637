"""Stage 03 — bigram: each position predicts the next token from its own token alone.

Throw the context away and keep only the newest word: a table of "after this token, that one".
The simplest autoregressive language model, and already far better than any bag of words,
because the word right before matters most. What it cannot do: remember anything earlier.
"""
import torch
from torch import nn


class BigramLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> logits: (batch, seq, vocab); position t sees token t only."""
        ### BEGIN SOLUTION hint: logits (batch, seq, vocab): position t's prediction depends on token t alone, the bigram: nothing mixes positions
        x = self.token_embedding(idx)  # (batch, seq, d_model)
        return self.unembed(x)  # (batch, seq, vocab)
        ### END SOLUTION
