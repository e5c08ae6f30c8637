"""Stage 05 — + positions: attention learns *where* as well as *what*.

Stage 04's head could not tell "the word just before me" from "a word ten tokens back": keys
carried only what a token is. Add stage 02's position vectors to the token vectors and the
keys carry where it stands too, so a head can learn "look one step back". The same position
vectors were useless under an average; under attention they pay off.
"""
import torch
from torch import nn

from .stage_02_positions import TokenAndPositionEmbedding
from .stage_04_attention import AttentionHead


class PositionalAttentionLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = TokenAndPositionEmbedding(cfg)
        self.attention = AttentionHead(cfg.d_model, cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> logits: (batch, seq, vocab)."""
        # YOUR CODE HERE
        raise NotImplementedError("stage 05, forward: not written yet. Hint: logits (batch, seq, vocab): stage 04's model, but attention starts from what each token is and where it stands, so it can weigh position too")
