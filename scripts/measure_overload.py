"""Grade the reference of every stage while the machine is deliberately overloaded: a verdict must not depend on it.

As many busy loops as cores (or --hogs) run at normal priority while the judge, niced by --nice, grades
the reference solution of each stage (sandboxed where bubblewrap is installed). Every stage must get
full marks or be reported "not graded yet" (limits.py); a lower score is a wrong verdict and fails.
The result is appended to --out as a table, with the load it ran under.

    python scripts/measure_overload.py --nice 0 --out reports/overload.md
"""
import argparse
import os
import subprocess
import sys
import time

from lil_transformy.grading.judge import GROUPS, not_graded_yet, run_checks, verdict
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import DETOURS, STAGES


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=os.cpu_count(), help="busy loops (default: one per core)")
    parser.add_argument("--nice", type=int, default=0, help="the judge's niceness (0-19; higher: less CPU)")
    parser.add_argument("--stages", default=",".join(s.number for s in STAGES + DETOURS))
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "overload.md"))
    args = parser.parse_args()
    isolate = "sandbox" if bwrap() else "process"
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    os.nice(args.nice)  # the judge and the student's child inherit it
    rows, wrong = [], 0
    try:
        for number in args.stages.split(","):
            started, load = time.perf_counter(), os.getloadavg()[0]
            by_group, problem = run_checks(number, REPO_ROOT / "solutions", isolate=isolate, threads=os.cpu_count())
            seconds = time.perf_counter() - started
            points = [verdict(number, group, by_group, problem)[1] for group in by_group or GROUPS]
            full = sum(GROUPS[group].points for group in by_group or GROUPS)
            if not_graded_yet(problem):
                outcome = "not graded yet"
            else:
                outcome = "full marks" if sum(points) == full and by_group else f"WRONG: {sum(points):g} of {full}"
                wrong += outcome.startswith("WRONG")
            rows.append(f"| {number} | {outcome} | {seconds:.0f} s | {load:.1f} |")
            print(rows[-1], flush=True)
    finally:
        for hog in hogs:
            hog.kill()
    with open(args.out, "a") as report:
        report.write(f"\n## {args.hogs} busy loops on {os.cpu_count()} cores, judge niced {args.nice} ({isolate})\n\n"
                     f"| stage | verdict on the reference | wall time | load (1 min) at start |\n"
                     f"| --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
