"""How long a student waits: `pytest checks/stage_NN` per stage, as a student runs it, in four situations.

    python scripts/time_checks.py [--impl solutions] [--out reports]

Each stage runs in-process (this machine's threads), with a cache of its own: the fast checks alone
(`-m "not training"`); the stubs, whose fast checks fail (the loss check then fails at once, without
training); a first full run (the loss check trains the stage with the shared budget); and the same run
again, unchanged (the loss check answers from the cache). Budgets (issue 18): a failing run and an
unchanged re-run <= 5 s, a full run <= 25 s, on an idle machine. Writes OUT/check_times.md with the
load average before and after, since a busy machine gives longer times.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from lil_transformy.authoring.exercises import write_exercises  # noqa: E402
from lil_transformy.paths import CACHE_ENV, cache_dir  # noqa: E402
from lil_transformy.stages import DETOURS, STAGES  # noqa: E402

QUICK_BUDGET, FULL_BUDGET = 5, 25


def seconds(number: str, impl: str, cache: Path, *selection: str, passing: bool = True) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", f"checks/stage_{number}", f"--impl={impl}", "-q",
                           "-p", "no:cacheprovider", *selection], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, CACHE_ENV: str(cache)})
    if (done.returncode == 0) != passing:
        raise SystemExit(f"stage {number} {'failed' if passing else 'passed'}:\n{done.stdout[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="solutions")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args()
    before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache, stubs = Path(tmp) / "cache", Path(tmp) / "stubs"
        shutil.copytree(cache_dir(), cache, ignore=shutil.ignore_patterns("loss-checks", "trainings", "wheels", "datasets*"))
        write_exercises(target=stubs)
        for stage in STAGES + DETOURS:
            fast = seconds(stage.number, args.impl, cache, "-m", "not training")
            failing = seconds(stage.number, str(stubs), cache, passing=False)
            full = seconds(stage.number, args.impl, cache)
            again = seconds(stage.number, args.impl, cache)
            rows.append((stage, fast, failing, full, again))
            print(f"stage {stage.number}: fast {fast:.1f} s, stubs {failing:.1f} s, full {full:.1f} s, "
                  f"again {again:.1f} s", flush=True)
    lines = ["# How long `pytest checks/stage_NN` takes (scripts/time_checks.py)", "",
             f"{os.cpu_count()} cores, load average {before:.2f} before, {os.getloadavg()[0]:.2f} after; "
             f"`--impl {args.impl}`, wall seconds including pytest's start. Budgets: a run with a failing fast check "
             f"and an unchanged re-run <= {QUICK_BUDGET} s, a full run <= {FULL_BUDGET} s.", "",
             "| stage | model | fast checks | stubs (fast checks fail) | full run (trains) | re-run (cache) | "
             "within budget |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {s.number} | {s.title} | {fast:.1f} | {failing:.1f} | {full:.1f} | {again:.1f} | "
              f"{'yes' if max(failing, again) <= QUICK_BUDGET and full <= FULL_BUDGET else '**no**'} |"
              for s, fast, failing, full, again in rows]
    Path(args.out, "check_times.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
