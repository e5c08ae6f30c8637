"""The notebooks: one per stage, stored without outputs, importing (never defining) model code, and
running top to bottom in a real Jupyter kernel (quick mode, the reference solutions)."""
import ast

import matplotlib.pyplot as plt
import pytest

from lil_transformy.authoring.notebook_files import (
    NOTEBOOKS,
    execute,
    has_impl_switch,
    is_stripped,
    notebook_path,
    read,
)
from lil_transformy.stages import DETOURS, STAGES
from lil_transformy.train import SHARED

NAMES = [stage.number for stage in STAGES + DETOURS] + ["compare"]
QUICK_BUDGET_SECONDS = 180  # each notebook, in quick mode, on a 2-core CPU


def code_cells(name):
    return [cell.source for cell in read(notebook_path(name)).cells if cell.cell_type == "code"]


def test_one_notebook_per_stage_and_nothing_else():
    expected = {notebook_path(name).name for name in NAMES}
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == expected


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name):
    assert is_stripped(read(notebook_path(name))), \
        f"{notebook_path(name).name} holds outputs: run `lil-transformy strip-notebooks` before committing"


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_import_model_code_never_define_it(name):
    """A notebook that defines a class or function would drift from the stage modules."""
    for source in code_cells(name):
        for node in ast.walk(ast.parse(source)):
            assert not isinstance(node, (ast.ClassDef, ast.FunctionDef)), \
                f"{notebook_path(name).name} defines {node.name!r}: put it in solutions/ or lil_transformy/ and import it"


@pytest.mark.parametrize("name", NAMES[:-1])
def test_stage_notebooks_have_the_impl_switch(name):
    assert has_impl_switch(read(notebook_path(name)))


@pytest.mark.parametrize("value, steps", [(None, SHARED.steps), ("0", SHARED.steps), ("1", 200), ("30", 30)])
def test_quick_mode_budget(monkeypatch, value, steps):
    from lil_transformy.notebook import QUICK_ENV, budget

    if value is None:
        monkeypatch.delenv(QUICK_ENV, raising=False)
    else:
        monkeypatch.setenv(QUICK_ENV, value)
    assert budget().steps == steps


def test_quick_mode_says_what_it_takes(monkeypatch):
    from lil_transformy.errors import LilTransformyError
    from lil_transformy.notebook import QUICK_ENV, budget

    monkeypatch.setenv(QUICK_ENV, "yes")
    with pytest.raises(LilTransformyError, match="1 \\(a quick run\\) or a number of steps"):
        budget()


@pytest.mark.notebooks
@pytest.mark.timeout(QUICK_BUDGET_SECONDS + 60)
@pytest.mark.parametrize("name", NAMES)
def test_restart_and_run_all(name):
    notebook, seconds = execute(notebook_path(name), impl="solutions", quick=True)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if "TqdmWarning" in o.get("text", "")], "tqdm.auto without ipywidgets warns"
    assert any("image/png" in o.get("data", {}) for o in outputs) or name == "compare" and outputs, \
        "the notebook shows no plot"
    assert seconds < QUICK_BUDGET_SECONDS, f"{seconds:.0f} s in quick mode"


def fake_run(cfg):
    """A TrainResult as `train` returns it (its config with the data's vocabulary size), without training."""
    from dataclasses import replace

    from lil_transformy.train import TrainResult

    steps = list(range(cfg.eval_every, cfg.steps + 1, cfg.eval_every))
    return TrainResult(None, replace(cfg, vocab_size=3433), 4.0, 1.0, {"step": steps, "probe_loss": [4.0] * len(steps)})


def legend_texts(fig):
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


def test_full_budget_curves_are_drawn_against_the_references(capsys):
    from lil_transformy.notebook import plot_learning_curves

    fig = plot_learning_curves({"04 + attention (this run)": fake_run(SHARED)}, earlier=["01", "03"])
    assert legend_texts(fig) == ["01 bag of words (reference, 1,130 steps)", "03 bigram (reference, 1,130 steps)",
                                 "04 + attention (this run)"]
    assert "same budget" in fig.axes[0].get_title() and capsys.readouterr().out == ""
    plt.close(fig)


def test_a_quick_run_is_not_drawn_against_the_full_budget_references(capsys):
    """A quick run's learning rate decays over its own 200 steps: its curve and the references' do not compare."""
    from lil_transformy.notebook import QUICK, plot_learning_curves

    fig = plot_learning_curves({"04 + attention (this run)": fake_run(QUICK)}, earlier=["01", "03"])
    assert legend_texts(fig) == ["04 + attention (this run)"]
    assert "Quick mode: 200 steps" in fig.axes[0].get_title() and "not comparable" in fig.axes[0].get_title()
    out = capsys.readouterr().out
    assert "reference curves of stages 01, 03" in out and "not drawn" in out and "LIL_TRANSFORMY_QUICK" in out
    plt.close(fig)


class FakeVocab:
    def decode(self, ids):
        return f"t{ids[0]}"


@pytest.mark.parametrize("number, maps", [("04", 1), ("09", 2 * 4)])
def test_attention_heat_maps_have_axis_titles_token_labels_and_a_colour_bar(number, maps):
    import torch

    from lil_transformy.notebook import plot_attention
    from lil_transformy.stages import model_class

    model = model_class(number, "solutions")(fake_run(SHARED).config)
    fig = plot_attention(model, FakeVocab(), torch.arange(5))
    heat_maps = [ax for ax in fig.axes if ax.images]
    colour_bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(heat_maps) == maps and len(colour_bars) == 1
    assert colour_bars[0].get_ylabel() == "attention weight"
    for ax in heat_maps:
        assert ax.get_xlabel().startswith("key position") and ax.get_ylabel().startswith("query position")
        assert [label.get_text() for label in ax.get_xticklabels()] == ["t0", "t1", "t2", "t3", "t4"]
    plt.close(fig)
