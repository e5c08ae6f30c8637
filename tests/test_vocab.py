import numpy as np

from lil_transformy.vocab import Vocabulary


def test_slice_vocabulary_is_the_smallest_covering_99_percent(token_data):
    vocab = token_data.vocab
    assert vocab.coverage >= 0.99
    assert 3000 < vocab.size < 4000  # 3,433 on the shared slice
    assert vocab.new_to_gpt2[0] == -1 and vocab.new_to_gpt2[1] == 50256


def test_encode_decode_round_trip(token_data):
    text = "Once upon a time, there was a little girl named Lily. She loved to play outside."
    ids = token_data.vocab.encode(text)
    assert (ids != 0).all()
    assert token_data.vocab.decode(ids) == text


def test_unknown_tokens_read_as_a_marker(token_data):
    ids = token_data.vocab.encode("The quokka photosynthesised.")
    assert (ids == 0).any()
    assert "⁇" in token_data.vocab.decode(ids)


def test_save_and_load(tmp_path, token_data):
    token_data.vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert np.array_equal(loaded.new_to_gpt2, token_data.vocab.new_to_gpt2)
    assert (tmp_path / "vocab.json").stat().st_size < 50_000


def test_token_streams_end_stories_with_end_of_story(token_data):
    assert int((token_data.train == 1).sum()) == 246  # 245 stories + the training paragraphs
    assert int(token_data.heldout[-1]) == 1


def test_the_shipped_vocabulary_is_what_stage_00s_reference_builds():
    """One implementation: the data file the library reads is the reference's vocabulary of the shipped corpus."""
    from lil_transformy.data import BUNDLED, load_corpus
    from lil_transformy.stages import load_stage_module
    from lil_transformy.tokens import gpt2_stream
    from lil_transformy.vocab import COVERAGE, END_OF_STORY_ID, SHIPPED, UNKNOWN_ID, tokens_sha256

    train = gpt2_stream(load_corpus(BUNDLED).train)
    built = Vocabulary.build(train, COVERAGE)
    shipped = Vocabulary.for_training_tokens(train, COVERAGE)
    assert np.array_equal(shipped.new_to_gpt2, built.new_to_gpt2) and shipped.coverage == built.coverage
    assert Vocabulary.load(SHIPPED).size == built.size
    assert '"tokens_sha256": "' + tokens_sha256(train, COVERAGE) in SHIPPED.read_text()
    reference = load_stage_module("00", "solutions")
    assert (UNKNOWN_ID, END_OF_STORY_ID) == (reference.UNKNOWN_ID, reference.END_OF_STORY_ID)
    assert np.array_equal(built.encode_gpt2(train[:500]), reference.encode_with_unknowns(train[:500], built.gpt2_to_new))


def test_the_library_never_imports_the_reference_solutions():
    """A student's module, or the grader's child, must not find the reference through the library."""
    import subprocess
    import sys

    code = ("import sys, lil_transformy.cli, lil_transformy.tokens, lil_transformy.grading.judge, lil_transformy.grading.trainer, "
            "lil_transformy.grading.remote; from lil_transformy.tokens import load_token_data; load_token_data(); "
            "print(sorted(m for m in sys.modules if m.startswith('solutions') or 'stage_' in m))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
