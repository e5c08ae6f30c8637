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
    ### BEGIN SOLUTION hint: a histogram of the ids with one bin per possible id, so an id that never occurs still has its 0 and counts[i] is always the count of id i
    return np.bincount(ids, minlength=vocab_size)
    ### END SOLUTION


def coverage_curve(counts: np.ndarray) -> np.ndarray:
    """The share of all tokens covered by the k most frequent tokens, for k = 1, 2, ...

    counts: (vocab_size,) -> curve: (n_distinct,) increasing, curve[k-1] = share covered by the top k,
    curve[-1] == 1.0; n_distinct counts only tokens that occur.
    """
    ### BEGIN SOLUTION hint: rank the tokens that occur by their count, most frequent first: the top k cover the sum of the k largest counts, as a share of all the tokens
    frequent_first = np.sort(counts[counts > 0])[::-1]
    return np.cumsum(frequent_first) / frequent_first.sum()
    ### END SOLUTION


def smallest_vocab_for_coverage(counts: np.ndarray, coverage: float) -> int:
    """The smallest k such that the k most frequent tokens cover at least `coverage` of all tokens."""
    ### BEGIN SOLUTION hint: the coverage curve only grows with k, so the answer is where it first reaches `coverage` (entry k - 1 is the top k)
    curve = coverage_curve(counts)
    return min(int(np.searchsorted(curve, coverage)) + 1, len(curve))
    ### END SOLUTION


def build_id_maps(counts: np.ndarray, n_keep: int, end_of_story: int) -> tuple[np.ndarray, np.ndarray]:
    """Maps between GPT-2 ids and the new, small ids.

    Keeps the n_keep most frequent tokens and the end-of-story token. Ties (equal counts) go to the smaller GPT-2
    id first, the order a stable sort keeps. The end-of-story token counts among the n_keep when it is one of the
    n_keep most frequent; when it is not, it is kept on top of them.
    Returns
      new_to_gpt2: (new_vocab_size,)  new_to_gpt2[UNKNOWN_ID] = -1, new_to_gpt2[END_OF_STORY_ID] = end_of_story,
                   then the other kept tokens, most frequent first;
      gpt2_to_new: (len(counts),)     the new id of every GPT-2 id, UNKNOWN_ID for the dropped ones.
    """
    ### BEGIN SOLUTION hint: two tables, each the other's inverse on the kept tokens: new_to_gpt2 lists the kept GPT-2 ids in their new order (the docstring says which order and when the end-of-story token counts in n_keep), gpt2_to_new has one entry per GPT-2 id
    frequent_first = np.argsort(-counts, kind="stable")[:n_keep]
    kept = frequent_first[frequent_first != end_of_story]
    new_to_gpt2 = np.concatenate([[-1, end_of_story], kept]).astype(np.int64)
    gpt2_to_new = np.full(len(counts), UNKNOWN_ID, dtype=np.int64)
    gpt2_to_new[new_to_gpt2[1:]] = np.arange(1, len(new_to_gpt2))
    return new_to_gpt2, gpt2_to_new
    ### END SOLUTION


def encode_with_unknowns(gpt2_ids: np.ndarray, gpt2_to_new: np.ndarray) -> np.ndarray:
    """GPT-2 ids -> new ids; a token outside the vocabulary becomes UNKNOWN_ID.

    gpt2_ids: (n_tokens,) -> (n_tokens,)
    """
    ### BEGIN SOLUTION hint: gpt2_to_new already holds the new id of every GPT-2 id: look them all up at once, not in a Python loop (millions of tokens)
    return gpt2_to_new[gpt2_ids]
    ### END SOLUTION
