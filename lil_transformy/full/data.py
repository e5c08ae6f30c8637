"""All of TinyStories as memory-mapped token ids: the full preset's data (the course's slice stays in tokens.py).

The split is the course's rule scaled up (data.split_validation): training = every story of the
dataset's ``train`` split, then the first 80 % of the paragraphs of its ``validation`` split (stories
joined by blank lines, as ``validation-head.txt``) as one document; held out = the last 20 %.
The dataset is read by ``datasets.load_dataset(dataset)``: the hub's ``roneneldan/TinyStories``
(downloaded once into the cache; an interrupted download resumes), or a folder in its format (``train``
and ``validation`` files of ``{"text": ...}`` rows), which the tests use.

~470 M tokens: GPT-2's BPE from tokenizer.py's verified files, run by ``tokenizers`` directly on
batches of stories (encoded in parallel on every core), written once as uint16 files read through
``np.memmap``, so the corpus is never in memory and a batch reads only its windows. The vocabulary is
recomputed for the full corpus (stage 00's rule, the same coverage), counted chunk by chunk.
"""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lil_transformy import tokenizer
from lil_transformy.data import HUB_DATASET, datasets_library, split_validation
from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import cache_dir
from lil_transformy.tokens import gpt2_stream
from lil_transformy.vocab import COVERAGE, Vocabulary

FULL_DATASET = HUB_DATASET  # the hub's TinyStories, all of it
CACHE_VERSION = "1"  # bump when the way the full corpus's tokens are made changes
STORIES_PER_BATCH = 8192  # one encode_batch: enough stories to keep every core busy
CHUNK_TOKENS = 1 << 24  # ids mapped to the course's vocabulary per pass (128 MiB as int64)


@dataclass
class FullData:
    vocab: Vocabulary
    train: np.ndarray  # (n_train_tokens,) new ids, uint16, memory-mapped: only what a batch reads is loaded
    heldout: torch.Tensor  # (n_heldout_tokens,) new ids, int64: about a million tokens, scored whole
    unigram_loss: float  # the held-out loss of predicting the training frequencies (add-one smoothed)
    source: str
    fingerprint: str


def load_splits(dataset: str):
    load_dataset = datasets_library().load_dataset
    try:
        return load_dataset(dataset, cache_dir=str(cache_dir() / "datasets"))
    except Exception as error:  # no network, no hub, a folder in another layout: all end the same way
        raise LilTransformyError(
            f"cannot load the dataset {dataset!r} ({type(error).__name__}: {error}). The full preset downloads "
            f"{FULL_DATASET} once (about 1 GB) where huggingface.co is reachable, or reads a folder of "
            f"train and validation files of {{\"text\": ...}} rows") from None


def load_full_data(dataset: str = FULL_DATASET, coverage: float = COVERAGE) -> FullData:
    """The full corpus's tokens, made once and cached; later calls only map the files."""
    splits = load_splits(dataset)
    fingerprint = hashlib.sha256(json.dumps([CACHE_VERSION, dataset, coverage, tokenizer.SHA256,
                                             splits["train"]._fingerprint,  # datasets' hash of the data files
                                             splits["validation"]._fingerprint]).encode()).hexdigest()[:16]
    folder = cache_dir() / f"full-{fingerprint}"
    if not (folder / "done").exists():
        prepare(splits, folder, coverage, dataset)
    meta = json.loads((folder / "meta.json").read_text())
    return FullData(vocab=Vocabulary.load(folder / "vocab.json"),
                    train=np.memmap(folder / "train.bin", dtype=np.uint16, mode="c"),  # "c": never written back
                    heldout=torch.from_numpy(np.fromfile(folder / "heldout.bin", dtype=np.uint16).astype(np.int64)),
                    unigram_loss=meta["unigram_loss"], source=dataset, fingerprint=fingerprint)


def prepare(splits, folder: Path, coverage: float, dataset: str) -> None:
    """Tokenize (GPT-2 ids, counted as they come), build the vocabulary, map both splits to it."""
    folder.mkdir(parents=True, exist_ok=True)
    validation_train, heldout = split_validation("\n\n".join(splits["validation"]["text"]), dataset)
    counts = np.zeros(tokenizer.GPT2_VOCAB_SIZE, dtype=np.int64)  # (50257,) over the training tokens
    batches = splits["train"].iter(batch_size=STORIES_PER_BATCH)
    with open(folder / "gpt2-train.bin", "wb") as out:
        n_batches = -(-len(splits["train"]) // STORIES_PER_BATCH)
        for batch in tqdm(batches, desc="tokenizing", unit="batch", total=n_batches):
            ids = gpt2_stream(batch["text"], np.uint16)
            counts += np.bincount(ids, minlength=tokenizer.GPT2_VOCAB_SIZE)
            out.write(ids.tobytes())
        ids = gpt2_stream([validation_train], np.uint16)
        counts += np.bincount(ids, minlength=tokenizer.GPT2_VOCAB_SIZE)
        out.write(ids.tobytes())
    vocab = Vocabulary.from_counts(counts, coverage)
    vocab.save(folder / "vocab.json")
    gpt2_train = np.memmap(folder / "gpt2-train.bin", dtype=np.uint16, mode="r")
    with open(folder / "train.bin", "wb") as out:
        out.writelines(vocab.encode_gpt2(gpt2_train[first: first + CHUNK_TOKENS]).astype(np.uint16).tobytes()
                       for first in range(0, len(gpt2_train), CHUNK_TOKENS))
    del gpt2_train
    (folder / "gpt2-train.bin").unlink()  # 1 GB no longer needed
    heldout_ids = vocab.encode_gpt2(gpt2_stream([heldout], np.uint16))
    heldout_ids.astype(np.uint16).tofile(folder / "heldout.bin")
    train_counts = np.bincount(vocab.gpt2_to_new, weights=counts, minlength=vocab.size) + 1  # (vocab,) add-one
    unigram = float(-np.log(train_counts / train_counts.sum())[heldout_ids].mean())
    (folder / "meta.json").write_text(json.dumps({"unigram_loss": unigram, "train_tokens": int(counts.sum()),
                                                  "heldout_tokens": len(heldout_ids)}))
    (folder / "done").touch()  # written last: a half-made folder is made again, never read
