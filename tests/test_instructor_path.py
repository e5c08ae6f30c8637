"""An instructor's path as the README writes it, on a course for some stages, and every course command's options.

The README's instructor block runs verbatim (its install lines are what CI already did); then the
course commands with the options their `--help` offers: relative paths, re-runs, --jobs, --stages,
--with-earlier-solutions, --partial-credit, and the mistakes an instructor makes, each answered in
one line.
"""
import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lil_transformy import course
from lil_transformy.authoring.exercises import expected_exercises
from lil_transformy.cli import main
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

pytestmark = pytest.mark.skipif(bwrap() is None, reason="grading needs bubblewrap (apt-get install bubblewrap)")


def readme_block(heading: str) -> list[str]:
    """The lines of the first bash block under `heading` in README.md."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(rf"{re.escape(heading)}\s+```bash\n(.*?)```", readme, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def hand_in(root: Path, student: str, number: str, solved: bool) -> None:
    course.hand_in(root, student, get_stage(number), REPO_ROOT / "solutions" if solved else None)


def grades(root: Path) -> dict:
    with open(root / "grades.csv", newline="") as f:
        return {(row["student_id"], row["assignment"]): float(row["raw_score"]) for row in csv.DictReader(f)}


@pytest.mark.training
@pytest.mark.timeout(1200)
def test_the_readmes_instructor_block_runs_verbatim_on_a_course_for_some_stages(tmp_path):
    lines = readme_block("## Grading a class with nbgrader")
    installs = [line for line in lines if line.startswith(("pip install", "apt-get install"))]
    build, grade = [line for line in lines if line not in installs and not line.startswith("#")]
    assert len(installs) == 3 and " build " in build and " grade " in grade
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(build, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "my-course"
    numbers = sorted(p.name.removeprefix("stage_") for p in (root / "release").iterdir())
    assert numbers == re.search(r"--stages (\S+)", build).group(1).split(","), "the block builds some stages"
    assert len(list((root / "wheel").glob("lil_transformy-*.whl"))) == 1
    for number in numbers:
        hand_in(root, "ada", number, solved=True)
        hand_in(root, "bo", number, solved=False)
    done = subprocess.run(grade, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1100)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    scores = grades(root)
    for number in numbers:
        assert scores["ada", f"stage_{number}"] == 6 and scores["bo", f"stage_{number}"] == 0


def one_line_error(argv, capsys) -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.timeout(900)
def test_every_course_command_and_option_on_a_stage_00_course(tmp_path, monkeypatch, capsys):
    """Stage 00 has no training: the options, re-runs and mistakes, fast."""
    monkeypatch.chdir(tmp_path)  # relative paths, as an instructor types them
    assert main(["course", "build", "c", "--stages", "00", "--with-earlier-solutions", "--partial-credit"]) == 0
    assert "partial_credit = True" in Path("c/nbgrader_config.py").read_text()
    assert "partial credit" in Path("c/release/stage_00/stage_00.ipynb").read_text()
    assert Path("c/release/stage_00/stage_00_data.py").read_text() == expected_exercises()["stage_00_data.py"]
    hand_in(Path("c"), "ada", "00", solved=True)
    hand_in(Path("c"), "bo", "00", solved=False)
    (Path("c") / "submitted" / "cy").mkdir()  # a student who handed in nothing
    assert main(["course", "grade", "c", "--jobs", "2"]) == 0
    first = grades(Path("c"))
    assert first == {("ada", "stage_00"): 2.0, ("bo", "stage_00"): 0.0, ("cy", "stage_00"): 0.0}
    verdicts = sorted(Path("c/verdicts/stage_00").iterdir())
    assert main(["course", "grade", str(Path("c").resolve()), "--stages", "00"]) == 0  # a re-run, absolute path
    assert grades(Path("c")) == first and sorted(Path("c/verdicts/stage_00").iterdir()) == verdicts
    assert main(["course", "export", "c"]) == 0 and grades(Path("c")) == first
    capsys.readouterr()
    assert "built for stages 00, not 03" in one_line_error(["course", "grade", "c", "--stages", "03"], capsys)
    assert "PostgreSQL" in one_line_error(["course", "grade", "c", "--shard", "1/2"], capsys)
    assert "cannot open the gradebook" in one_line_error(["course", "export", "c", "--db", "nosuch://x"], capsys)
    assert "already holds a course" in one_line_error(["course", "build", "c"], capsys)
    assert "choose 1 to" in one_line_error(["course", "grade", "c", "--jobs", "99"], capsys)
    assert "not a course folder" in one_line_error(["course", "grade", "elsewhere"], capsys)


@pytest.mark.parametrize("action, has, lacks", [
    ("build", ["--stages", "--with-earlier-solutions", "--partial-credit", "--db"], ["--jobs", "--shard"]),
    ("grade", ["--stages", "--jobs", "--shard", "--db", "--unsandboxed"], ["--with-earlier-solutions"]),
    ("export", ["--stages", "--db"], ["--jobs", "--shard", "--with-earlier-solutions"]),
])
def test_each_course_command_helps_with_its_own_options_only(action, has, lacks, capsys):
    with pytest.raises(SystemExit):
        main(["course", action, "--help"])
    text = capsys.readouterr().out
    assert all(option in text for option in has) and not any(option in text for option in lacks)
