"""A fresh clone, anywhere: the README's two set-up commands, no data variable, no sibling folder, no network.

A student's machine has none of ours: the clone lies in a temp folder with no `shared/` beside it,
LIL_TRANSFORMY_DATA is unset, the cache is empty, and everything after the install runs without a
network (a new network namespace where we may make one, the hub's offline switches anyway).
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lil_transformy.paths import CACHE_ENV, DATA_ENV, REPO_ROOT

pytestmark = [pytest.mark.clone, pytest.mark.timeout(1500)]


def readme_block(heading: str) -> list[str]:
    """The commands of the first bash block under `heading` in README.md, as a user would paste them."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(rf"{re.escape(heading)}\s+.*?```bash\n(.*?)```", readme, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def run(command, cwd: Path, env: dict, timeout: int):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          shell=isinstance(command, str))
    assert done.returncode == 0, f"{command} failed in {cwd}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """A clone of this repository's HEAD, installed with the README's install command in a new venv."""
    root = tmp_path_factory.mktemp("student")
    clone = root / "lil-transformy"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True, timeout=120)
    assert not (root / "shared").exists()
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIL_TRANSFORMY_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=f"{root / 'venv' / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(root / "venv"),
               HOME=str(root / "home"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env[CACHE_ENV] = str(root / "cache")  # nothing tokenized yet: the clone's own data is read
    # The student's install, verbatim; CI's torch pin through pip's own variable (the index would serve the
    # multi-GB CUDA build, which a student on Linux avoids as the README says, with PyTorch's CPU index).
    install, _ = readme_block("## Students: start here")
    run(install, clone, {**env, "PIP_CONSTRAINT": str(clone / "ci-constraints.txt")}, timeout=900)
    return clone, env


@pytest.mark.parametrize("heading", ["## Set up", "## Students: start here"])
def test_the_readme_has_exactly_an_install_and_a_test_command(heading):
    install, test = readme_block(heading)
    assert install.startswith("pip install") and test.startswith("pytest")
    assert DATA_ENV not in install + test and "shared" not in install + test


def test_a_students_first_check_answers_within_a_minute_offline(fresh_clone, offline):
    """The README's student set-up, verbatim: the first stage's checks fail on the stubs, saying why, quickly."""
    clone, env = fresh_clone
    _, first_check = readme_block("## Students: start here")
    started = time.perf_counter()
    done = subprocess.run(offline(first_check.split()), cwd=clone, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "not written yet" in done.stdout and "Traceback" not in done.stdout
    assert time.perf_counter() - started < 60


def test_a_students_solved_stage_passes_its_checks_offline(fresh_clone, offline):
    clone, env = fresh_clone
    shutil.copy(clone / "solutions" / "stage_03_bigram.py", clone / "exercises")  # the student solved 03
    done = run(offline(["pytest", "checks/stage_03"]), clone, env, timeout=600)
    assert " passed" in done.stdout and "failed" not in done.stdout and "error" not in done.stdout


def test_a_notebook_runs_from_inside_notebooks_offline(fresh_clone, offline):
    clone, env = fresh_clone
    shutil.copy(clone / "solutions" / "stage_03_bigram.py", clone / "exercises")
    execute = ("from lil_transformy.authoring.notebook_files import execute, notebook_path; "
               "execute(notebook_path('03'), impl='exercises', quick=True); print('ran')")
    done = run(offline(["python", "-c", execute]), clone / "notebooks", env, timeout=600)
    assert "ran" in done.stdout


def test_regenerating_the_exercises_keeps_a_students_edit(fresh_clone):
    clone, env = fresh_clone
    mine = clone / "exercises" / "stage_04_attention.py"
    mine.write_text(mine.read_text().replace("# YOUR CODE HERE", "# my own attention"))
    done = subprocess.run(["lil-transformy", "exercises"], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "stage_04_attention.py" in done.stderr
    assert "# my own attention" in mine.read_text()
