"""The course's truncated vocabulary, built by stage 00's reference solution (one implementation).

The library never imports the reference solutions at run time (a student's code, or the grader's
child, must not find them): the vocabulary of the corpus the course ships is a data file,
``tinystories/vocab.json``, made by stage 00's reference (a test proves it still is). Only another
corpus (``--data``) builds its vocabulary with the reference, on the maintainer's machine.
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lil_transformy import tokenizer
from lil_transformy.errors import LilTransformyError

COVERAGE = 0.99
UNKNOWN_TEXT = "⁇"  # how an <unk> id reads when decoded
UNKNOWN_ID = 0  # stage 00's ids for <unk> and the end of a story (tests/test_vocab.py: they are the reference's)
END_OF_STORY_ID = 1
SHIPPED = Path(__file__).resolve().parent / "tinystories" / "vocab.json"  # the shipped corpus's vocabulary


@dataclass
class Vocabulary:
    new_to_gpt2: np.ndarray  # (size,) the GPT-2 id of every new id; -1 for <unk>
    coverage: float  # the share of the training tokens the vocabulary covers
    gpt2_to_new: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.new_to_gpt2 = np.asarray(self.new_to_gpt2, dtype=np.int64)
        self.gpt2_to_new = np.full(tokenizer.GPT2_VOCAB_SIZE, UNKNOWN_ID, dtype=np.int64)
        kept = self.new_to_gpt2 >= 0
        self.gpt2_to_new[self.new_to_gpt2[kept]] = np.flatnonzero(kept)

    @property
    def size(self) -> int:
        return len(self.new_to_gpt2)

    @classmethod
    def for_training_tokens(cls, train_gpt2_ids: np.ndarray, coverage: float = COVERAGE) -> "Vocabulary":
        """The shipped vocabulary when these are the shipped corpus's tokens, else `build` it."""
        if SHIPPED.exists():
            saved = json.loads(SHIPPED.read_text())
            if saved.get("tokens_sha256") == tokens_sha256(train_gpt2_ids, coverage):
                return cls(np.array(saved["gpt2_ids"]), saved["coverage"])
        return cls.build(train_gpt2_ids, coverage)

    @classmethod
    def build(cls, train_gpt2_ids: np.ndarray, coverage: float = COVERAGE) -> "Vocabulary":
        """The smallest set of most frequent tokens covering `coverage` of the training tokens (stage 00's reference)."""
        from lil_transformy.stages import load_stage_module

        stage00 = load_stage_module("00", "solutions")
        return cls.from_counts(stage00.count_tokens(train_gpt2_ids, tokenizer.GPT2_VOCAB_SIZE), coverage)

    @classmethod
    def from_counts(cls, counts: np.ndarray, coverage: float = COVERAGE) -> "Vocabulary":
        """`build` from the count of every GPT-2 id, (50257,): the full corpus is counted in chunks, never held whole."""
        from lil_transformy.stages import load_stage_module

        stage00 = load_stage_module("00", "solutions")
        n_keep = stage00.smallest_vocab_for_coverage(counts, coverage)
        new_to_gpt2, _ = stage00.build_id_maps(counts, n_keep, tokenizer.END_OF_TEXT_ID)
        covered = counts[new_to_gpt2[1:]].sum() / counts.sum()
        return cls(new_to_gpt2, float(covered))

    def encode_gpt2(self, gpt2_ids) -> np.ndarray:
        return self.gpt2_to_new[np.asarray(gpt2_ids, dtype=np.int64)]  # a dropped token is UNKNOWN_ID

    def encode(self, text: str) -> np.ndarray:
        return self.encode_gpt2(tokenizer.encode(text))

    def decode(self, ids) -> str:
        """Exact for ids without <unk>; each <unk> reads as ⁇."""
        pieces: list[str] = []
        run: list[int] = []
        for new_id in np.asarray(ids).tolist():
            if new_id == UNKNOWN_ID:
                pieces += [tokenizer.decode(run), UNKNOWN_TEXT]
                run = []
            else:
                run.append(int(self.new_to_gpt2[new_id]))
        return "".join(pieces) + tokenizer.decode(run)

    def save(self, path: Path, tokens_sha256: str | None = None) -> None:
        path.write_text(json.dumps({"coverage": self.coverage, "unknown_id": UNKNOWN_ID,
                                    "end_of_story_id": END_OF_STORY_ID, "tokens_sha256": tokens_sha256,
                                    "gpt2_ids": self.new_to_gpt2.tolist()}))

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        try:
            saved = json.loads(Path(path).read_text())
            return cls(np.array(saved["gpt2_ids"]), saved["coverage"])
        except (OSError, ValueError, KeyError) as error:
            raise LilTransformyError(f"cannot read the vocabulary {path}: {error}") from None


def tokens_sha256(train_gpt2_ids: np.ndarray, coverage: float) -> str:
    """Identifies the training tokens a vocabulary was built from."""
    digest = hashlib.sha256(np.asarray(train_gpt2_ids, dtype=np.int64).tobytes())
    digest.update(repr(coverage).encode())
    return digest.hexdigest()
