"""The full preset on this machine: a local folder in the hub dataset's format stands in for the hub, a tiny
override of FULL's sizes for its budget, the CPU for the GPU."""
import hashlib
import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from lil_transformy import data, tokens
from lil_transformy.cli import main
from lil_transformy.errors import LilTransformyError
from lil_transformy.full import scale as full_scale
from lil_transformy.full.data import load_full_data
from lil_transformy.full.report import SEED_LOSS, evolve_full
from lil_transformy.full.scale import FULL, train_full
from lil_transformy.stages import model_class, parse_stages
from lil_transformy.tokenizer import gpt2_tokenizer

TINY = replace(FULL, d_model=32, context=32, batch_size=8, steps=24, warmup_steps=4, eval_every=12, eval_stride=16,
               device="cpu")

REFERENCE_STREAM_SHA256 = "efd0f2105cb678d8d36bc0d564d787b94a5dd4e7613a996b540187482b1ce181"


@pytest.fixture(scope="module")
def shipped_as_dataset(tmp_path_factory):
    """The shipped slice in the hub's format: its stories as the train split, its paragraphs as validation rows."""
    folder = tmp_path_factory.mktemp("tinystories")
    validation = re.split(r"\n\s*\n", (data.BUNDLED / data.VALIDATION_FILE).read_text(encoding="utf-8"))
    for name, rows in (("train", data.read_stories(data.BUNDLED / data.TRAIN_FILE)),
                       ("validation", [p for p in validation if p.strip()])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    return str(folder)


@pytest.fixture(scope="module")
def full_data(shipped_as_dataset, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIL_TRANSFORMY_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.setattr("datasets.config.HF_HUB_OFFLINE", True)  # a folder: nothing to fetch, and nothing may be
        yield load_full_data(shipped_as_dataset)


def test_the_fast_tokenizer_gives_the_ids_the_reference_was_made_with():
    """The slice's whole id stream, hashed as transformers' GPT2TokenizerFast (the course's tokenizer until it was
    replaced by `tokenizers` alone) gave it when the reference report was made: not one id moved."""
    corpus = data.load_corpus(data.BUNDLED)
    stream = tokens.gpt2_stream(corpus.train + corpus.heldout)
    assert len(stream) == 243_548
    assert hashlib.sha256(stream.tobytes()).hexdigest() == REFERENCE_STREAM_SHA256
    assert gpt2_tokenizer().encode("a <|endoftext|> b").ids == [64, 220, 50256, 275]


def test_the_full_pipeline_on_the_slice_gives_the_courses_tokens_split_and_vocabulary(full_data, token_data):
    """Through datasets, the fast tokenizer, the chunked counts and the memmap: the same ids as the course's path."""
    assert isinstance(full_data.train, np.memmap) and full_data.train.dtype == np.uint16
    assert np.array_equal(full_data.vocab.new_to_gpt2, token_data.vocab.new_to_gpt2)
    assert np.array_equal(full_data.train, token_data.train.numpy())
    assert torch.equal(full_data.heldout, token_data.heldout)
    counts = torch.bincount(token_data.train, minlength=token_data.vocab.size).double() + 1
    assert full_data.unigram_loss == pytest.approx(float(-(counts / counts.sum()).log()[token_data.heldout].mean()))


@pytest.mark.training
def test_a_resumed_stage_ends_bit_identical_to_one_that_ran_through(full_data, tmp_path, monkeypatch):
    stage09 = model_class("09", "solutions")
    through = train_full(stage09, full_data, TINY, tmp_path / "through.pt", checkpoint_every=8, progress=False)
    calls = []

    def interrupted_after_13_steps(*args):
        calls.append(1)
        if len(calls) > 13:
            raise KeyboardInterrupt
        return windows(*args)
    windows = full_scale.random_windows
    monkeypatch.setattr(full_scale, "random_windows", interrupted_after_13_steps)
    with pytest.raises(KeyboardInterrupt):
        train_full(stage09, full_data, TINY, tmp_path / "resumed.pt", checkpoint_every=8, progress=False)
    assert torch.load(tmp_path / "resumed.pt", weights_only=True)["step"] == 8
    monkeypatch.setattr(full_scale, "random_windows", windows)
    resumed = train_full(stage09, full_data, TINY, tmp_path / "resumed.pt", checkpoint_every=8, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(through.model.state_dict().values(),
                                                 resumed.model.state_dict().values(), strict=True))
    assert resumed.val_loss == through.val_loss and resumed.history == through.history
    with pytest.raises(LilTransformyError, match="made with another configuration or data: delete it"):
        train_full(stage09, full_data, replace(TINY, lr=1e-3), tmp_path / "resumed.pt", progress=False)


@pytest.mark.training
def test_the_full_evolution_runs_end_to_end_and_reports_beside_the_seed(full_data, shipped_as_dataset, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setattr("lil_transformy.full.report.load_full_data", lambda dataset: full_data)
    report = evolve_full(parse_stages("01-09", detours=True), [0], tmp_path, cfg=TINY, dataset=shipped_as_dataset)
    assert list(report["stages"]) == list(SEED_LOSS) == ["01", "02", "03", "03b", "04", "05", "06", "07", "08", "09"]
    table = (tmp_path / "evolution.md").read_text()
    assert "| seed loss | seed ppl | our loss | our ppl | ours - seed |" in table
    assert "| 09 | multi-head | 2.116 | 8.3 |" in table
    assert (tmp_path / "evolution.png").stat().st_size > 0
    assert all(s["history"]["step"] == [12, 24] and s["sample"] for s in report["stages"].values())


@pytest.mark.training
def test_train_preset_full_on_the_command_line(full_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("lil_transformy.full.data.load_full_data", lambda dataset: full_data)
    monkeypatch.setattr(full_scale, "FULL", TINY)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "03", "--preset", "full", "--impl", "solutions"]) == 0
    assert "full preset: held-out loss" in capsys.readouterr().out
    assert torch.load(tmp_path / "runs/full/checkpoints/stage_03-seed0.pt", weights_only=True)["step"] == TINY.steps
