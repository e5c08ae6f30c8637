"""The corpus as token ids in the course's vocabulary: what every stage trains on (cached)."""
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from lil_transformy import tokenizer
from lil_transformy.data import Corpus, load_corpus
from lil_transformy.paths import cache_dir
from lil_transformy.vocab import COVERAGE, Vocabulary

CACHE_VERSION = "1"  # bump when the way tokens are made changes


@dataclass
class TokenData:
    vocab: Vocabulary
    train: torch.Tensor  # (n_train_tokens,) new ids, int64
    heldout: torch.Tensor  # (n_heldout_tokens,)
    source: str
    fingerprint: str  # identifies the text, tokenizer and vocabulary: equal fingerprints, equal data


def gpt2_stream(documents: list[str], dtype=np.int64) -> np.ndarray:
    """GPT-2 ids of every document, each followed by <|endoftext|> (encoded in parallel across cores)."""
    encoded = tokenizer.gpt2_tokenizer().encode_batch(documents)
    return np.concatenate([np.array(e.ids + [tokenizer.END_OF_TEXT_ID], dtype=dtype) for e in encoded])


def load_token_data(data_dir=None, coverage: float = COVERAGE) -> TokenData:
    corpus = load_corpus(data_dir)
    fingerprint = corpus_fingerprint(corpus, coverage)
    folder = cache_dir() / f"tokens-{fingerprint}"
    if not (folder / "done").exists():
        train_gpt2 = gpt2_stream(corpus.train)
        vocab = Vocabulary.for_training_tokens(train_gpt2, coverage)
        folder.mkdir(parents=True, exist_ok=True)
        vocab.save(folder / "vocab.json")
        np.save(folder / "train.npy", vocab.encode_gpt2(train_gpt2))
        np.save(folder / "heldout.npy", vocab.encode_gpt2(gpt2_stream(corpus.heldout)))
        (folder / "done").touch()  # written last: a half-written cache is rebuilt, never read
    return TokenData(vocab=Vocabulary.load(folder / "vocab.json"),
                     train=torch.from_numpy(np.load(folder / "train.npy")),
                     heldout=torch.from_numpy(np.load(folder / "heldout.npy")),
                     source=corpus.source, fingerprint=fingerprint)


def corpus_fingerprint(corpus: Corpus, coverage: float) -> str:
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, coverage, tokenizer.SHA256,
                                        corpus.train, corpus.heldout]).encode())
    return digest.hexdigest()[:16]


# The same words in another order, ending on the same token: only word order tells them apart.
WORD_ORDER_PAIR = ("The girl saw the dog.", "The dog saw the girl.")


def word_order_pair(vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """WORD_ORDER_PAIR as two (1, seq) id tensors."""
    a, b = (torch.as_tensor(vocab.encode(text)).unsqueeze(0) for text in WORD_ORDER_PAIR)
    return a, b
