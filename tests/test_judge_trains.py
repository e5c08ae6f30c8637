"""The judge trains (grading/trainer.py): its training is train()'s, and a student's module cannot train longer,
harder or differently.

The first test drives a short training of each kind of stage through the judge, the student's model in a child
process, and compares the weights with train()'s on the same batches. The rest grade forgeries as `course grade`
grades them (tests/test_forgeries.py holds them with the other forgeries, graded in one class).
"""
import contextlib
import shutil
from dataclasses import replace

import pytest
import torch

from lil_transformy.course import stage_modules
from lil_transformy.errors import LilTransformyError
from lil_transformy.grading import sandbox
from lil_transformy.grading.remote import Remote
from lil_transformy.grading.trainer import FORGED, judge_trains
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage, load_stage_module
from lil_transformy.train import SHARED, train

SHORT = replace(SHARED, steps=30)


@contextlib.contextmanager
def children(folder, tmp_path):
    """judge_trains' fresh_children: child processes (no sandbox) holding the modules of `folder`, closed after."""
    remotes: list[Remote] = []

    def fresh_children(n: int) -> list[Remote]:
        started = []
        for _ in range(n):
            scratch = tmp_path / f"child{len(remotes)}"
            shutil.copytree(folder, scratch)
            remotes.append(Remote(sandbox.plain_child(scratch, torch.get_num_threads()), str(tmp_path / "log")))
            started.append(remotes[-1])
        return started
    try:
        yield fresh_children
    finally:
        for remote in remotes:
            remote.close()


def stage_folder(number: str, tmp_path, module_text: str | None = None):
    folder = tmp_path / "submission"
    folder.mkdir()
    for module in stage_modules(get_stage(number)):
        shutil.copy(REPO_ROOT / "solutions" / module, folder)
    if module_text is not None:
        (folder / f"{get_stage(number).module}.py").write_text(module_text)
    return folder


@pytest.mark.parametrize("number", ["01", "05", "09"])
def test_the_judge_trains_exactly_as_train_does(number, token_data, tmp_path):
    model_class = getattr(load_stage_module(number, "solutions"), get_stage(number).model)
    own = train(model_class, token_data, SHORT, progress=False, score=False).model.state_dict()
    with children(stage_folder(number, tmp_path), tmp_path) as started:
        models = judge_trains(started, number, token_data.train, token_data.vocab.size, torch.Generator().manual_seed(0),
                              SHORT)
        for model in models:  # both scorers hold what train() would have trained
            judged = model.state_dict()
            assert judged.keys() == own.keys()
            for key, value in own.items():
                assert torch.equal(judged[key], value), f"{key} differs after {SHORT.steps} steps"


def trained_and_checked(folder, token_data, tmp_path, seed: int = 0) -> None:
    """Stage 05 from `folder` trained by the judge (SHORT), its secret step checked."""
    with children(folder, tmp_path) as started:
        judge_trains(started, "05", token_data.train, token_data.vocab.size, torch.Generator().manual_seed(seed), SHORT)


FORWARD = "    def forward(self, idx: torch.Tensor) -> torch.Tensor:\n"
# State kept between calls: a gradient hook added at every call, never removed (step k's gradient is 1.1**k the
# true one). tests/test_forgeries.py grades another, momentum in hooks, in a class.
PILES_UP_HOOKS = (FORWARD, FORWARD + """        if self.training and torch.is_grad_enabled():
            for p in self.parameters():
                p.register_hook(lambda grad: 1.1 * grad)
""")
STRAIGHT_THROUGH = ("        return self.unembed(x)  # (batch, seq, vocab)\n", """        logits = self.unembed(x)  # (batch, seq, vocab)
        return logits + (logits - logits.detach())  # the value is honest; the gradient twice the true one
""")


@pytest.mark.parametrize("cheat, found_by", [("piles_up_hooks", "a fresh process"), ("straight_through", "along a direction")])
def test_gradients_that_are_not_the_forwards_own_are_named(cheat, found_by, token_data, tmp_path):
    text = (REPO_ROOT / "solutions" / "stage_05_attention_positions.py").read_text()
    old, new = PILES_UP_HOOKS if cheat == "piles_up_hooks" else STRAIGHT_THROUGH
    assert old in text
    folder = stage_folder("05", tmp_path, text.replace(old, new))
    with pytest.raises(LilTransformyError, match=FORGED) as forged:
        trained_and_checked(folder, token_data, tmp_path, seed=1)  # seed 1 checks a step after the first
    assert found_by in str(forged.value)


def test_an_honest_model_passes_the_check(token_data, tmp_path):
    trained_and_checked(stage_folder("05", tmp_path), token_data, tmp_path)
