"""The course's truncated vocabulary, built by stage 00's reference solution (one implementation)."""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from solutions import stage_00_data as stage00

from . import tokenizer
from .errors import LilTransformyError

COVERAGE = 0.99
UNKNOWN_TEXT = "⁇"  # how an <unk> id reads when decoded


@dataclass
class Vocabulary:
    new_to_gpt2: np.ndarray  # (size,) the GPT-2 id of every new id; -1 for <unk>
    coverage: float  # the share of the training tokens the vocabulary covers
    gpt2_to_new: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.new_to_gpt2 = np.asarray(self.new_to_gpt2, dtype=np.int64)
        self.gpt2_to_new = np.full(tokenizer.GPT2_VOCAB_SIZE, stage00.UNKNOWN_ID, dtype=np.int64)
        kept = self.new_to_gpt2 >= 0
        self.gpt2_to_new[self.new_to_gpt2[kept]] = np.flatnonzero(kept)

    @property
    def size(self) -> int:
        return len(self.new_to_gpt2)

    @classmethod
    def build(cls, train_gpt2_ids: np.ndarray, coverage: float = COVERAGE) -> "Vocabulary":
        """The smallest set of most frequent tokens covering `coverage` of the training tokens."""
        counts = stage00.count_tokens(train_gpt2_ids, tokenizer.GPT2_VOCAB_SIZE)
        n_keep = stage00.smallest_vocab_for_coverage(counts, coverage)
        new_to_gpt2, _ = stage00.build_id_maps(counts, n_keep, tokenizer.END_OF_TEXT_ID)
        covered = counts[new_to_gpt2[1:]].sum() / counts.sum()
        return cls(new_to_gpt2, float(covered))

    def encode_gpt2(self, gpt2_ids) -> np.ndarray:
        return stage00.encode_with_unknowns(np.asarray(gpt2_ids, dtype=np.int64), self.gpt2_to_new)

    def encode(self, text: str) -> np.ndarray:
        return self.encode_gpt2(tokenizer.encode(text))

    def decode(self, ids) -> str:
        """Exact for ids without <unk>; each <unk> reads as ⁇."""
        pieces, run = [], []
        for new_id in np.asarray(ids).tolist():
            if new_id == stage00.UNKNOWN_ID:
                pieces += [tokenizer.decode(run), UNKNOWN_TEXT]
                run = []
            else:
                run.append(int(self.new_to_gpt2[new_id]))
        return "".join(pieces) + tokenizer.decode(run)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"coverage": self.coverage, "unknown_id": stage00.UNKNOWN_ID,
                                    "end_of_story_id": stage00.END_OF_STORY_ID,
                                    "gpt2_ids": self.new_to_gpt2.tolist()}))

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        try:
            saved = json.loads(Path(path).read_text())
            return cls(np.array(saved["gpt2_ids"]), saved["coverage"])
        except (OSError, ValueError, KeyError) as error:
            raise LilTransformyError(f"cannot read the vocabulary {path}: {error}") from None
