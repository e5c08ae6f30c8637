"""A stage's checks, by graded group, on a folder of stage modules: the verdict, computed by a judge.

`run_checks` is the judge: a fresh ``python -I -m pytest`` of the stage's checks, in a clean
environment and an empty working folder, on a copy of only the folder's stage modules. It never
imports them: with ``--isolate`` the student's code runs in a child process (a bubblewrap sandbox
when grading a class) and the checks judge the data it returns. Skipped, errored or missing
checks count as failed.

When a class is graded, `lil_transformy.grading.nbgrader_hooks` calls the judge from nbgrader's
autograde pipeline and writes the verdict into the graded cells. In a student's own notebook (and in
nbgrader's Validate, which gives each cell 30 s) a graded cell, ``grade("05", "causality")``, runs the
same judge on every check that does not train, and says plainly that the training checks are decided
at grading; it prints to stdout only (nbgrader gives zero to a graded cell that writes to stderr).
"""
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from lil_transformy.grading.evidence import oversized_modules
from lil_transformy.grading.limits import (
    ALL_CHECKS_WALL_SECONDS,
    FAST_CHECK_WALL_SECONDS,
    OVERLOADED,
    Budget,
    MachineOverloaded,
    OverBudget,
)
from lil_transformy.grading.sandbox import child_environment, die_with_parent
from lil_transformy.paths import CACHE_ENV, CHECKS, DATA_ENV, EVOLUTION_REPORT, JUDGE_SEED_ENV, PACKAGE, cache_dir
from lil_transformy.runner import read_report
from lil_transformy.stages import DETOURS, STAGES, get_stage


@dataclass(frozen=True)
class Group:
    marker: str  # the pytest marker of its checks (checks/conftest.py puts every check in one group)
    points: int
    what: str


SCORING_RULE = (
    "Each graded cell is one group of the stage's checks: shapes 1 point, causality 2, the component's property 2, "
    "the loss 1 (a stage without a model has fewer groups). A group earns its points when every one of its checks "
    "passes: a check that fails, errors, is skipped or runs out of time earns nothing, since a check that did not "
    "run proved nothing (your instructor may give partial credit: a share of the group's points per passing "
    "check). Your code is limited by the CPU seconds it uses (30 per check; for the training 8 times the reference's "
    "own training time, e.g. 240 for stage 09), not by the "
    "clock: when the grading machine is too busy to tell, your submission is not graded yet and is graded again, "
    "never scored 0 for it. The loss check trains your model with the shared budget on CPU, seed 0, and compares "
    "its held-out loss with the reference loss of the stage before.")
GROUPS = {
    "shapes": Group("shapes", 1, "shapes: your code returns tensors of the right shape"),
    "causality": Group("causality", 2, "causality: no position sees the future"),
    "property": Group("property", 2, "the stage's component does what it should"),
    "loss": Group("loss", 1, "loss: trained with the shared budget, it beats the stage before"),
}
DEFERRED = "decided at grading"  # a training check a student's graded cell does not run (checks/conftest.py)
JUDGE_MARGIN_SECONDS = 60  # pytest-timeout in the judge: after the student's own limits
MODULE_FILES = {f"{stage.module}.py" for stage in STAGES + DETOURS}  # all a judge copies from a submission
LARGEST_MODULE = 1 << 20  # bytes

Outcomes = dict[str, list[tuple[str, str | None]]]  # group: [(check name, failure message or None)]
EVIDENCE = "evidence"  # not a group: what the student's children recorded that no lesson needs (evidence.py)
LOSS_GOAL = "loss to beat"  # not a group: [(what the loss check expected, None)]
LOSS = "loss reached"  # not a group: [(the held-out loss the loss check reached, None)], passed or not (course/report.py)
_runs: dict[tuple[str, Path], tuple[Outcomes, str | None]] = {}  # one run of a stage's checks per kernel


class ChecksFailed(AssertionError):
    """A graded group failed; the messages were printed above the traceback."""


def grade(number: str, group: str, folder: str | Path = ".") -> None:
    """Report the `group` checks of stage `number` on the stage modules in `folder`; raise if any fails.

    The first graded cell runs all the stage's checks but those that train (one judge, about 10 s for the
    slowest stage): a graded cell answers within nbgrader Validate's 30 s, and the training checks say they are
    decided at grading (`lil-transformy check NN` runs them here). The others report their group from that run.
    """
    stage = get_stage(number)
    key = (stage.number, Path(folder).resolve())
    if key not in _runs:
        _runs[key] = run_checks(*key, defer_training=True)
    text, earned = verdict(stage.number, group, *_runs[key])
    if not_graded_yet(_runs[key][1]):
        del _runs[key]  # the next run of a graded cell judges again
    if earned < GROUPS[group].points:
        raise ChecksFailed(text)  # the whole verdict: nbgrader's Validate shows a failed cell's error, not its output
    print(text)


def verdict(number: str, group: str, by_group: Outcomes, problem: str | None,
            partial_credit: bool = False) -> tuple[str, float]:
    """What a graded cell shows for `group`, and the points it earns (SCORING_RULE)."""
    stage, spec = get_stage(number), GROUPS[group]
    lines = [f"stage {stage.number} ({stage.title}) - {spec.what}"]
    for name, message in by_group.get(group, []):
        deferred = message is not None and DEFERRED in message
        lines.append(f"  {'LATER' if deferred else 'PASS' if message is None else 'FAIL'}  {name}")
        if message:
            shown = DEFERRED + message.split(DEFERRED, 1)[1] if deferred else message
            lines += ["        " + line.strip() for line in shown.strip().splitlines()]
    if group == "loss" and LOSS in by_group:  # a passing loss check says what it reached, and what it had to beat
        lines.append(f"        held-out loss {by_group[LOSS][0][0]}" +
                     "".join(f"; expected: {goal}" for goal, _ in by_group.get(LOSS_GOAL, [])))
    outcomes = [(name, message) for name, message in by_group.get(group, []) if not message or DEFERRED not in message]
    failed = [name for name, message in outcomes if message is not None]
    if not_graded_yet(problem):
        return "\n".join(lines + [f"=> {problem}. Run it again when the machine is less busy."]), 0.0
    if not problem and len(outcomes) < len(by_group.get(group, [])) and not failed:
        return "\n".join(lines + [f"=> nothing failed here; the checks that train your model are {DEFERRED}"]), \
            float(spec.points)
    if problem or not outcomes:
        return "\n".join(lines + [f"=> 0 of {spec.points} points: {problem or 'no checks ran'}"]), 0.0
    earned = spec.points * (1 - len(failed) / len(outcomes)) if partial_credit else spec.points * (not failed)
    reason = f": {len(failed)} of {len(outcomes)} checks failed" + (" (partial credit)" if partial_credit else "")
    return "\n".join(lines + [f"=> {earned:g} of {spec.points} points" + (reason if failed else "")]), earned


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
    library = PACKAGE
    inputs = [*sorted(CHECKS.glob("*.py")), *sorted((CHECKS / f"stage_{number}").glob("*.py")),
              *sorted(library.rglob("*.py")), EVOLUTION_REPORT]
    digest = hashlib.sha256(f"{number} {isolate} torch {version('torch')}".encode())
    for path in [*inputs, *stage_module_files(folder)]:
        digest.update(f"\0{path.name}\0{path.stat().st_size}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def judged(number: str, folder: Path, verdict_file: Path, isolate: str = "sandbox",
           threads: int = 2, secret: str = "") -> tuple[Outcomes, str | None]:
    """The verdict on `folder`: read from `verdict_file` if it was made for these very modules by these very
    checks, else the judge's (then saved there). A class is judged in parallel and recorded serially; a run that
    was stopped half way judges only the submissions it had not judged yet. `secret`, the course's: the judge's
    random choices come from it and the submission, so a re-grade prints the same messages, and the student's code
    cannot predict them."""
    key = submission_key(number, folder, isolate)
    try:
        saved = json.loads(verdict_file.read_text())
        if saved["key"] == key:
            return {group: [tuple(o) for o in outcomes] for group, outcomes in saved["outcomes"].items()}, saved["problem"]
    except (OSError, ValueError, KeyError):
        pass  # none yet, or not for this submission
    seed = int(hashlib.sha256(f"{secret}\0{key}".encode()).hexdigest()[:15], 16) if secret else None
    outcomes, problem = run_checks(number, folder, isolate=isolate, threads=threads, seed=seed)
    if not_graded_yet(problem):
        return outcomes, problem  # no verdict: not saved, so the next run judges it again
    verdict_file.parent.mkdir(parents=True, exist_ok=True)
    partial = verdict_file.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps({"key": key, "outcomes": outcomes, "problem": problem}, indent=1))
    os.replace(partial, verdict_file)  # whole or not at all, even if grading is killed here
    return outcomes, problem


def judge_environment(home: str, threads: int, seed: int | None = None) -> dict:
    """The judge's environment: the child's (set here, not inherited: a kernel's PYTHONPATH or PYTEST_PLUGINS stays
    out), with this machine's PATH (nbgrader's tools, bubblewrap), the course's data folder and the seed of the
    judge's own random choices (the child's environment never holds it)."""
    env = {**child_environment(home, threads), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           CACHE_ENV: str(cache_dir())}  # the tokenized corpus, which the judge reads and the child never does
    if os.environ.get(DATA_ENV):
        env[DATA_ENV] = os.environ[DATA_ENV]
    if seed is not None:
        env[JUDGE_SEED_ENV] = str(seed)
    return env


def not_graded_yet(problem: str | None) -> bool:
    """A run that reached no verdict because the machine was overloaded: never saved, graded on the next run."""
    return problem is not None and problem.startswith(OVERLOADED)


def run_checks(number: str, folder: Path, seconds: float | None = None, isolate: str = "process",
               threads: int = 2, select: str | None = None, defer_training: bool = False,
               seed: int | None = None) -> tuple[Outcomes, str | None]:
    """Every check of stage `number` on the stage modules of `folder`, by group, and a problem that stopped the
    run (or None; `not_graded_yet(problem)` when the machine was too busy to tell). isolate: where the student's
    code runs, "process" or "sandbox" (bubblewrap), with a budget of CPU seconds per check (limits.py);
    select: a pytest -m expression ("not training": no loss check); defer_training: the training checks are
    listed, not run (DEFERRED); seed: of the judge's random choices (default: unpredictable)."""
    with tempfile.TemporaryDirectory() as tmp:
        submission, report, evidence = Path(tmp) / "submission", Path(tmp) / "report.xml", Path(tmp) / "evidence.json"
        copy_stage_modules(Path(folder), submission)
        command = [sys.executable, "-I", "-m", "pytest", str(CHECKS / f"stage_{number}"),
                   f"--impl={submission}", f"--isolate={isolate}", f"--junitxml={report}", f"--evidence={evidence}", "-q",
                   "-p", "no:cacheprovider", f"--rootdir={CHECKS.parent}",
                   f"--timeout={FAST_CHECK_WALL_SECONDS + JUDGE_MARGIN_SECONDS}",  # the child's limits come first
                   *(["-m", select] if select else []), *(["--defer-training"] if defer_training else [])]
        process = subprocess.Popen(command, cwd=tmp, env=judge_environment(tmp, threads, seed), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=die_with_parent)  # a killed grading run leaves no judge running
        try:
            output = wait_for_judge(process, Budget(process.pid, float("inf"), seconds or ALL_CHECKS_WALL_SECONDS))
        except (OverBudget, MachineOverloaded) as error:
            return {}, str(error)
        if not report.exists():
            tail = output.decode(errors="replace").strip().splitlines()[-5:]
            return {}, "the checks could not run: " + " / ".join(tail)
        outcomes = read_outcomes(report)
        losses = [p.get("value", "") for p in ET.parse(report).iter("property") if p.get("name") == "loss"]
        if losses:  # the loss check's JUnit property, for the class report: a passing check has no message
            outcomes[LOSS] = [(losses[0], None)]
        goals = [p.get("value", "") for p in ET.parse(report).iter("property") if p.get("name") == "loss_goal"]
        if goals:  # and what it had to beat, for the feedback
            outcomes[LOSS_GOAL] = [(goals[0], None)]
        records = [*oversized_modules(stage_module_files(Path(folder))),
                   *(json.loads(evidence.read_text()) if evidence.exists() else [])]
        if records:  # for the instructor to review; no group, no points
            outcomes[EVIDENCE] = [(record, None) for record in records]
        overloaded = [message for group in outcomes.values() for _, message in group
                      if message and OVERLOADED in message]
        return outcomes, (overloaded[0][overloaded[0].index(OVERLOADED):] if overloaded else None)


def wait_for_judge(process: subprocess.Popen, budget: Budget) -> bytes:
    """The judge's output once it ends; it (and all it started) is killed if `budget` runs out, or at once when
    this waiting is interrupted (a notebook's interrupt, nbgrader's cell timeout)."""
    chunks: list[bytes] = []
    output = process.stdout
    assert output is not None  # run_checks opened it with stdout=PIPE
    try:
        while True:
            if select.select([output], [], [], 0.5)[0]:
                chunk = os.read(output.fileno(), 1 << 16)
                if not chunk:
                    process.wait()
                    return b"".join(chunks)
                chunks.append(chunk)
                continue
            budget.check()
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)  # pytest and anything the student's code started
        process.wait()
        raise


def read_outcomes(report: Path) -> Outcomes:
    """Outcomes by group from the judge's JUnit report (runner.py: skipped or errored is not passed).

    A pytest-timeout in the judge means the judge itself was starved (the student's code has its own, earlier
    limits, limits.py): the machine was overloaded, and the check says so."""
    outcomes: Outcomes = {}
    for check in read_report(report):
        problem = check.problem
        if problem and "Timeout" in problem and OVERLOADED not in problem:
            problem = f"{OVERLOADED}: the judge itself ran out of time ({problem.splitlines()[0]})"
        outcomes.setdefault(check.group, []).append((check.name, problem))
    return outcomes
