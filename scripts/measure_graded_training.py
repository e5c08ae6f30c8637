"""How long one submission's grading takes (the judge, sandboxed, every check): the reference solution of a stage.

    PYTHONPATH=. python scripts/measure_graded_training.py 05 09 [--rounds 1]

Prints, per stage, the wall seconds of `run_checks` (what `course grade` runs per submission), its CPU seconds (the
judge and the sandboxed children: what a busy machine does not inflate), the loss check's result, the load average
before and after, and the CPU time the hypervisor took ("steal": a virtual machine's neighbours). To compare two versions side by side, run it alternately with each
version's Python (a virtual environment per checkout), on the same machine, under the same load.
"""
import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from lil_transformy import course
from lil_transformy.grading.judge import LOSS, run_checks
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage
from scripts.measure_grading import cpu_seconds, release_cpu_meter


def steal_seconds() -> float:
    return int(open("/proc/stat").readline().split()[8]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stages", nargs="+")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.rounds):
        for number in args.stages:
            with tempfile.TemporaryDirectory() as tmp:
                for module in course.stage_modules(get_stage(number)):
                    shutil.copy(REPO_ROOT / "solutions" / module, tmp)
                load, steal, cpu = os.getloadavg()[0], steal_seconds(), cpu_seconds()
                start = time.perf_counter()
                outcomes, problem = run_checks(number, Path(tmp), isolate="sandbox")
                seconds, cpu, steal = time.perf_counter() - start, cpu_seconds() - cpu, steal_seconds() - steal
            failed = [message for group, results in outcomes.items() if group != LOSS
                      for _, message in results if message]
            print(f"{REPO_ROOT.name} stage {number}: {seconds:.1f} s, CPU {cpu:.1f} s, loss "
                  f"{outcomes.get(LOSS, [('?', None)])[0][0]}, {len(failed)} failed, problem {problem}, load {load:.2f} -> "
                  f"{os.getloadavg()[0]:.2f}, steal {steal:.1f} s", flush=True)
    release_cpu_meter()


if __name__ == "__main__":
    main()
