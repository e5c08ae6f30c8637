"""Stage 07 — block: residual connections and LayerNorm around attention and the FFN.

Until now each layer *replaced* the token's vector, so the current token reached the output
only if attention chose to look at itself. A residual connection *adds* each layer's output to
its input: the token's own vector flows straight through, and each layer writes a correction.
LayerNorm (before each layer: "pre-norm") keeps the numbers on the stream at a steady scale.
This is the transformer block.
"""
import torch
from torch import nn

from .stage_02_positions import TokenAndPositionEmbedding
from .stage_04_attention import AttentionHead
from .stage_06_ffn import FeedForward


class Block(nn.Module):
    def __init__(self, d_model: int, attention: nn.Module):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attention = attention
        self.ln_2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq, d_model) -> (batch, seq, d_model)."""
        # YOUR CODE HERE
        raise NotImplementedError('stage 07, forward: not written yet. Hint: two sublayers, attention then the FFN; each adds what it computes to the stream (a residual) instead of replacing it, and reads the stream through its own LayerNorm first (pre-norm)')


class BlockLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = TokenAndPositionEmbedding(cfg)
        self.block = Block(cfg.d_model, AttentionHead(cfg.d_model, cfg.d_model))
        self.ln_final = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> logits: (batch, seq, vocab)."""
        x = self.embed(idx)  # (batch, seq, d_model): resid_pre
        x = self.block(x)  # (batch, seq, d_model)
        return self.unembed(self.ln_final(x))  # (batch, seq, vocab)
