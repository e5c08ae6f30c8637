"""Graded notebook cells: one group of a stage's checks (the same pytest checks) on a folder.

An nbgrader graded cell is ``grade("05", "causality")``. The stage's checks run in a separate
process (pytest-timeout stops a check that loops; a crash takes only that process), and a graded
cell writes only to stdout: nbgrader gives zero to any graded cell that writes to stderr.
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


GROUPS = {
    "shapes": Group("shapes", 1, "shapes: your code returns tensors of the right shape"),
    "causality": Group("causality", 2, "causality: no position sees the future"),
    "property": Group("property", 2, "the stage's component does what it should"),
    "loss": Group("training", 1, "loss: trained with the shared budget, it beats the stage before"),
}
SECONDS_PER_FAST_CHECK = 30  # a check (other than training, 300 s) that takes longer is stuck
SECONDS_FOR_ALL_CHECKS = 600  # a backstop for what pytest-timeout cannot interrupt

Outcomes = dict[str, list[tuple[str, str | None]]]  # group: [(check name, failure message or None)]
_runs: dict[tuple[str, Path], tuple[Outcomes, str | None]] = {}  # one run of a stage's checks per kernel


class ChecksFailed(AssertionError):
    """A graded group failed; the messages were printed above the traceback."""


def grade(number: str, group: str, folder: str | Path = ".") -> None:
    """Report the `group` checks of stage `number` on the stage modules in `folder`; raise if any fails.

    The first graded cell runs all the stage's checks (one process: torch is imported once); the
    others report their group from that run.
    """
    stage, spec = get_stage(number), GROUPS[group]
    key = (stage.number, Path(folder).resolve())
    if key not in _runs:
        _runs[key] = run_checks(*key)
    by_group, problem = _runs[key]
    outcomes = by_group.get(group, [])
    print(f"stage {stage.number} ({stage.title}) - {spec.what}")
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


def run_checks(number: str, folder: Path, seconds: int = SECONDS_FOR_ALL_CHECKS) -> tuple[Outcomes, str | None]:
    """Every check of stage `number` on `folder`, by group, and a problem that stopped the run (or None)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        command = [sys.executable, "-m", "pytest", str(REPO_ROOT / "checks" / f"stage_{number}"),
                   f"--impl={folder}", f"--junitxml={report}", "-q", "-p", "no:cacheprovider",
                   f"--rootdir={REPO_ROOT}", f"--timeout={SECONDS_PER_FAST_CHECK}"]
        env = {**os.environ, DEVICE_ENV: "cpu"}  # grade on the reference device, whatever the grader's machine has
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            output, _ = process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # pytest and anything the student's code started
            process.communicate()
            return {}, f"the checks did not finish within {seconds} s: does your code loop forever?"
        if not report.exists():
            tail = output.decode(errors="replace").strip().splitlines()[-5:]
            return {}, "the checks could not run: " + " / ".join(tail)
        return read_outcomes(report), None


def read_outcomes(report: Path) -> Outcomes:
    """Outcomes by group from pytest's JUnit XML (checks/conftest.py records each check's group)."""
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        group = next(p.get("value") for p in case.iter("property") if p.get("name") == "group")
        problems = [child for child in case if child.tag in ("failure", "error")]
        message = None
        if problems:
            message = problems[0].get("message") or (problems[0].text or "").strip().splitlines()[-1]
            message = message.removeprefix("Failed: ")
            if "Timeout" in message and "pytest-timeout" in message:
                message = f"{message}: does your code loop forever?"
        outcomes.setdefault(group, []).append((case.get("name"), message))
    return outcomes
