"""Stage 09 — multi-head: several heads in parallel, the full transformer.

One head makes one weighted mix per position: it can follow the subject *or* the last
adjective, not both. Split d_model into N_HEADS smaller heads, let each attend on its own,
and join what they found with one output projection W_O. Same parameters, several patterns.
"""
import torch
from torch import nn

from .stage_04_attention import attention_weights
from .stage_08_stacked import StackedLM

N_HEADS = 4


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        assert d_model % n_heads == 0, "d_model must split evenly into heads"
        self.n_heads = n_heads
        self.W_Q = nn.Linear(d_model, d_model, bias=False)  # all heads' queries at once
        self.W_K = nn.Linear(d_model, d_model, bias=False)
        self.W_V = nn.Linear(d_model, d_model, bias=False)
        self.W_O = nn.Linear(d_model, d_model)  # joins the heads' outputs

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, seq, d_model) -> (batch, n_heads, seq, d_head).

        Which features go to which head is yours to choose (contiguous slices are usual): any fixed choice, the same
        at every position, is the same model with its weights permuted, as long as forward joins the heads back the
        same way."""
        # YOUR CODE HERE
        raise NotImplementedError('stage 09, split_heads: not written yet. Hint: (batch, n_heads, seq, d_head): each head gets d_head of the d_model features of every position, the same features at every position, and the heads get an axis of their own before seq')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq, d_model) -> (batch, seq, d_model)."""
        # YOUR CODE HERE
        raise NotImplementedError("stage 09, forward: not written yet. Hint: every head attends on its own: queries, keys and values split alike, and attention_weights works on any leading axes; then each position's heads are joined back into d_model features, undoing the split, and W_O mixes them")


class MultiHeadLM(StackedLM):
    """Stage 08's model with multi-head attention in every block: nothing else changes."""

    def make_attention(self, cfg) -> nn.Module:
        return MultiHeadAttention(cfg.d_model, N_HEADS)
