"""Stage 00 checks: counting tokens, the coverage curve, the truncated vocabulary, encoding."""
import numpy as np
import pytest

from lil_transformy.grading.checking import expect, student_code

# A corpus small enough to count by hand: token 3 five times, 7 three times, 1 and 9 once each.
TOY_IDS = np.array([3, 7, 3, 1, 3, 7, 3, 9, 3, 7])
TOY_VOCAB = 12


def test_count_tokens(stage):
    with student_code():
        counts = stage.count_tokens(TOY_IDS, TOY_VOCAB)
    expect(np.shape(counts) == (TOY_VOCAB,), f"one count per token id: shape ({TOY_VOCAB},)",
           f"shape {np.shape(counts)}", "ids that never occur still need a count of 0 (np.bincount's minlength)")
    expected = np.zeros(TOY_VOCAB, dtype=int)
    expected[[3, 7, 1, 9]] = [5, 3, 1, 1]
    expect(np.array_equal(counts, expected), f"{expected.tolist()}", f"{np.asarray(counts).tolist()}",
           "counts[i] is how many times id i occurs in ids")


def test_coverage_curve(stage):
    counts = np.array([0, 1, 0, 5, 0, 0, 0, 3, 0, 1])
    with student_code():
        curve = stage.coverage_curve(counts)
    expected = [0.5, 0.8, 0.9, 1.0]
    expect(np.shape(curve) == (4,), "one entry per token that occurs: 4 entries", f"shape {np.shape(curve)}",
           "leave out the ids with a count of 0")
    expect(np.allclose(curve, expected), f"{expected} (top 1 covers 5/10, top 2 covers 8/10, ...)",
           f"{np.round(curve, 3).tolist()}", "sort the counts from most to least frequent before the cumulative sum")


@pytest.mark.parametrize("coverage, k", [(0.5, 1), (0.8, 2), (0.85, 3), (0.9, 3), (0.95, 4), (1.0, 4)])
def test_smallest_vocab_for_coverage(stage, coverage, k):
    counts = np.array([0, 1, 0, 5, 0, 0, 0, 3, 0, 1])  # coverage curve 0.5, 0.8, 0.9, 1.0
    with student_code():
        found = stage.smallest_vocab_for_coverage(counts, coverage)
    expect(found == k, f"{k} tokens to cover {coverage:.0%}", f"{found}",
           "'at least': a top-k that covers exactly the target is enough (curve 0.5, 0.8, 0.9, 1.0)")


def test_build_id_maps_order_and_specials(stage):
    counts = np.array([0, 2, 0, 5, 0, 0, 0, 2, 0, 1, 0, 1])  # id 11 is the end-of-story token
    with student_code():
        new_to_gpt2, gpt2_to_new = stage.build_id_maps(counts, 3, end_of_story=11)
    expected = [-1, 11, 3, 1, 7]
    expect(list(new_to_gpt2) == expected,
           f"new_to_gpt2 = {expected}: <unk>, end of story, then 3, 1, 7 (most frequent first, ties by smaller id)",
           vocabulary_mistake(new_to_gpt2, expected, counts, 11),
           "index 0 is <unk> (-1), index 1 the end-of-story id, kept even when it is rare")
    expected_lookup = [0, 3, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1]
    expect(list(gpt2_to_new) == expected_lookup, f"gpt2_to_new = {expected_lookup}",
           f"{list(np.asarray(gpt2_to_new))}", "every dropped GPT-2 id maps to UNKNOWN_ID (0)")


def vocabulary_mistake(found, expected: list, counts: np.ndarray, end_of_story: int) -> str:
    """What differs between the student's new_to_gpt2 and the expected one, named by its cause where it is known:
    equal counts in another order (an unstable sort), the end-of-story token counted outside n_keep or in it."""
    found = [int(i) for i in np.asarray(found).ravel()]
    in_range = all(0 <= i < len(counts) for i in found[1:])
    if in_range and len(found) == len(expected) and found[:2] == expected[:2] and found != expected and \
            [counts[i] for i in found[2:]] == [counts[i] for i in expected[2:]]:
        first = next(n for n, (a, b) in enumerate(zip(found, expected)) if a != b)
        return (f"new id {first} is GPT-2 id {found[first]}, not {expected[first]}: the same count "
                f"({counts[expected[first]]}), so a tie in another order: ties go to the smaller GPT-2 id first. "
                f"np.argsort is not stable by default (its quicksort may reorder equal counts, differently on another "
                f"machine): a stable sort keeps them in id order (kind='stable')")
    extra, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    if len(found) == len(expected) + 1 and len(extra) == 1 and not missing:
        return (f"{len(found)} ids, one too many (GPT-2 id {extra[0]}): the end-of-story token {end_of_story} is "
                f"among the n_keep most frequent, so it is one of the n_keep, not kept on top of them")
    if len(found) == len(expected) - 1 and len(missing) == 1 and not extra:
        return (f"{len(found)} ids, one short (GPT-2 id {missing[0]}): the end-of-story token {end_of_story} is not "
                f"among the n_keep most frequent, so it is kept on top of them")
    return f"{len(found)} ids: {found[:12]}{'...' if len(found) > 12 else ''}"


def test_build_id_maps_ties_and_a_frequent_end_of_story(stage):
    """Many equal counts (an unstable sort shows here), and an end-of-story token frequent enough to be kept anyway."""
    counts = np.array([0, 2, 0, 5, 2, 2, 1, 2, 0, 2, 2, 1, 2, 2, 0, 2, 2, 2, 1, 3])  # id 19 is the end-of-story token
    with student_code():
        new_to_gpt2, _ = stage.build_id_maps(counts, 6, end_of_story=19)
    expected = [-1, 19, 3, 1, 4, 5, 7]
    expect(list(np.asarray(new_to_gpt2)) == expected,
           f"new_to_gpt2 = {expected}: the 6 most frequent are 3, 19 (the end of story, so it counts among the 6), "
           f"then the count-2 ids 1, 4, 5, 7 (ties: the smaller id first)",
           vocabulary_mistake(new_to_gpt2, expected, counts, 19),
           "the docstring of build_id_maps says how ties are ordered and when the end-of-story token counts in n_keep")


def test_encode_with_unknowns(stage):
    gpt2_to_new = np.array([0, 3, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1])
    with student_code():
        encoded = stage.encode_with_unknowns(np.array([3, 7, 5, 11, 1]), gpt2_to_new)
    expect(list(encoded) == [2, 4, 0, 1, 3], "[2, 4, 0, 1, 3] (5 is not in the vocabulary: <unk> = 0)",
           f"{list(np.asarray(encoded))}", "look every id up in gpt2_to_new")


def test_vocabulary_on_tinystories(stage, token_data):
    """Your functions, run on the real training tokens, give the course's vocabulary."""
    from lil_transformy.data import load_corpus
    from lil_transformy.tokenizer import END_OF_TEXT_ID, GPT2_VOCAB_SIZE
    from lil_transformy.tokens import gpt2_stream

    train = gpt2_stream(load_corpus().train)
    with student_code():
        counts = stage.count_tokens(train, GPT2_VOCAB_SIZE)
        n_keep = stage.smallest_vocab_for_coverage(counts, 0.99)
        new_to_gpt2, gpt2_to_new = stage.build_id_maps(counts, n_keep, END_OF_TEXT_ID)
        encoded = stage.encode_with_unknowns(train, gpt2_to_new)
    expected = token_data.vocab.new_to_gpt2.tolist()
    expect(list(np.asarray(new_to_gpt2)) == expected, f"the course's vocabulary of {token_data.vocab.size} ids",
           vocabulary_mistake(new_to_gpt2, expected, np.asarray(counts), END_OF_TEXT_ID),
           "each function passes its own check? Then look at how they fit together: coverage 0.99 of the training "
           "tokens, and build_id_maps's docstring (ties, the end-of-story token)")
    unknown_share = float(np.mean(np.asarray(encoded) == stage.UNKNOWN_ID))
    expect(unknown_share <= 0.01, "at most 1 % of the training tokens unknown", f"{unknown_share:.2%}",
           "99 % coverage means at most 1 % of the tokens become <unk>")
