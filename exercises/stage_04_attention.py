"""Stage 04 — + attention: one causal self-attention head, no positions, no residual.

The bag of words averaged every earlier token equally. Attention lets each position choose:
it asks a question (query), every earlier token offers a label (key) and a message (value),
and the position takes a weighted mix of the messages, weighted by how well each key answers
the query. Still no positions: a bag of predecessors, but weighted by relevance.

The four named steps: scores = q·k, scaled by 1/sqrt(d_head), causal mask, softmax.
"""
import math

import torch
from torch import nn


def causal_mask(seq: int, device=None) -> torch.Tensor:
    """(seq, seq) bool: True where query position i may look at key position j, i.e. j <= i."""
    # YOUR CODE HERE
    raise NotImplementedError('stage 04, causal_mask: not written yet. Hint: (seq, seq) bool, row i a query, column j a key: True where j <= i, the lower triangle with its diagonal')


def attention_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """How much each query position attends to each key position.

    q, k: (..., seq, d_head) -> weights: (..., seq, seq); each row sums to 1 and is 0 above the diagonal.
    """
    # YOUR CODE HERE
    raise NotImplementedError('stage 04, attention_weights: not written yet. Hint: how well each query matches each key, (..., seq, seq): dot products, scaled by 1/sqrt(d_head) so their spread does not grow with d_head; each row becomes a probability distribution over the keys, with exactly 0 on every future key')


class AttentionHead(nn.Module):
    def __init__(self, d_model: int, d_head: int):
        super().__init__()
        self.W_Q = nn.Linear(d_model, d_head, bias=False)  # what am I looking for?
        self.W_K = nn.Linear(d_model, d_head, bias=False)  # what do I contain?
        self.W_V = nn.Linear(d_model, d_head, bias=False)  # what do I pass on?

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq, d_model) -> (batch, seq, d_head)."""
        # YOUR CODE HERE
        raise NotImplementedError("stage 04, forward: not written yet. Hint: (batch, seq, d_head): each position's query meets the keys of the positions up to it, and its output is the mix of their values with those attention weights")


class AttentionLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.attention = AttentionHead(cfg.d_model, cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> logits: (batch, seq, vocab)."""
        x = self.token_embedding(idx)  # (batch, seq, d_model)
        x = self.attention(x)  # (batch, seq, d_model)
        return self.unembed(x)  # (batch, seq, vocab)
