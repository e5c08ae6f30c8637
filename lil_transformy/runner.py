"""Run checks with pytest and read each one's outcome: the one rule for "passed", for everyone who asks.

The judge, `lil-transformy progress`, the mutants and variants, the tests and the scripts all read
pytest's JUnit report here. A check passes when it ran and passed: a failed, errored or skipped
check never passes (a check that did not run proved nothing).
"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from lil_transformy.paths import CHECKS

# Starts the message of a check that could not run for a reason outside the student's code (data,
# tokenizer, reference report): `progress` reports it instead of counting it against the student.
NOT_YOUR_CODE = "set-up problem, not your code: "


@dataclass(frozen=True)
class CheckOutcome:
    stage: str  # "04": the checks/stage_NN folder it lives in
    name: str  # the check, with its parameters: test_logits_shape[2-5]
    group: str  # the graded group checks/conftest.py recorded ("" for a test outside checks/)
    problem: str | None  # None: it passed; else what went wrong, as the check said it

    @property
    def passed(self) -> bool:
        return self.problem is None


def read_report(report: Path) -> list[CheckOutcome]:
    """Every check in pytest's JUnit XML report, in the order it ran."""
    outcomes = []
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")  # checks.stage_04.test_attention, lil_transformy.checks...
        stage = next((part.removeprefix("stage_") for part in module if part.startswith("stage_")), "")
        group = next((p.get("value", "") for p in case.iter("property") if p.get("name") == "group"), "")
        problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
        problem = None
        if problems:  # the element's text is the whole message; its `message` attribute only the first line
            problem = ((problems[0].text or "").strip() or problems[0].get("message") or problems[0].tag)
            problem = problem.removeprefix("Failed: ")
            if problems[0].tag == "skipped":
                problem = f"skipped, so not passed: {problems[0].get('message') or problem}"
        outcomes.append(CheckOutcome(stage, case.get("name", ""), group, problem))
    return outcomes


def run_pytest(*args: str, cwd: Path | None = None, env: dict | None = None,
               timeout: float | None = None) -> tuple[list[CheckOutcome], str]:
    """`pytest ARGS` in a child process: every check's outcome, and what pytest printed. Nothing ran: []."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        done = subprocess.run([sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", f"--junitxml={report}"],
                              cwd=cwd or CHECKS.parent, env=env or os.environ.copy(), capture_output=True, text=True,
                              timeout=timeout)
        return (read_report(report) if report.exists() else []), done.stdout + done.stderr
