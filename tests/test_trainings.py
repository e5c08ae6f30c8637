"""One training per stage version (lil_transformy/trainings.py): the notebook, `lil-transformy train` and the loss
check share it; it survives edits of other stages and other implementation folders; quick mode never touches it; and
the loss check selected alone (`-k loss_on_the_ladder`) still does not train code whose fast checks fail.

In this process the shared budget is shrunk to a few steps (the caching is the same for any budget); the subprocess
tests use the real one.
"""
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from lil_transformy.checks import model_checks
from test_student_loop import run_stage

from lil_transformy import cli, notebook, progress, trainings
from lil_transformy.authoring.mutants import apply, named
from lil_transformy.paths import CACHE_ENV, REPO_ROOT
from lil_transformy.train import SHARED

pytestmark = pytest.mark.timeout(600)  # a few short trainings; minutes on a busy machine


@pytest.fixture
def data(token_data):
    """The corpus with its first 2,048 held-out tokens only: the scoring is the same code, 20 times cheaper."""
    return replace(token_data, heldout=token_data.heldout[:2048])


@pytest.fixture
def few_steps(tmp_path, monkeypatch, token_data):
    """The shared budget at 30 steps, a cache of its own (the tokenized corpus copied in), and a student's folder."""
    from lil_transformy.paths import cache_dir

    cache = tmp_path / "cache"
    shutil.copytree(cache_dir(), cache, ignore=shutil.ignore_patterns("loss-checks", "trainings", "wheels",
                                                                      "datasets*", "full*"))
    monkeypatch.setenv(CACHE_ENV, str(cache))
    monkeypatch.delenv(notebook.QUICK_ENV, raising=False)
    budget = replace(SHARED, steps=30, eval_every=10)
    monkeypatch.setattr(trainings, "SHARED", budget)
    monkeypatch.setattr(notebook, "SHARED", budget)
    mine = tmp_path / "mine"
    shutil.copytree(REPO_ROOT / "solutions", mine)
    return mine


def test_the_notebook_train_and_the_check_share_one_training(few_steps, data, capsys):
    mine = str(few_steps)
    first = notebook.train_stage("03", mine, data)
    assert "trained 30 steps" in capsys.readouterr().out
    assert cli.main(["train", "03", "--impl", mine]) == 0
    assert "from the cache: trained by the notebook" in capsys.readouterr().out
    run = model_checks.own_run("03", mine, data)
    assert run.how.startswith("from the cache: trained by the notebook") and run.leak is None
    assert run.loss == first.val_loss  # the check's own scoring of the kept weights, to the last bit
    again = model_checks.own_run("03", mine, data)  # what the check found is kept too
    assert again.loss == run.loss and again.how.startswith("from the cache")
    assert [entry["by"] for entry in trainings.trainings_logged()] == ["the notebook"]
    assert progress.own_losses(mine) == {"03": f"{run.loss:.3f}"}


def test_it_is_kept_across_edits_of_other_stages_and_per_folder(few_steps, data, capsys):
    mine, theirs = few_steps, few_steps.parent / "theirs"
    shutil.copytree(few_steps, theirs)
    notebook.train_stage("05", str(mine), data)
    notebook.train_stage("05", str(theirs), data)  # another folder: an entry of its own, evicting nothing
    for later in ("stage_06_ffn.py", "stage_09_multi_head.py", "stage_03_bigram.py"):  # not imported by stage 05
        (mine / later).write_text((mine / later).read_text() + "\n# a comment\n")
    capsys.readouterr()
    notebook.train_stage("05", str(mine), data)
    notebook.train_stage("05", str(theirs), data)
    assert capsys.readouterr().out.count("from the cache") == 2
    (mine / "stage_04_attention.py").write_text((mine / "stage_04_attention.py").read_text() + "\n# a comment\n")
    notebook.train_stage("05", str(mine), data)  # stage 05 imports stage 04: trained again
    assert "trained 30 steps" in capsys.readouterr().out
    assert [Path(entry["folder"]).name for entry in trainings.trainings_logged()] == ["mine", "theirs", "mine"]
    assert progress.own_losses(str(theirs)).keys() == {"05"}
    shutil.rmtree(theirs)  # a temporary folder (a mutant's, a test's) that is gone ...
    notebook.train_stage("03", str(mine), data)
    assert trainings.latest_entry("05", theirs) is None  # ... is forgotten at the next training kept


def test_quick_mode_neither_reads_nor_fills_it(few_steps, data, monkeypatch, capsys):
    monkeypatch.setenv(notebook.QUICK_ENV, "5")
    notebook.train_stage("03", str(few_steps), data)
    assert "quick mode" in capsys.readouterr().out
    assert trainings.trainings_logged() == [] and trainings.latest_entry("03", few_steps) is None


def test_the_loss_check_selected_alone_does_not_train_after_a_failing_fast_check(tmp_path, token_data):
    from lil_transformy.paths import cache_dir

    cache = tmp_path / "cache"
    shutil.copytree(cache_dir(), cache, ignore=shutil.ignore_patterns("loss-checks", "trainings", "wheels",
                                                                      "datasets*", "full*"))
    broken = apply(named("mutants", "mask_after_softmax"), tmp_path / "mine")
    out, seconds, outcomes = run_stage(broken, "04", cache, "-k", "loss_on_the_ladder")
    assert list(outcomes) == ["test_loss_on_the_ladder"]  # the fast checks were not selected ...
    message = outcomes["test_loss_on_the_ladder"]
    assert message.startswith("not trained: ") and "test_attention_weights_are_causal_and_normalised" in message
    assert not (cache / "trainings" / "log.jsonl").exists(), "it trained"  # ... and ran apart, first
