import shutil

import pytest

from lil_transformy import tokenizer
from lil_transformy.errors import LilTransformyError


def test_gpt2_bpe_is_the_real_one():
    assert tokenizer.encode("Once upon a time") == [7454, 2402, 257, 640]
    assert tokenizer.decode([7454, 2402, 257, 640]) == "Once upon a time"
    assert tokenizer.encode("<|endoftext|>") == [tokenizer.END_OF_TEXT_ID]


def test_tampered_tokenizer_file_is_refused(tmp_path):
    for name, path in tokenizer.gpt2_files().items():
        shutil.copy(path, tmp_path / name)
    with open(tmp_path / "vocab.bpe", "a") as f:
        f.write("x y\n")
    with pytest.raises(LilTransformyError, match="vocab.bpe has sha256 .* it was changed"):
        tokenizer.gpt2_files(tmp_path)


def test_missing_tokenizer_file_is_refused(tmp_path):
    with pytest.raises(LilTransformyError, match="tokenizer file missing"):
        tokenizer.gpt2_files(tmp_path)
