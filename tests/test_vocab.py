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
