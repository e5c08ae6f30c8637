import inspect
import re
import subprocess
import sys

import pytest

from lil_transformy.authoring.mutants import apply, named, solutions_with
from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import CHECKS, REPO_ROOT
from lil_transformy.stages import DETOURS, STAGES, get_stage, load_stage_module, parse_stages


def test_every_stage_has_a_solution_and_an_exercise():
    for stage in STAGES:
        for impl in ("solutions", "exercises"):
            module = load_stage_module(stage.number, impl)
            assert module.__name__.endswith(f".{stage.module}") and module.__file__.endswith(f"{impl}/{stage.module}.py")
            if stage.model:
                assert hasattr(module, stage.model)


def test_exercise_stages_build_on_the_students_own_earlier_stages():
    """A student's stage 05 must run the student's stage 04, never the reference."""
    stage05 = load_stage_module("05", "exercises")
    stage04 = load_stage_module("04", "exercises")
    assert stage05.AttentionHead is stage04.AttentionHead and stage04.__file__.endswith("exercises/stage_04_attention.py")


def test_a_folder_is_an_implementation(tmp_path):
    (tmp_path / "stage_03_bigram.py").write_text("BigramLM = 'from a folder'\n")
    assert load_stage_module("03", str(tmp_path)).BigramLM == "from a folder"


def test_bad_stage_and_impl_are_clear_errors(tmp_path):
    with pytest.raises(LilTransformyError, match="there is no stage '12'"):
        get_stage("12")
    with pytest.raises(LilTransformyError, match="unknown implementation 'nope'"):
        load_stage_module("03", "nope")
    with pytest.raises(LilTransformyError, match="has no stage_03_bigram.py"):
        load_stage_module("03", str(tmp_path))


def test_parse_stages():
    assert [s.number for s in parse_stages("01-03,05")] == ["01", "02", "03", "05"]
    assert [s.number for s in parse_stages("7")] == ["07"]


@pytest.mark.parametrize("stage", STAGES + DETOURS, ids=lambda stage: stage.number)
def test_the_names_the_checks_use_are_declared_and_kept_by_solutions_and_exercises(stage):
    checks = "\n".join(path.read_text() for path in (CHECKS / stage.assignment).glob("*.py"))
    used = set(re.findall(r"\bstage\.([A-Za-z_]\w*)", checks))
    assert used <= {name.split(".")[0] for name in stage.contract}, "a check uses a name the stage does not declare"
    for impl in ("solutions", "exercises"):
        module = load_stage_module(stage.number, impl)
        for name in stage.contract:
            owner, _, attribute = name.partition(".")
            assert hasattr(module, owner), f"{impl}/{stage.module}.py has no {owner}"
            if attribute:
                source = inspect.getsource(getattr(module, owner))
                assert f"self.{attribute} =" in source or f"def {attribute}(" in source, f"{impl}: {name}"


def test_a_renamed_module_level_name_is_named_in_the_message(tmp_path):
    mine = solutions_with(tmp_path / "mine", "stage_04_attention.py", "causal_mask", "make_mask")
    out = subprocess.run([sys.executable, "-m", "pytest", str(CHECKS / "stage_04"), f"--impl={mine}", "-q",
                          "-k", "test_causal_mask", "-p", "no:cacheprovider"], capture_output=True, text=True).stdout
    assert "must keep causal_mask under that name" in out and "Traceback" not in out


@pytest.mark.parametrize("stage", STAGES + DETOURS, ids=lambda stage: stage.number)
def test_builds_on_names_every_stage_whose_code_runs_in_it(stage):
    """What a stage imports is in its builds_on, and so is nothing it could not reach through those imports."""
    source = (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()
    imported = {get_stage(name.split("_")[1]).number for name in re.findall(r"^from \.(stage_\w+) import", source, re.M)}
    reachable = imported.union(*(get_stage(number).builds_on for number in imported))
    assert imported <= set(stage.builds_on) <= reachable, (sorted(imported), stage.builds_on, sorted(reachable))


def test_a_later_stage_sends_a_broken_earlier_component_back_to_its_stage(tmp_path):
    """Stage 08 runs the student's stage 06 FFN inside its blocks: a linear FFN fails stage 08's re-check, named."""
    mine = apply(named("mutants", "ffn_without_nonlinearity"), tmp_path / "mine")
    out = subprocess.run([sys.executable, "-m", "pytest", str(CHECKS / "stage_08"), f"--impl={mine}", "-q",
                          "-m", "not training", "-p", "no:cacheprovider"], capture_output=True, text=True).stdout
    assert "1 failed" in out and "your stage 06 fails its test_feed_forward_is_not_linear" in out, out
    assert "fix stage 06 first (pytest checks/stage_06)" in out
