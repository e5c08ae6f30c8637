"""`lil-transformy progress`: a student's view of the whole course on one screen."""
import json
import statistics
from dataclasses import dataclass, field

from lil_transformy.paths import CHECKS, EVOLUTION_REPORT
from lil_transformy.runner import NOT_YOUR_CODE, run_pytest
from lil_transformy.stages import DETOURS, STAGES, implementation_folder
from lil_transformy.tokens import load_token_data
from lil_transformy.trainings import latest_entry, training_key

LEGEND = """
fast checks  n/m: n of the stage's m fast checks (pytest checks/stage_NN -m 'not training') pass
             on your code; # one that passes, . one that does not yet; done: all of them pass.
             A few pass on an untouched stub by design (such as "no ready-made attention": a stub
             uses none either), so a stage you have not started may read 1/10.
             *: some checks could not run for a reason outside your code (data, tokenizer): not in m.
your loss    held-out loss (nats / token, lower is better) of the stage's one training with the shared
             budget in this folder (--impl), as its loss check found it (or its notebook, `lil-transformy
             train NN`, whichever trained it first). ~: your code (or the library) changed since: the
             next loss check, notebook or `train` trains it again.
reference    the same for the reference solution, mean over its seeds (reports/evolution.md).
             -: not trained yet (yours), not in the report (reference)."""


@dataclass
class StageChecks:
    passed: int = 0
    total: int = 0
    setup_problems: set = field(default_factory=set)  # why some checks could not run: not the student's code


def own_losses(impl: str) -> dict[str, str]:
    """Stage number -> the held-out loss of its kept training in `impl` (lil_transformy/trainings.py), "~" after it
    when what it was trained from has changed since."""
    folder, data, losses = implementation_folder(impl), None, {}
    for stage in STAGES + DETOURS:
        entry = latest_entry(stage.number, folder)
        if entry is None:
            continue
        data = data or load_token_data()
        loss = entry["check"]["loss"] if entry.get("check") else entry["val_loss"]
        losses[stage.number] = f"{loss:.3f}" + ("" if entry["key"] == training_key(stage.number, folder, data) else "~")
    return losses


def fast_check_results(impl: str) -> dict[str, StageChecks]:
    """Stage number -> its fast checks, from one pytest run (runner.py: skipped or errored is not passed)."""
    outcomes, _ = run_pytest(str(CHECKS), f"--impl={impl}", "-m", "not training", "-q", timeout=300)
    results: dict[str, StageChecks] = {}
    for check in outcomes:
        stage = results.setdefault(check.stage, StageChecks())
        problem = check.problem or ""
        setup = problem.split(NOT_YOUR_CODE, 1)[1].strip().splitlines()[0] if NOT_YOUR_CODE in problem else None
        if setup:  # a check that could not run is not counted against the student
            stage.setup_problems.add(setup)
        stage.total += not setup
        stage.passed += check.passed
    return results


def show_progress(impl: str = "exercises") -> int:
    checks = fast_check_results(impl)
    reference = json.loads(EVOLUTION_REPORT.read_text())["stages"] if EVOLUTION_REPORT.exists() else {}
    mine = own_losses(impl)
    width = max([12] + [result.total for result in checks.values()])  # one mark per check
    print(f"{'stage':<6}{'':<15}{'fast checks':<{width + 6}}{'your loss':>10}{'reference':>11}")
    setup_problems = set()
    for stage in sorted(STAGES + DETOURS, key=lambda s: s.number):
        result = checks.get(stage.number, StageChecks())
        setup_problems |= result.setup_problems
        bar = "#" * result.passed + "." * (result.total - result.passed)
        if not result.total:
            done = "none ran"
        else:
            done = "done" if result.passed == result.total else f"{result.passed}/{result.total}"
        done += "*" if result.setup_problems else ""
        ref = reference.get(stage.number)
        ref_text = f"{statistics.fmean(ref['val_loss']):.3f}" if ref else "-"
        own = mine.get(stage.number, "-")
        print(f"{stage.number:<6}{stage.title:<15}{bar:<{width}}{done:>6}{own:>10}{ref_text:>11}")
    for problem in sorted(setup_problems):
        print(f"* some checks could not run, and are not counted: {problem}")
    print(LEGEND)
    return 0 if not setup_problems else 2
