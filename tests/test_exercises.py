import pytest

from lil_transformy.authoring.exercises import MANIFEST, out_of_sync, stub_source, write_exercises
from lil_transformy.cli import OUT_OF_SYNC, main
from lil_transformy.errors import LilTransformyError

SOLUTION = '''def add(a, b):
    """Sum."""
    ### BEGIN SOLUTION hint: use +
    return a + b
    ### END SOLUTION
'''


def test_solution_block_becomes_a_stub_with_its_hint():
    stub = stub_source(SOLUTION, "stage 99")
    assert "return a + b" not in stub and "SOLUTION" not in stub
    assert "    # YOUR CODE HERE\n    raise NotImplementedError(" in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match=r"stage 99, add: not written yet. Hint: use \+"):
        namespace["add"](1, 2)


@pytest.mark.parametrize("broken, problem", [
    (SOLUTION.replace("    ### END SOLUTION\n", ""), "never closed"),
    (SOLUTION.replace("    ### BEGIN SOLUTION hint: use +\n", ""), "END SOLUTION without BEGIN"),
    (SOLUTION.replace("return a + b", "### BEGIN SOLUTION"), "inside a solution block"),
])
def test_broken_markers_are_refused(broken, problem):
    with pytest.raises(LilTransformyError, match=problem):
        stub_source(broken, "stage 99")


def test_committed_exercises_are_in_sync():
    stale = out_of_sync()
    assert stale == [], OUT_OF_SYNC.format(files=", ".join(stale))


def test_a_students_edit_survives_regeneration(tmp_path, capsys):
    write_exercises(target=tmp_path)
    solved = tmp_path / "stage_04_attention.py"
    solved.write_text(solved.read_text().replace("# YOUR CODE HERE", "# my attention, half done"))
    untouched = (tmp_path / "stage_05_attention_positions.py").read_text()
    with pytest.raises(LilTransformyError, match=rf"edited since they were generated .*{solved}.*Nothing was written"):
        write_exercises(target=tmp_path)
    assert "my attention, half done" in solved.read_text()
    assert (tmp_path / "stage_05_attention_positions.py").read_text() == untouched
    write_exercises(target=tmp_path, force=True)  # maintainers only
    assert "my attention, half done" not in solved.read_text()


def test_the_command_refuses_to_overwrite_the_students_exercises(tmp_path, monkeypatch, capsys):
    """`lil-transformy exercises` on a student's repository: one line, non-zero, nothing lost."""
    import shutil

    import lil_transformy.authoring.exercises as exercises

    shutil.copytree(exercises.REPO_ROOT / "solutions", tmp_path / "solutions")
    write_exercises(root=tmp_path)
    mine = tmp_path / "exercises" / "stage_01_bag_of_words.py"
    mine.write_text("# my work\n")
    monkeypatch.setattr(exercises, "REPO_ROOT", tmp_path)
    assert main(["exercises"]) == 2
    assert "stage_01_bag_of_words.py" in capsys.readouterr().err and mine.read_text() == "# my work\n"


def test_a_changed_solution_is_out_of_sync(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    (tmp_path / "solutions" / "stage_99_toy.py").write_text(SOLUTION)
    assert out_of_sync(tmp_path) == ["__init__.py", MANIFEST, "stage_99_toy.py"]
    (tmp_path / "exercises" / "__init__.py").write_text("")
    (tmp_path / "exercises" / "stage_98_gone.py").write_text("")
    assert "stage_98_gone.py" in out_of_sync(tmp_path)
