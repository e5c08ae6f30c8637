"""Stage 02 — + positions: add a learned vector for each position before the average.

Now every token vector carries where it stood. But the average adds them all up:
mean(token + position) = mean(token) + mean(position), and the position part is the same
whatever the order of the words. "The girl saw the dog" and "The dog saw the girl" give the
same prediction. Position without a way to *relate* positions is useless: attention is that way.
"""
import torch
from torch import nn

from .stage_01_bag_of_words import causal_average


class TokenAndPositionEmbedding(nn.Module):
    """A vector for what the token is plus a vector for where it stands (reused by every later stage)."""

    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.position_embedding = nn.Embedding(cfg.context, cfg.d_model)  # one learned vector per position

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> (batch, seq, d_model)."""
        # YOUR CODE HERE
        raise NotImplementedError("stage 02, forward: not written yet. Hint: (batch, seq, d_model): what each token is plus where it stands, the learned vector of position t (0 for the first token) added to the token's vector, the same positions for every sequence of the batch")


class PositionalBagOfWordsLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = TokenAndPositionEmbedding(cfg)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> logits: (batch, seq, vocab)."""
        x = self.embed(idx)  # (batch, seq, d_model)
        return self.unembed(causal_average(x))  # (batch, seq, vocab)
