"""How long a student's code may take: CPU seconds it uses, not seconds on the clock.

A grading machine is often busy (other work, other students judged at once, a laptop on battery).
A wall-clock limit then fails honest code that was merely waiting for a CPU, and blames the
student for it. So each check gets a budget of CPU seconds, counted over the student's whole
process tree (every process and thread it started), and a separate, generous wall-clock backstop.
When the backstop is reached, the kernel's own accounting says why (``/proc/<pid>/task/*/schedstat``:
time on a CPU, time waiting in a run queue for one):

- it used its CPU budget: the code computes too much (a loop that never ends): a verdict;
- it mostly waited for a CPU: the machine was overloaded: no verdict, "not graded yet", and the
  next grading run judges it again;
- it neither ran nor waited to run (sleep, input(), a lock): a verdict.

Where /proc is missing (not Linux), only the wall clock is known, and a backstop is a verdict.
"""
import os
import time
from dataclasses import dataclass
from pathlib import Path

FAST_CHECK_CPU_SECONDS = 30.0  # an honest check of any stage uses under 3
FAST_CHECK_WALL_SECONDS = 300.0  # its backstop: 10x what an honest check uses on an idle machine, and more
TRAINING_CPU_SECONDS = 400.0  # the training, when the reference report has no time for the stage
TRAINING_CPU_FACTOR = 8.0  # CPU seconds per second the reference trained (2 threads use ~1.7): 4-5x its own cost
TRAINING_CPU_FLOOR = 120.0
TRAINING_WALL_SECONDS = 1800.0  # 60x the slowest stage's training on an idle 2-core machine
ALL_CHECKS_WALL_SECONDS = 7200.0  # one judge, every check: a backstop for what nothing else stopped
OVERLOADED = "not graded yet: the grading machine was overloaded"  # starts every such message
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def training_cpu_seconds(reference_seconds: list[float] | None) -> float:
    """The training check's CPU budget, set from the reference's own cost for the stage (its seconds per model)."""
    if not reference_seconds:
        return TRAINING_CPU_SECONDS
    return max(TRAINING_CPU_FLOOR, TRAINING_CPU_FACTOR * max(reference_seconds))


class MachineOverloaded(Exception):
    """The wall-clock backstop ran out while the code mostly waited for a CPU: not the student's doing."""


class OverBudget(Exception):
    """The student's code used its CPU budget, or waited without running past the backstop: a verdict."""


@dataclass(frozen=True)
class Usage:
    cpu: float  # seconds on a CPU, every process and thread of the tree
    waiting: float  # seconds runnable but waiting for a CPU


def tree_usage(root: int) -> Usage | None:
    """What process `root` and everything it started have used so far; None where /proc cannot tell."""
    proc = Path("/proc")
    if not (proc / str(root) / "stat").exists():
        return None
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # after "(command name)"
        except (OSError, IndexError):
            continue  # ended meanwhile
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    cpu = waiting = 0.0
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid not in stats:
            continue
        cpu += sum(int(t) for t in stats[pid][11:15]) / CLOCK_TICKS  # utime, stime, and of children it waited for
        for task in (proc / str(pid) / "task").glob("*/schedstat"):
            try:
                waiting += int(task.read_text().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                pass
        todo += children.get(pid, [])
    return Usage(cpu, waiting)


class Budget:
    """The limits of one check on the process tree under `root`: call `check()` while waiting for it."""

    def __init__(self, root: int, cpu_seconds: float, wall_seconds: float):
        self.root, self.cpu_seconds, self.wall_seconds = root, cpu_seconds, wall_seconds
        self.start, self.at_start = time.monotonic(), tree_usage(root) or Usage(0.0, 0.0)

    def check(self) -> None:
        """Raise OverBudget or MachineOverloaded when a limit is reached; else nothing."""
        elapsed = time.monotonic() - self.start
        usage = tree_usage(self.root)
        cpu = usage.cpu - self.at_start.cpu if usage else None
        if cpu is not None and cpu > self.cpu_seconds:
            raise OverBudget(f"your code used more than {self.cpu_seconds:g} CPU seconds on one check "
                             f"({cpu:.0f} s in {elapsed:.0f} s): does it loop forever?")
        if elapsed <= self.wall_seconds:
            return
        if usage is None:
            raise OverBudget(f"your code did not finish within {self.wall_seconds:g} s: does it loop forever?")
        assert cpu is not None  # measured: usage is not None
        waiting = usage.waiting - self.at_start.waiting
        if waiting > cpu or waiting > elapsed / 4:
            raise MachineOverloaded(f"{OVERLOADED} (in {elapsed:.0f} s your code ran {cpu:.0f} s and waited "
                                    f"{waiting:.0f} s for a CPU): it will be graded on the next run")
        if cpu > elapsed / 2:
            raise OverBudget(f"your code did not finish within {elapsed:.0f} s, computing all along "
                             f"({cpu:.0f} CPU seconds): does it loop forever?")
        raise OverBudget(f"your code did not finish within {elapsed:.0f} s and computed only {cpu:.0f} s of it: "
                         f"does it sleep, or wait for input() or a lock?")
