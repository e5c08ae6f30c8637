import pytest

from lil_transformy.errors import LilTransformyError
from lil_transformy.stages import STAGES, get_stage, load_stage_module, parse_stages


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
