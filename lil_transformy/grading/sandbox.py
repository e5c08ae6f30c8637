"""Where a student's code runs while it is graded: a child process, in a bubblewrap sandbox.

bubblewrap (``bwrap``, Debian's package; what Flatpak uses) builds the child a file system of its
own from a whitelist: the system's programs and libraries, Python and its packages, this library,
the tokenized corpus (all read-only), and the student's stage modules in a scratch folder, the
only place it may write. The gradebook, the course, other students' folders, the repository and
the reference solutions are simply not there. It has no network, its own process tree (everything
it starts dies with it), an unprivileged user, and limits on memory, processes, file size and,
through the judge, time.
"""
import ctypes
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import CACHE_ENV, DEVICE_ENV

SANDBOX_USER = 65534  # nobody: the sandbox's processes belong to no one else
MEMORY_LIMIT = 8 << 30  # bytes of address space (a 50 GiB allocation fails as a MemoryError)
PROCESS_LIMIT = 256  # processes and threads of the sandbox user
FILE_SIZE_LIMIT = 256 << 20  # bytes: the largest file it may write
WORKDIR = "/grading"  # the scratch folder, as the child sees it
# Folders of the package the child must not read: the corpus (its held-out text), the reference losses and the checks
# (where a wheel carries them). The tokenized corpus in the cache is not mounted at all: training tokens are sent.
HIDDEN_FROM_THE_CHILD = ("tinystories", "reports", "checks")
SYSTEM_DIRS = ("/usr", "/etc")


def bwrap() -> str | None:
    return shutil.which("bwrap")


def require_grading_environment(unsandboxed: bool) -> None:
    """Grading refuses to start where it cannot grade (grading_environment_problem), and runs students' code
    without the sandbox only when the instructor says so."""
    problem = grading_environment_problem(sandboxed=not unsandboxed)
    if problem:
        raise LilTransformyError(problem)


NO_SANDBOX_ADVICE = ("grading runs every student's code in its sandbox: install bubblewrap (Debian/Ubuntu: apt-get "
                     "install bubblewrap) where user namespaces are allowed, or grade with --unsandboxed (a student's "
                     "code could then read and change the gradebook and other students' work)")


@functools.cache
def grading_environment_problem(sandboxed: bool = True) -> str | None:
    """Why this machine cannot grade, in one line (None: it can). The child is started exactly as grading starts it
    (in the sandbox unless `sandboxed` is False) and must import torch and the library: a missing bubblewrap, a
    container without user namespaces or a missing dependency is found here, before any student is judged, and is
    never mistaken for a student's mistake. Asked once per process (about 2 s)."""
    if sandboxed and bwrap() is None:
        return f"cannot grade here: bubblewrap (bwrap) is not installed, and {NO_SANDBOX_ADVICE}"
    with tempfile.TemporaryDirectory() as scratch:
        probe = [sys.executable, "-I", "-c", "import torch, lil_transformy.grading.remote"]
        child = sandboxed_child(Path(scratch), 1, probe) if sandboxed else plain_child(Path(scratch), 1, probe)
        try:
            done = subprocess.run(child.command, env=child.env, cwd=child.cwd, preexec_fn=child.preexec,
                                  capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"cannot grade here: the grading child does not start ({error})"
        finally:
            child.cleanup()
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    where = "the sandbox (bubblewrap)" if sandboxed else "the grading child"
    return (f"cannot grade here: {where} does not start ({last})" +
            (f"; {NO_SANDBOX_ADVICE}" if sandboxed else "; install what the course needs (pip install lil-transformy)"))


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")  # cgroup v1 pids controller, where this machine has one


LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: a child forked from a threaded grader must not load it


def die_with_parent() -> None:
    """In a forked child, before exec: SIGKILL when the thread that started it ends (prctl PR_SET_PDEATHSIG)."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Child:
    """How to start the grading child: its command, environment and folder, and its limits."""
    command: list[str]
    env: dict
    cwd: str
    cgroup: Path | None = None  # a pids cgroup that caps its processes (root only; else RLIMIT_NPROC)

    def preexec(self) -> None:
        """In the forked child, before exec: the limits, which every process it starts inherits."""
        die_with_parent()  # dies with the judge
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))
        elif os.geteuid() != 0:  # root is exempt from RLIMIT_NPROC
            resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))

    def cleanup(self) -> None:
        """Kill whatever is left in its cgroup, and remove the cgroup."""
        if self.cgroup is None or not self.cgroup.exists():
            return
        for _ in range(50):
            pids = (self.cgroup / "cgroup.procs").read_text().split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            try:
                self.cgroup.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def pids_cgroup() -> Path | None:
    """A fresh pids cgroup capped at PROCESS_LIMIT, where we may make one."""
    if os.geteuid() != 0 or not (PIDS_CGROUP / "cgroup.procs").exists():
        return None
    try:
        group = PIDS_CGROUP / "lil_transformy" / uuid.uuid4().hex
        group.mkdir(parents=True)
        (group / "pids.max").write_text(str(PROCESS_LIMIT))
        return group
    except OSError:
        return None


def child_environment(home: str, threads: int) -> dict:
    """A clean, whitelisted environment: nothing the grader's (or a student's) shell had set reaches the child.
    It grades on the reference device, the CPU, with the judge's share of its threads, and keeps freed memory
    (train.keep_freed_memory: the same, for all the child does). Its threads wait for each other asleep, not
    spinning: on a busy machine a spinning thread burns CPU seconds while its partner waits for a core, and the
    CPU-second budgets (limits.py) would count the machine's load against the student."""
    return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", CACHE_ENV: str(Path(home) / ".cache"),
            DEVICE_ENV: "cpu", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "GOMP_SPINCOUNT": "10000",
            "MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "4294967296"}


def python_command(folder: Path) -> list[str]:
    return [sys.executable, "-I", "-m", "lil_transformy.grading.remote", str(folder)]


def plain_child(folder: Path, threads: int = 2, command: list[str] | None = None) -> Child:
    """The child without a sandbox: a clean environment and working folder only (a student's own machine).
    `command`: what it runs (default: the grading child, remote.py)."""
    return Child(command or python_command(folder), child_environment(str(folder), threads), str(folder))


def sandboxed_child(scratch: Path, threads: int = 2, command: list[str] | None = None) -> Child:
    """The child in a bubblewrap sandbox that sees only what it needs; `scratch` holds the student's modules.
    `command`: what it runs in there (default: the grading child, remote.py)."""
    import lil_transformy

    package = Path(lil_transformy.__file__).parent
    readonly = {Path(d) for d in SYSTEM_DIRS} | {Path(sys.base_prefix), Path(sys.prefix), package}
    program = bwrap()
    assert program is not None, "bubblewrap is missing: grading asks grading_environment_problem() first"
    args = [program, "--unshare-all", "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin"]
    if os.geteuid() == 0:  # run as nobody in a user namespace of its own, without capabilities
        args += ["--unshare-user", "--uid", str(SANDBOX_USER), "--gid", str(SANDBOX_USER), "--cap-drop", "ALL"]
    for path in sorted(readonly, key=lambda p: len(p.parts)):  # outer folders first
        args += ["--ro-bind", str(path), str(path)]
    for hidden in HIDDEN_FROM_THE_CHILD:  # what a verdict is computed from: the child gets only what it is sent
        if (package / hidden).is_dir():
            args += ["--tmpfs", str(package / hidden)]
    args += ["--bind", str(scratch), WORKDIR, "--chdir", WORKDIR, "--", *(command or python_command(Path(WORKDIR)))]
    return Child(args, child_environment(WORKDIR, threads), str(scratch), pids_cgroup())
