"""TinyStories, split the same way for every stage: from the slice the course ships, a folder, or the hub.

By default the corpus is the slice shipped in ``lil_transformy/tinystories/`` (its README gives
the source, licence and hashes), so a fresh clone works offline. ``$LIL_TRANSFORMY_DATA`` (or
``--data``) names another folder of the same layout, or ``hub`` for the Hugging Face hub:

- ``train-head.jsonl``: the first stories of the ``train`` split, one ``{"text": ...}`` a line;
- ``validation-head.txt``: the first stories of the ``validation`` split as plain text, paragraphs
  and stories both separated by a blank line (story boundaries are not marked).

The split (fixed, documented, the same for every stage):

- **train**: every story of ``train-head.jsonl``, then the first 80 % of the paragraphs of
  ``validation-head.txt`` as one document;
- **held out**: the last 20 % of those paragraphs, as one document.

Text is used as the dataset has it: nothing is cleaned.
"""
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import DATA_ENV, HUB, cache_dir

TRAIN_FILE = "train-head.jsonl"
VALIDATION_FILE = "validation-head.txt"
HELDOUT_FRACTION = 0.2
BUNDLED = Path(__file__).resolve().parent / "tinystories"  # the default corpus, shipped with the course
HUB_DATASET = "roneneldan/TinyStories"
HUB_TRAIN_STORIES = 245  # the size of the offline slice, so both sources give the same shape
HUB_VALIDATION_CHARS = 793_451


@dataclass(frozen=True)
class Corpus:
    train: list[str]  # documents; an end-of-story token follows each one
    heldout: list[str]
    source: str  # where the text came from, for reports


def load_corpus(data_dir: str | os.PathLike | None = None) -> Corpus:
    """The corpus from ``data_dir``, else ``$LIL_TRANSFORMY_DATA``, else the shipped slice.

    Either may say ``hub``: the same amount of text from the Hugging Face hub, downloaded once and cached.
    """
    source = str(data_dir or os.environ.get(DATA_ENV) or BUNDLED)
    if source != HUB:
        return read_folder(Path(source).expanduser().resolve())
    hub_copy = cache_dir() / "tinystories-hub"
    if not (hub_copy / TRAIN_FILE).exists():
        download_from_hub(hub_copy)
    return read_folder(hub_copy)


def read_folder(folder: Path) -> Corpus:
    if not folder.is_dir():
        raise LilTransformyError(f"data folder {folder} does not exist: point {DATA_ENV} (or --data) "
                                 f"at a folder holding {TRAIN_FILE} and {VALIDATION_FILE}, or unset it "
                                 f"to use the slice the course ships")
    stories = read_stories(folder / TRAIN_FILE)
    try:
        validation_text = (folder / VALIDATION_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        raise LilTransformyError(f"cannot read {folder / VALIDATION_FILE}: {error}") from None
    return split(stories, validation_text, source=str(folder))


def read_stories(path: Path) -> list[str]:
    """Every story of a ``{"text": ...}``-a-line file; a bad line is named by its number."""
    stories = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    stories.append(json.loads(line)["text"])
                except (ValueError, KeyError, TypeError) as error:
                    raise LilTransformyError(f"cannot read {path}, line {number}: expected one JSON object "
                                             f'{{"text": ...}} a line ({type(error).__name__}: {error})') from None
    except (OSError, UnicodeDecodeError) as error:
        raise LilTransformyError(f"cannot read {path}: {error}") from None
    return stories


def split(stories: list[str], validation_text: str, source: str) -> Corpus:
    if not stories:
        raise LilTransformyError(f"the data in {source} is too small to split")
    train_part, heldout = split_validation(validation_text, source)
    return Corpus(train=stories + [train_part], heldout=[heldout], source=source)


def split_validation(validation_text: str, source: str) -> tuple[str, str]:
    """The first 80 % of the paragraphs (a training document) and the last 20 % (the held-out document)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", validation_text) if p.strip()]
    n_train = round(len(paragraphs) * (1 - HELDOUT_FRACTION))
    if n_train == 0 or n_train == len(paragraphs):
        raise LilTransformyError(f"the data in {source} is too small to split")
    return "\n\n".join(paragraphs[:n_train]), "\n\n".join(paragraphs[n_train:])


def datasets_library():
    """Hugging Face `datasets`, which only the hub and the full-scale preset need (the `full` extra)."""
    try:
        import datasets
    except ImportError:
        raise LilTransformyError("reading TinyStories from the hub needs the `datasets` package: "
                                 "pip install 'lil-transformy[full]' (from a clone: pip install -e '.[full]')") from None
    return datasets


def download_from_hub(folder: Path) -> None:
    """Write the hub's first stories in the offline folder's layout, so both are read by one path."""
    load_dataset = datasets_library().load_dataset
    try:
        train = load_dataset(HUB_DATASET, split="train", streaming=True).take(HUB_TRAIN_STORIES)
        validation = load_dataset(HUB_DATASET, split="validation", streaming=True)
        parts, size = [], 0
        for row in validation:
            parts.append(row["text"])
            size += len(row["text"]) + 2
            if size >= HUB_VALIDATION_CHARS:
                break
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (TRAIN_FILE + ".part")
        tmp.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in train), encoding="utf-8")
        (folder / VALIDATION_FILE).write_text("\n\n".join(parts)[:HUB_VALIDATION_CHARS], encoding="utf-8")
        tmp.rename(folder / TRAIN_FILE)  # last, so a half-written copy is never taken for a whole one
    except Exception as error:  # no network, no hub, no datasets: all end the same way
        raise LilTransformyError(
            f"TinyStories is not reachable on the hub ({type(error).__name__}). Unset {DATA_ENV} (or drop "
            f"--data hub) to use the slice the course ships, point it at a folder with {TRAIN_FILE} and "
            f"{VALIDATION_FILE}, or run once where huggingface.co is reachable so the stories are cached") from None
