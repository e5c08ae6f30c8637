import math
from dataclasses import replace

import pytest
import torch

from lil_transformy.errors import LilTransformyError
from lil_transformy.sampling import generate
from lil_transformy.stages import model_class
from lil_transformy.train import SHARED, evaluate, learning_rate, parameter_groups, train

QUICK = replace(SHARED, steps=20, warmup_steps=5, eval_every=10)


def test_training_is_seeded_and_deterministic(token_data):
    bigram = model_class("03", "solutions")
    first, again = (train(bigram, token_data, QUICK, progress=False) for _ in range(2))
    other_seed = train(bigram, token_data, replace(QUICK, seed=1), progress=False)
    assert first.val_loss == again.val_loss
    assert first.val_loss != other_seed.val_loss
    assert first.history["step"] == [10, 20] and len(first.history["probe_loss"]) == 2
    assert first.val_loss < 8.0  # below a uniform guess over 3.4k ids (8.14)


def test_an_unscored_run_trains_the_same_model(token_data):
    """The loss check trains without the probe curve and held-out loss (it scores the model itself): same weights."""
    bigram = model_class("03", "solutions")
    scored, unscored = (train(bigram, token_data, QUICK, progress=False, score=s) for s in (True, False))
    assert unscored.val_loss is None and unscored.history["probe_loss"] == []
    assert all(torch.equal(a, b) for a, b in zip(scored.model.state_dict().values(),
                                                 unscored.model.state_dict().values(), strict=True))


def test_every_seed_trains_on_the_same_batches(token_data, monkeypatch):
    """A check trains a student's model on seed 0's batches: the reference seeds may vary only the initial weights."""
    import lil_transformy.train as training
    seen = []

    def recording_windows(ids, cfg, generator):
        x, y = windows(ids, cfg, generator)
        seen[-1].append(x)
        return x, y
    windows = training.random_windows
    monkeypatch.setattr(training, "random_windows", recording_windows)
    for seed in (0, 1):
        seen.append([])
        train(model_class("03", "solutions"), token_data, replace(QUICK, seed=seed), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(*seen, strict=True))


def test_held_out_loss_scores_every_token_once_from_a_mostly_full_window():
    """A fake model that knows each next token, but only from position `context - eval_stride` of its window on:
    the held-out loss is then log(vocab) on exactly the first window's earlier positions, 0 on every other token."""
    cfg = replace(SHARED, context=8, eval_stride=2, batch_size=3)
    ids = torch.arange(41)  # distinct tokens: the next token after t is t + 1
    vocab = len(ids) + 1

    def knows_the_next_token_late(idx):  # (batch, seq) -> (batch, seq, vocab)
        logits = torch.zeros(*idx.shape, vocab)
        late = idx[:, cfg.context - cfg.eval_stride:]  # (batch, eval_stride)
        logits[:, cfg.context - cfg.eval_stride:].scatter_(-1, (late + 1).unsqueeze(-1), 1e4)
        return logits

    n_windows = len(range(0, len(ids) - cfg.context, cfg.eval_stride))  # 17: starts 0, 2, ..., 32
    scored = cfg.context + (n_windows - 1) * cfg.eval_stride  # 40: every next token of ids, once
    early = cfg.context - cfg.eval_stride  # the first window's positions 0-5, scored from short histories
    assert scored == len(ids) - 1
    assert evaluate(knows_the_next_token_late, ids, cfg) == pytest.approx(early * math.log(vocab) / scored)
    with pytest.raises(LilTransformyError, match="eval_stride must be 1 to context"):
        evaluate(knows_the_next_token_late, ids, replace(cfg, eval_stride=9))


def test_decay_matrices_spares_biases_and_layernorm():
    cfg = replace(SHARED, vocab_size=50, decay="matrices")
    model = model_class("07", "solutions")(cfg)
    decayed, spared = parameter_groups(model, cfg)
    spared_ids = {id(p) for p in spared["params"]}
    for name, module in model.named_modules():
        for kind, p in module.named_parameters(recurse=False):
            kept = isinstance(module, torch.nn.LayerNorm) or kind == "bias"
            assert (id(p) in spared_ids) == kept, f"{name}.{kind}"
    assert decayed["weight_decay"] == cfg.weight_decay and spared["weight_decay"] == 0.0
    everything, = parameter_groups(model, SHARED)
    assert len(everything["params"]) == len(decayed["params"]) + len(spared["params"])
    with pytest.raises(LilTransformyError, match="unknown decay"):
        parameter_groups(model, replace(cfg, decay="some"))


def test_schedule_warms_up_then_decays_to_zero():
    cfg = replace(SHARED, steps=100, warmup_steps=10, lr=1.0)
    assert learning_rate(0, cfg) == pytest.approx(0.1)
    assert learning_rate(10, cfg) == pytest.approx(1.0)
    assert learning_rate(99, cfg) < 0.01


def test_wrong_logits_shape_is_a_clear_error(token_data):
    class Flat(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.w = torch.nn.Linear(1, cfg.vocab_size)

        def forward(self, idx):
            return self.w(idx[:, -1:].float())  # (batch, vocab): forgot the sequence

    batch, seq = QUICK.batch_size, QUICK.context
    with pytest.raises(LilTransformyError, match=rf"logits of shape \(batch, seq, vocab\) = \({batch}, {seq}, vocab\), "
                                                 rf"but returned \({batch}, 3433\)"):
        train(Flat, token_data, QUICK, progress=False)


def test_nan_loss_is_a_clear_error(token_data):
    class Broken(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.emb = torch.nn.Embedding(cfg.vocab_size, cfg.vocab_size)

        def forward(self, idx):
            return self.emb(idx) / 0.0

    with pytest.raises(LilTransformyError, match="the loss became nan at step 0"):
        train(Broken, token_data, QUICK, progress=False)


def test_generation_never_feeds_more_than_the_context():
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(5))

        def forward(self, idx):
            seen.append(idx.size(1))
            return self.w.expand(idx.size(0), idx.size(1), 5)

    out = generate(Recorder(), torch.zeros(1, 3, dtype=torch.long), new_tokens=10, context=4)
    assert out.shape == (1, 13) and max(seen) == 4


def test_targets_are_the_next_tokens():
    from lil_transformy.train import random_windows

    ids = torch.arange(100)
    x, y = random_windows(ids, replace(SHARED, batch_size=4, context=8), torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)  # each target is the token after its input
