import pytest

from lil_transformy.cli import main
from lil_transformy.paths import DATA_ENV


@pytest.mark.parametrize("argv, message", [
    (["train", "12"], "there is no stage '12'"),
    (["train", "03", "--impl", "nope"], "unknown implementation 'nope'"),
    (["evolve", "--seeds", "0,x"], "--seeds takes numbers"),
    (["--data", "/nowhere", "vocab"], "data folder /nowhere does not exist"),
    (["course", "grade", "/nowhere"], "/nowhere is not a course folder"),
    (["course", "demo", "/nowhere", "--stages", "12"], "there is no stage '12'"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(argv, message, capsys, monkeypatch, token_data_dir):
    monkeypatch.setenv(DATA_ENV, token_data_dir)  # restored afterwards: --data sets it for the process
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_exercises_check_passes_on_the_committed_exercises(capsys):
    assert main(["exercises", "--check"]) == 0
    assert "in sync" in capsys.readouterr().out


def test_progress_shows_every_stage(capsys):
    assert main(["progress", "--impl", "solutions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("00") and "done" in lines[1]
    assert lines[5].startswith("03b") and "done" in lines[5]
    assert lines[11].startswith("09") and "done" in lines[11]


def test_progress_explains_its_columns_and_marks(capsys):
    """An untouched stage reads 1/10 (a check that passes on a stub by design): the legend says why."""
    assert main(["progress", "--impl", "exercises"]) == 0
    out = capsys.readouterr().out
    assert "04    + attention    #...." in out
    legend = out[out.index("fast checks  n/m"):]
    for words in ("n of the stage's m fast checks", "pytest checks/stage_NN -m 'not training'", "# one that passes",
                  "pass on an untouched stub by design", "no ready-made attention", "*: some checks could not run",
                  "your loss    held-out loss", "train NN", "as its loss check found it", "reference    the same"):
        assert words in legend, words


def test_progress_says_when_the_data_is_missing_instead_of_failing_the_student(capsys, monkeypatch):
    monkeypatch.setenv(DATA_ENV, "/nowhere")
    assert main(["progress", "--impl", "solutions"]) == 2
    out = capsys.readouterr().out
    assert "03    bigram" in out and "done*" in out
    assert "could not run, and are not counted: data folder /nowhere does not exist" in out
