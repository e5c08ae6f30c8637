"""Grading throughput: `course grade --jobs 1` against `--jobs 2`, side by side, and a class-size projection.

    PYTHONPATH=. python scripts/measure_grading.py [--students 6] [--rounds 2] [--out reports]

1. One stage-03 course with `--students` solved submissions; each round grades a fresh copy with
   --jobs 1, then another with --jobs 2 (alternating, so drifting load hits both alike): wall time,
   students per minute, CPU seconds (of grading: judges, sandboxes, recording).
2. The cost of one solved submission of every stage, judged alone with one CPU thread (CPU seconds,
   the sandbox and the judge included), and of recording one through nbgrader (a saved verdict:
   autograde + feedback, serial in `course grade`): from these, the projected wall time for a class
   on a bigger server, judges in parallel and recording one at a time.
Writes OUT/grading_throughput.md and .json; prints the load average before and after.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lil_transformy import course
from lil_transformy.course import autograde, gradebook
from lil_transformy.grading.judge import run_checks
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import DETOURS, STAGES, get_stage

CLASS, SERVER_CORES = 200, 32


CPUACCT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1 CPU accounting, where this machine has it (as root)


def cpu_seconds() -> float:
    """CPU time of this process and everything it starts (the sandboxed children too, which their judges do not
    wait for, so rusage misses them): a cpuacct cgroup where we may make one, else the whole machine's busy time
    from /proc/stat (then the machine must be otherwise idle)."""
    group = CPUACCT / f"lil_transformy_measure_{os.getpid()}"
    if os.geteuid() == 0 and (CPUACCT / "cgroup.procs").exists():
        if not group.exists():
            group.mkdir()
            (group / "cgroup.procs").write_text(str(os.getpid()))  # children started from now on are counted
        return int((group / "cpuacct.usage").read_text()) / 1e9
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, open("/proc/stat").readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def release_cpu_meter() -> None:
    group = CPUACCT / f"lil_transformy_measure_{os.getpid()}"
    if group.exists():
        (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
        group.rmdir()


def solved(stage, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for module in course.stage_modules(stage):
        shutil.copy(REPO_ROOT / "solutions" / module, folder)
    return folder


def side_by_side(tmp: Path, students: int, rounds: int) -> list[dict]:
    stage = get_stage("03")
    template = tmp / "template"
    course.build(template, [stage])
    for i in range(students):
        submission = template / "submitted" / f"student_{i}" / "stage_03"
        shutil.copytree(template / "release" / "stage_03", submission)
        for module in course.stage_modules(stage):
            shutil.copy(REPO_ROOT / "solutions" / module, submission)
    runs = []
    for round_ in range(rounds):
        for jobs in (1, 2):
            root = tmp / f"round{round_}_jobs{jobs}"
            shutil.copytree(template, root)
            wall, cpu = time.perf_counter(), cpu_seconds()
            scores, _ = course.grade_class(root, [stage], jobs=jobs)
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            assert all(score == full for score, full in scores.values()), scores
            runs.append({"round": round_, "jobs": jobs, "seconds": wall, "cpu_seconds": cpu,
                         "students_per_minute": students / wall * 60})
            print(f"round {round_} --jobs {jobs}: {wall:.1f} s, {cpu:.0f} CPU s", flush=True)
    return runs


def recording_seconds(tmp: Path) -> float:
    """Seconds to record one stage-03 submission whose verdict is saved (the last side-by-side run's)."""
    root = sorted(tmp.glob("round*_jobs2"))[-1]
    api = gradebook.gradebook_api(root, None, True, 1)
    students = sorted(p.name for p in (root / "submitted").iterdir())
    start = time.perf_counter()
    for student in students:
        assert autograde.record(api, root, student, "stage_03") is None
    return (time.perf_counter() - start) / len(students)


def per_stage_cost(tmp: Path) -> dict:
    cost = {}
    for stage in STAGES + DETOURS:
        wall, cpu = time.perf_counter(), cpu_seconds()
        outcomes, problem = run_checks(stage.number, solved(stage, tmp / f"solved_{stage.number}"),
                                       isolate="sandbox", threads=1)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        assert problem is None and all(m is None for o in outcomes.values() for _, m in o), (stage.number, outcomes)
        cost[stage.number] = {"seconds": wall, "cpu_seconds": cpu}
        print(f"stage {stage.number}: {wall:.1f} s, {cpu:.1f} CPU s (1 thread)", flush=True)
    return cost


def report(runs: list[dict], record_s: float, cost: dict, students: int, loads: tuple) -> str:
    by_jobs = {j: [r for r in runs if r["jobs"] == j] for j in (1, 2)}
    mean = {j: sum(r["seconds"] for r in rs) / len(rs) for j, rs in by_jobs.items()}
    busy = sum(r["cpu_seconds"] for r in by_jobs[1]) / sum(r["seconds"] for r in by_jobs[1])
    per_student = sum(c["cpu_seconds"] for c in cost.values())
    submissions = CLASS * len(cost)
    judging = CLASS * per_student / SERVER_CORES
    recording = submissions * record_s
    lines = [
        "# Grading throughput (scripts/measure_grading.py)", "",
        f"Machine: {os.cpu_count()} cores, load average {loads[0]} before, {loads[1]} after. "
        f"{students} solved stage-03 submissions, sandboxed, graded by `course grade` on fresh copies of one "
        f"course, --jobs 1 and --jobs 2 alternating.", "",
        "| round | --jobs | wall s | students / min | CPU s |", "| --- | --- | --- | --- | --- |",
        *[f"| {r['round']} | {r['jobs']} | {r['seconds']:.1f} | {r['students_per_minute']:.2f} | "
          f"{r['cpu_seconds']:.0f} |" for r in runs], "",
        f"**--jobs 2 / --jobs 1 = {mean[2] / mean[1]:.2f}** (mean wall time {mean[2]:.1f} s / {mean[1]:.1f} s). "
        f"--jobs 1 already keeps {busy:.2f} of the {os.cpu_count()} cores busy (one student's model on all the "
        f"cores' threads): on this machine parallel grading can only win back what one student leaves idle (the "
        f"serial start of each judge, the threads' overhead). Where one small model cannot use every core (a "
        f"32-core server), --jobs is what fills them.", "",
        "## One solved submission per stage, judged alone with 1 CPU thread", "",
        "| stage | wall s | CPU s |", "| --- | --- | --- |",
        *[f"| {n} | {c['seconds']:.1f} | {c['cpu_seconds']:.1f} |" for n, c in cost.items()],
        f"| all {len(cost)} | {sum(c['seconds'] for c in cost.values()):.0f} | {per_student:.0f} |", "",
        f"Recording one submission through nbgrader (autograde with a saved verdict, feedback): "
        f"{record_s:.2f} s, serial.", "",
        f"## Projection: {CLASS} students x {len(cost)} stages on a {SERVER_CORES}-core server", "",
        f"- Judging: {CLASS} x {per_student:.0f} CPU s / {SERVER_CORES} cores = {judging / 60:.0f} min "
        f"(`--jobs {SERVER_CORES}`, 1 thread each; assumes the cores scale as independent processes do).",
        f"- Recording, one at a time: {submissions} x {record_s:.2f} s = {recording / 60:.0f} min; it overlaps the "
        f"judging (each verdict is recorded as it arrives), so one machine needs about "
        f"{max(judging, recording) / 60:.0f} min.",
        "- Recording is serial per grading process. When it is the bound, run several shares on one server or "
        "several servers (`--shard K/M --db postgresql://…`, each with `--jobs cores/M`): "
        f"{CLASS} students in 4 shares record in ~{recording / 4 / 60:.0f} min.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="reports")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from OUT/grading_throughput.json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.render:
        saved = json.loads((out / "grading_throughput.json").read_text())
        (out / "grading_throughput.md").write_text(report(saved["runs"], saved["recording_seconds"], saved["per_stage"],
                                                          saved["students"], tuple(saved["load"])))
        return
    before = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = side_by_side(Path(tmp), args.students, args.rounds)
            record_s = recording_seconds(Path(tmp))
            cost = per_stage_cost(Path(tmp))
    finally:
        release_cpu_meter()
    loads = (f"{before:.2f}", f"{os.getloadavg()[0]:.2f}")
    (out / "grading_throughput.json").write_text(json.dumps(
        {"runs": runs, "recording_seconds": record_s, "per_stage": cost, "load": loads, "students": args.students},
        indent=1) + "\n")
    (out / "grading_throughput.md").write_text(report(runs, record_s, cost, args.students, loads))
    print((out / "grading_throughput.md").read_text())


if __name__ == "__main__":
    sys.exit(main())
