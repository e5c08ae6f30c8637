import pytest

from lil_transformy.errors import LilTransformyError
from lil_transformy.exercises import out_of_sync, stub_source

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
    assert out_of_sync() == [], "run `lil-transformy exercises` and commit exercises/"


def test_a_changed_solution_is_out_of_sync(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    (tmp_path / "solutions" / "stage_99_toy.py").write_text(SOLUTION)
    assert out_of_sync(tmp_path) == ["__init__.py", "stage_99_toy.py"]
    (tmp_path / "exercises" / "__init__.py").write_text("")
    (tmp_path / "exercises" / "stage_98_gone.py").write_text("")
    assert "stage_98_gone.py" in out_of_sync(tmp_path)
