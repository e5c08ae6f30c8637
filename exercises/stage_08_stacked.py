"""Stage 08 — stacked: a second block.

One block can look back once. Two blocks can look back at what the first found: "the token
after the last time I saw this name" needs a head that finds the name and another that reads
what the first found. Depth is just more blocks on the same residual stream, each with its own
weights.
"""
import torch
from torch import nn

from .stage_02_positions import TokenAndPositionEmbedding
from .stage_04_attention import AttentionHead
from .stage_07_block import Block

N_BLOCKS = 2


class StackedLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = TokenAndPositionEmbedding(cfg)
        # YOUR CODE HERE
        raise NotImplementedError('stage 08, __init__: not written yet. Hint: N_BLOCKS new Blocks, each with its own weights and its own attention (make_attention builds one), held in a container that registers their parameters: a plain list hides them from the optimiser')
        self.ln_final = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def make_attention(self, cfg) -> nn.Module:
        return AttentionHead(cfg.d_model, cfg.d_model)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> logits: (batch, seq, vocab)."""
        x = self.embed(idx)  # (batch, seq, d_model)
        # YOUR CODE HERE
        raise NotImplementedError('stage 08, forward: not written yet. Hint: depth: the stream (batch, seq, d_model) goes through the blocks one after another, each reading what the one before it wrote')
        return self.unembed(self.ln_final(x))  # (batch, seq, vocab)
