"""A stage's checks, by graded group, on a folder of stage modules: the verdict, computed by a judge.

`run_checks` is the judge: a fresh ``python -I -m pytest`` of the stage's checks, in a clean
environment and an empty working folder, on a copy of only the folder's stage modules. It never
imports them: with ``--isolate`` the student's code runs in a child process (a bubblewrap sandbox
when grading a class) and the checks judge the data it returns. Skipped, errored or missing
checks count as failed.

When a class is graded, `lil_transformy.nbgrader_hooks` calls the judge from nbgrader's
autograde pipeline and writes the verdict into the graded cells. In a student's own notebook a
graded cell, ``grade("05", "causality")``, runs the same judge and prints the same verdict (to
stdout only: nbgrader gives zero to a graded cell that writes to stderr).
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .paths import CACHE_ENV, DATA_ENV, DEVICE_ENV, EVOLUTION_REPORT, REPO_ROOT, cache_dir
from .sandbox import die_with_parent
from .stages import DETOURS, STAGES, get_stage


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
MODULE_FILES = {f"{stage.module}.py" for stage in STAGES + DETOURS}  # all a judge copies from a submission
LARGEST_MODULE = 1 << 20  # bytes

Outcomes = dict[str, list[tuple[str, str | None]]]  # group: [(check name, failure message or None)]
_runs: dict[tuple[str, Path], tuple[Outcomes, str | None]] = {}  # one run of a stage's checks per kernel


class ChecksFailed(AssertionError):
    """A graded group failed; the messages were printed above the traceback."""


def grade(number: str, group: str, folder: str | Path = ".") -> None:
    """Report the `group` checks of stage `number` on the stage modules in `folder`; raise if any fails.

    The first graded cell runs all the stage's checks (one judge: torch is imported once); the
    others report their group from that run.
    """
    stage = get_stage(number)
    key = (stage.number, Path(folder).resolve())
    if key not in _runs:
        _runs[key] = run_checks(*key)
    text, passed = verdict(stage.number, group, *_runs[key])
    print(text)
    if not passed:
        raise ChecksFailed(text.splitlines()[-1])


def verdict(number: str, group: str, by_group: Outcomes, problem: str | None) -> tuple[str, bool]:
    """What a graded cell shows for `group`, and whether it earns its points."""
    stage, spec = get_stage(number), GROUPS[group]
    outcomes = by_group.get(group, [])
    lines = [f"stage {stage.number} ({stage.title}) - {spec.what}"]
    for name, message in outcomes:
        lines.append(f"  {'PASS' if message is None else 'FAIL'}  {name}")
        if message:
            lines += ["        " + line.strip() for line in message.strip().splitlines()]
    failed = [name for name, message in outcomes if message is not None]
    if problem or failed or not outcomes:
        reason = problem or (f"{len(failed)} of {len(outcomes)} checks failed" if failed else "no checks ran")
        return "\n".join(lines + [f"=> 0 of {spec.points} points: {reason}"]), False
    return "\n".join(lines + [f"=> {spec.points} of {spec.points} points"]), True


def stage_module_files(folder: Path) -> list[Path]:
    """The stage modules of `folder` a judge looks at: plain files only, never a link, none too large."""
    paths = [folder / name for name in sorted(MODULE_FILES)]
    return [p for p in paths if p.is_file() and not p.is_symlink() and p.stat().st_size <= LARGEST_MODULE]


def copy_stage_modules(folder: Path, target: Path) -> None:
    """The stage modules of `folder`, and nothing else, into `target`."""
    target.mkdir(parents=True)
    for path in stage_module_files(folder):
        shutil.copyfile(path, target / path.name)


def submission_key(number: str, folder: Path, isolate: str) -> str:
    """What a verdict depends on: the submission's stage modules, the stage's checks, the library that runs them
    and the reference losses they compare with. Equal keys, equal verdicts (up to float summation order)."""
    library = Path(__file__).parent
    judged = [*sorted((REPO_ROOT / "checks").glob("*.py")), *sorted((REPO_ROOT / "checks" / f"stage_{number}").glob("*.py")),
              *sorted(library.glob("*.py")), EVOLUTION_REPORT, REPO_ROOT / "conftest.py"]
    digest = hashlib.sha256(f"{number} {isolate}".encode())
    for path in [*judged, *stage_module_files(folder)]:
        digest.update(f"\0{path.name}\0{path.stat().st_size}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def judged(number: str, folder: Path, verdict_file: Path, isolate: str = "sandbox",
           threads: int = 2) -> tuple[Outcomes, str | None]:
    """The verdict on `folder`: read from `verdict_file` if it was made for these very modules by these very
    checks, else the judge's (then saved there). A class is judged in parallel and recorded serially; a run that
    was stopped half way judges only the submissions it had not judged yet."""
    key = submission_key(number, folder, isolate)
    try:
        saved = json.loads(verdict_file.read_text())
        if saved["key"] == key:
            return {group: [tuple(o) for o in outcomes] for group, outcomes in saved["outcomes"].items()}, saved["problem"]
    except (OSError, ValueError, KeyError):
        pass  # none yet, or not for this submission
    outcomes, problem = run_checks(number, folder, isolate=isolate, threads=threads)
    verdict_file.parent.mkdir(parents=True, exist_ok=True)
    partial = verdict_file.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps({"key": key, "outcomes": outcomes, "problem": problem}, indent=1))
    os.replace(partial, verdict_file)  # whole or not at all, even if grading is killed here
    return outcomes, problem


def judge_environment(home: str, threads: int) -> dict:
    """The judge's environment: set here, not inherited (a kernel's PYTHONPATH or PYTEST_PLUGINS stays out)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
           CACHE_ENV: str(cache_dir()), DEVICE_ENV: "cpu",  # grade on the reference device
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if os.environ.get(DATA_ENV):
        env[DATA_ENV] = os.environ[DATA_ENV]
    return env


def run_checks(number: str, folder: Path, seconds: int = SECONDS_FOR_ALL_CHECKS, isolate: str = "process",
               threads: int = 2, select: str | None = None) -> tuple[Outcomes, str | None]:
    """Every check of stage `number` on the stage modules of `folder`, by group, and a problem that stopped the
    run (or None). isolate: where the student's code runs, "process" or "sandbox" (bubblewrap);
    select: a pytest -m expression ("not training": no loss check)."""
    with tempfile.TemporaryDirectory() as tmp:
        submission, report = Path(tmp) / "submission", Path(tmp) / "report.xml"
        copy_stage_modules(Path(folder), submission)
        command = [sys.executable, "-I", "-m", "pytest", str(REPO_ROOT / "checks" / f"stage_{number}"),
                   f"--impl={submission}", f"--isolate={isolate}", f"--junitxml={report}", "-q",
                   "-p", "no:cacheprovider", f"--rootdir={REPO_ROOT}", f"--timeout={SECONDS_PER_FAST_CHECK}",
                   *(["-m", select] if select else [])]
        process = subprocess.Popen(command, cwd=tmp, env=judge_environment(tmp, threads), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=die_with_parent)  # a killed grading run leaves no judge running
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
        problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
        message = None
        if problems:
            message = problems[0].get("message") or (problems[0].text or "").strip().splitlines()[-1]
            message = message.removeprefix("Failed: ")
            if problems[0].tag == "skipped":  # a check that did not run did not pass
                message = f"skipped, so not passed: {message}"
            if "Timeout" in message and "pytest-timeout" in message:
                message = f"{message}: does your code loop forever?"
        outcomes.setdefault(group, []).append((case.get("name"), message))
    return outcomes
