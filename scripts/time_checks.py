"""How long a student waits: `pytest checks/stage_NN` per stage, the fast checks alone and all of them.

    python scripts/time_checks.py [--impl solutions] [--out reports]

Each stage runs as a student runs it (in-process, this machine's threads), twice: `-m "not training"`
(the fast checks) and everything (the loss check trains the stage with the shared budget). Budgets:
fast checks <= 5 s, the whole stage <= 40 s, on an idle machine. Writes OUT/check_times.md; prints
the load average before and after, since a busy machine gives longer times.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from lil_transformy.stages import DETOURS, STAGES  # noqa: E402

FAST_BUDGET, STAGE_BUDGET = 5, 40


def seconds(number: str, impl: str, *selection: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", f"checks/stage_{number}", f"--impl={impl}", "-q",
                           "-p", "no:cacheprovider", *selection], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"stage {number} failed:\n{done.stdout[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="solutions")
    parser.add_argument("--out", default="reports")
    args = parser.parse_args()
    before = os.getloadavg()[0]
    rows = []
    for stage in STAGES + DETOURS:
        fast = seconds(stage.number, args.impl, "-m", "not training")
        whole = seconds(stage.number, args.impl)
        rows.append((stage.number, stage.title, fast, whole))
        print(f"stage {stage.number}: fast {fast:.1f} s, all {whole:.1f} s", flush=True)
    lines = ["# How long `pytest checks/stage_NN` takes (scripts/time_checks.py)", "",
             f"{os.cpu_count()} cores, load average {before:.2f} before, {os.getloadavg()[0]:.2f} after; "
             f"`--impl {args.impl}`, wall seconds including pytest's start. Budgets: fast checks <= {FAST_BUDGET} s, "
             f"the stage <= {STAGE_BUDGET} s.", "",
             "| stage | model | fast checks s | all checks s | within budget |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {n} | {title} | {fast:.1f} | {whole:.1f} | "
              f"{'yes' if fast <= FAST_BUDGET and whole <= STAGE_BUDGET else '**no**'} |" for n, title, fast, whole in rows]
    Path(args.out, "check_times.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
