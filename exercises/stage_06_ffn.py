"""Stage 06 — + FFN: a feed-forward layer after attention.

Attention moves information between positions, but only by mixing: a weighted average of
linear projections. The feed-forward layer then *thinks* about what arrived, each position on
its own: widen to WIDTH × d_model, a nonlinearity (GELU), narrow back.
"""
import torch
from torch import nn

from .stage_02_positions import TokenAndPositionEmbedding
from .stage_04_attention import AttentionHead

WIDTH = 8  # the hidden layer, in units of d_model. GPT-2 uses 4; at our d_model of 64, 8 widens the loss
#           ladder's thinnest rungs (08 -> 09 most) in the same budget


class FeedForward(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.up = nn.Linear(d_model, WIDTH * d_model)
        self.down = nn.Linear(WIDTH * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq, d_model) -> (batch, seq, d_model), every position on its own."""
        # YOUR CODE HERE
        raise NotImplementedError('stage 06, forward: not written yet. Hint: each position on its own: widen to WIDTH * d_model, a GELU nonlinearity (without one, two linear layers are one linear layer), narrow back to d_model')


class AttentionFFNLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = TokenAndPositionEmbedding(cfg)
        self.attention = AttentionHead(cfg.d_model, cfg.d_model)
        self.ffn = FeedForward(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> logits: (batch, seq, vocab)."""
        x = self.embed(idx)  # (batch, seq, d_model)
        x = self.attention(x)  # (batch, seq, d_model): gather from earlier positions
        x = self.ffn(x)  # (batch, seq, d_model): compute on what was gathered
        return self.unembed(x)  # (batch, seq, vocab)
