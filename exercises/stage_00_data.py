"""Stage 00 — data prep: which tokens does a tiny language model need?

GPT-2's tokenizer knows 50,257 tokens, but children's stories use a few thousand of them.
Every id the model can emit costs a row in the output layer, and on a laptop the output layer
is most of the work. So we count how often each token occurs, keep the smallest set of the
most frequent tokens that covers 99 % of the text, and map everything else to <unk>.

The library builds the course's vocabulary with these very functions (lil_transformy/vocab.py):
the code you write here is the code every later stage runs on.
"""
import numpy as np

UNKNOWN_ID = 0  # the new id every dropped GPT-2 token becomes
END_OF_STORY_ID = 1  # the new id of GPT-2's <|endoftext|>, kept whatever its count


def count_tokens(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each token id occurs.

    ids: (n_tokens,) ints in [0, vocab_size) -> counts: (vocab_size,) with counts[i] = #occurrences of i
    """
    # YOUR CODE HERE
    raise NotImplementedError('stage 00, count_tokens: not written yet. Hint: np.bincount does exactly this; make sure the result has vocab_size entries')


def coverage_curve(counts: np.ndarray) -> np.ndarray:
    """The share of all tokens covered by the k most frequent tokens, for k = 1, 2, ...

    counts: (vocab_size,) -> curve: (n_distinct,) increasing, curve[k-1] = share covered by the top k,
    curve[-1] == 1.0; n_distinct counts only tokens that occur.
    """
    # YOUR CODE HERE
    raise NotImplementedError('stage 00, coverage_curve: not written yet. Hint: sort the non-zero counts from most to least frequent, np.cumsum, divide by the total')


def smallest_vocab_for_coverage(counts: np.ndarray, coverage: float) -> int:
    """The smallest k such that the k most frequent tokens cover at least `coverage` of all tokens."""
    # YOUR CODE HERE
    raise NotImplementedError('stage 00, smallest_vocab_for_coverage: not written yet. Hint: the coverage curve is sorted, so np.searchsorted finds the first k that reaches it')


def build_id_maps(counts: np.ndarray, n_keep: int, end_of_story: int) -> tuple[np.ndarray, np.ndarray]:
    """Maps between GPT-2 ids and the new, small ids.

    Keeps the n_keep most frequent tokens (ties: the smaller GPT-2 id first) and the end-of-story token.
    Returns
      new_to_gpt2: (new_vocab_size,)  new_to_gpt2[UNKNOWN_ID] = -1, new_to_gpt2[END_OF_STORY_ID] = end_of_story,
                   then the other kept tokens, most frequent first;
      gpt2_to_new: (len(counts),)     the new id of every GPT-2 id, UNKNOWN_ID for the dropped ones.
    """
    # YOUR CODE HERE
    raise NotImplementedError('stage 00, build_id_maps: not written yet. Hint: np.argsort(-counts, kind="stable") lists ids most frequent first; then fill a lookup table')


def encode_with_unknowns(gpt2_ids: np.ndarray, gpt2_to_new: np.ndarray) -> np.ndarray:
    """GPT-2 ids -> new ids; a token outside the vocabulary becomes UNKNOWN_ID.

    gpt2_ids: (n_tokens,) -> (n_tokens,)
    """
    # YOUR CODE HERE
    raise NotImplementedError('stage 00, encode_with_unknowns: not written yet. Hint: the lookup table already knows every answer; index it with the whole array at once')
