"""Stage 03b — a detour: n-grams by concatenation. More fixed context helps; it does not scale.

The bigram saw one token. Why not the last n - 1 tokens plus this one, side by side? Put their
embeddings next to each other (concatenate, do not average: the order survives) and unembed
the long vector. A trigram (n = 3) beats the bigram. But the window is fixed: the word n tokens
back is invisible, however important. And the cost grows with n: the unembedding takes
n × d_model inputs, and a counting n-gram would need a table of vocab^n entries. Attention
(stage 04) looks at *every* earlier token with a fixed number of parameters.
"""
import torch
import torch.nn.functional as F
from torch import nn

N = 3  # a trigram: the current token and the two before it


def window(x: torch.Tensor, n: int) -> torch.Tensor:
    """(batch, seq, d) -> (batch, seq, n * d): at position t, x[t - n + 1], ..., x[t] side by side.

    Positions before the start of the sequence count as zero vectors.
    """
    # YOUR CODE HERE
    raise NotImplementedError('stage 03b, window: not written yet. Hint: (batch, seq, n * d): position t holds the n vectors of tokens t - n + 1 .. t side by side, oldest first, and zero vectors for the positions before the start; no loop over positions is needed')


class NGramLM(nn.Module):
    def __init__(self, cfg, n: int = N):
        super().__init__()
        self.n = n
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.unembed = nn.Linear(n * cfg.d_model, cfg.vocab_size)  # grows with n

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, seq) -> logits: (batch, seq, vocab); position t sees tokens t - n + 1 .. t."""
        x = self.token_embedding(idx)  # (batch, seq, d_model)
        return self.unembed(window(x, self.n))  # (batch, seq, n * d_model) -> (batch, seq, vocab)
