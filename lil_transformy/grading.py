"""Graded notebook cells: run one group of a stage's checks (the same pytest checks) on a folder.

An nbgrader graded cell is ``grade("05", "causality")``. It runs checks/stage_05 in a separate
process, so a student's endless loop or crash costs that group its points and nothing else, and
it writes only to stdout: nbgrader gives zero to any graded cell that writes to stderr.
"""
import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .paths import DEVICE_ENV, REPO_ROOT
from .stages import get_stage


@dataclass(frozen=True)
class Group:
    marker: str  # the pytest marker of its checks (checks/conftest.py puts every check in one group)
    points: int
    what: str
    seconds: int  # the whole group, in its own process, must finish within this


GROUPS = {
    "shapes": Group("shapes", 1, "shapes: your code returns tensors of the right shape", 120),
    "causality": Group("causality", 2, "causality: no position sees the future", 120),
    "property": Group("property", 2, "the stage's component does what it should", 180),
    "loss": Group("training", 1, "loss: trained with the shared budget, it beats the stage before", 480),
}
SECONDS_PER_FAST_CHECK = 30  # a check other than training that takes longer is stuck


class ChecksFailed(AssertionError):
    """A graded group failed; the messages were printed above the traceback."""


def grade(number: str, group: str, folder: str | Path = ".") -> None:
    """Run the `group` checks of stage `number` on the stage modules in `folder`; raise if any fails."""
    stage, spec = get_stage(number), GROUPS[group]
    print(f"stage {stage.number} ({stage.title}) - {spec.what}")
    outcomes, problem = run_checks(stage.number, spec, Path(folder).resolve())
    for name, message in outcomes:
        print(f"  {'PASS' if message is None else 'FAIL'}  {name}")
        if message:
            print("\n".join("        " + line.strip() for line in message.strip().splitlines()))
    failed = [name for name, message in outcomes if message is not None]
    if problem or failed or not outcomes:
        reason = problem or (f"{len(failed)} of {len(outcomes)} checks failed" if failed else "no checks ran")
        print(f"=> 0 of {spec.points} points: {reason}")
        raise ChecksFailed(reason)
    print(f"=> {spec.points} of {spec.points} points")


def run_checks(number: str, spec: Group, folder: Path) -> tuple[list[tuple[str, str | None]], str | None]:
    """(check name, failure message or None) for each check run, and a problem that stopped the run."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        command = [sys.executable, "-m", "pytest", str(REPO_ROOT / "checks" / f"stage_{number}"),
                   f"--impl={folder}", "-m", spec.marker, f"--junitxml={report}", "-q", "-p", "no:cacheprovider",
                   f"--rootdir={REPO_ROOT}", f"--timeout={SECONDS_PER_FAST_CHECK}"]
        env = {**os.environ, DEVICE_ENV: "cpu"}  # grade on the reference device, whatever the grader's machine has
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            output, _ = process.communicate(timeout=spec.seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # pytest and anything the student's code started
            process.communicate()
            return [], f"the checks did not finish within {spec.seconds} s: does your code loop forever?"
        if not report.exists():
            tail = output.decode(errors="replace").strip().splitlines()[-5:]
            return [], "the checks could not run: " + " / ".join(tail)
        return read_outcomes(report), None


def read_outcomes(report: Path) -> list[tuple[str, str | None]]:
    outcomes = []
    for case in ET.parse(report).getroot().iter("testcase"):
        problems = [child for child in case if child.tag in ("failure", "error")]
        message = None
        if problems:
            message = problems[0].get("message") or (problems[0].text or "").strip().splitlines()[-1]
            message = message.removeprefix("Failed: ")
        outcomes.append((case.get("name"), message))
    return outcomes
