"""A class student's path, without a clone: the course's wheel in a fresh virtual environment, a release folder.

`course build` makes the package students install (wheel/lil_transformy-*.whl); installed for real
(not editable) into a new venv, with no checkout anywhere on its path, it runs a released
assignment's graded cells on the student's solved stage, offline, and every line the released
notebook tells the student is true for a release.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lil_transformy import course
from lil_transformy.grading.judge import SCORING_RULE
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

pytestmark = [pytest.mark.clone, pytest.mark.timeout(1500)]
STAGE = get_stage("04")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A stage-04 course, and a venv with only its wheel (and what the wheel depends on) installed."""
    root = tmp_path_factory.mktemp("class")
    course.build(root / "course", [STAGE])
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    wheel = next((root / "course" / "wheel").glob("lil_transformy-*.whl"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIL_TRANSFORMY_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", HOME=str(root / "home"), VIRTUAL_ENV=str(venv),
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")))
    done = subprocess.run(["pip", "install", "--quiet", "-c", str(REPO_ROOT / "ci-constraints.txt"), str(wheel)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "course" / "release" / f"stage_{STAGE.number}", env


def test_the_wheel_carries_the_checks_and_reference_losses_and_no_solution(released):
    release, env = released
    where = subprocess.run(["python", "-c", "import lil_transformy.paths as p; print(p.CHECKS, p.EVOLUTION_REPORT, "
                            "p.IN_CHECKOUT)"], env=env, capture_output=True, text=True, cwd=release).stdout.split()
    assert "site-packages" in where[0] and Path(where[0], "stage_04").is_dir() and Path(where[1]).is_file()
    assert where[2] == "False"
    installed = Path(where[0]).parent
    assert not (installed.parent / "solutions").exists()
    solution_lines = {line.strip() for path in (REPO_ROOT / "solutions").glob("stage_*.py")
                      for block in re.findall(r"### BEGIN SOLUTION.*?\n(.*?)### END SOLUTION", path.read_text(), re.S)
                      for line in block.splitlines() if len(line.strip()) > 25}
    shipped = "\n".join(p.read_text() for p in installed.rglob("*.py"))
    assert len(solution_lines) > 20 and not [line for line in solution_lines if line in shipped]
    reference = subprocess.run(["python", "-c", "from lil_transformy.stages import load_stage_module; "
                                "load_stage_module('03', 'solutions')"], env=env, capture_output=True, text=True,
                               cwd=release)
    assert reference.returncode != 0, "a student kernel with the course's wheel can load the reference solution"


def test_each_build_of_the_wheel_has_a_version_of_its_own(released):
    release, env = released
    wheel = next((release.parents[1] / "wheel").glob("lil_transformy-*.whl"))
    assert re.fullmatch(r"lil_transformy-0\.1\.0\+g[0-9a-f]{16}-py3-none-any\.whl", wheel.name), wheel.name


def test_what_the_released_notebook_says_is_true_for_a_release(released):
    release, _ = released
    text = (release / f"stage_{STAGE.number}.ipynb").read_text()
    assert 'IMPL = \\".\\"  # your code: the stage modules beside this notebook' in text
    assert "exercises/" not in text and "pytest checks/" not in text and "else the hub" not in text
    assert SCORING_RULE[:60] in text and f"lil-transformy check {STAGE.number}" in text


def test_the_graded_cells_run_on_a_solved_stage_without_a_clone_offline(released, tmp_path, offline):
    release, env = released
    mine = tmp_path / f"stage_{STAGE.number}"
    shutil.copytree(release, mine)
    for module in course.stage_modules(STAGE):  # the student solved this stage and the ones it builds on
        shutil.copy(REPO_ROOT / "solutions" / module, mine)
    notebook = nbformat.read(mine / f"stage_{STAGE.number}.ipynb", as_version=4)
    graded = [cell.source for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")]
    assert len(graded) == 4
    done = subprocess.run(offline(["python", "-c", "\n".join(graded)]), cwd=mine, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for points in ("=> 1 of 1 points", "=> 2 of 2 points", "=> 1 of 1 points"):
        assert points in done.stdout
    assert "0 of" not in done.stdout and "FAIL" not in done.stdout
    assert "LATER  test_loss_on_the_ladder" in done.stdout and "decided at grading" in done.stdout  # Validate's 30 s
    done = subprocess.run(offline(["lil-transformy", "check", STAGE.number, "--fast"]), cwd=mine, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-2000:]
