"""What the student's code did in its child that no lesson needs: evidence for the instructor, never a verdict.

Python's audit hooks (PEP 578) report imports, file opens, frame inspection and new processes; the
child records those its student's code caused (a frame of the student's folder is on the stack): the
course library or pytest imported, frames inspected, files read beyond its own modules and Python,
processes started, sockets opened. A snapshot of the modules the judge relies on (torch, builtins,
the library) shows an attribute the student's code replaced. CPython says audit hooks are no
sandbox (bubblewrap is): code can evade them, so a missing record proves nothing, and a record
only flags a submission for review: it keeps the points its checks gave.
"""
import sys
from pathlib import Path
from types import FrameType

from lil_transformy.stages import IMPL_PACKAGE

WATCHED_MODULES = ("builtins", "torch", "torch.nn", "torch.nn.functional", "numpy")
LIBRARIES = ("lil_transformy", "pytest", "_pytest")

LARGEST_LESSON = 64 << 10  # bytes: the largest stage module of the reference is 7 KB; a weight blob is far larger


class Evidence:
    """Installed in the child before the student's code runs; `records()` says what it saw."""

    def __init__(self, folder: str):
        self.folder = str(Path(folder).resolve())
        self.allowed = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, "/usr", "/etc/ld.so.cache"})
        self.seen: list[str] = []
        self.busy = False
        self.snapshot = self.module_attributes()
        sys.addaudithook(self.hook)

    def module_attributes(self) -> dict[tuple[str, str], int]:  # at the start: what is bound, by identity
        names = [*WATCHED_MODULES, *(n for n in sys.modules if n.startswith("lil_transformy"))]
        return {(name, attr): id(value) for name in names if name in sys.modules
                for attr, value in vars(sys.modules[name]).items()}

    def from_student(self) -> bool:
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename.startswith(self.folder):
                return True
            frame = frame.f_back
        return False

    def note(self, what: str) -> None:
        if what not in self.seen and len(self.seen) < 20:
            self.seen.append(what)

    def hook(self, event: str, args: tuple) -> None:
        if self.busy or event not in ("import", "open", "sys._getframe", "sys._current_frames", "subprocess.Popen",
                                      "os.system", "os.exec", "os.fork", "socket.connect", "ctypes.dlopen"):
            return
        self.busy = True  # the hook's own work raises events too
        try:
            if not self.from_student():
                return
            if event == "import" and str(args[0]).split(".")[0] in LIBRARIES:
                if not any(seen.startswith(f"imports {str(args[0]).split('.')[0]}") for seen in self.seen):
                    self.note(f"imports {args[0]}")  # the first: what it imports imports more
            elif event == "open" and isinstance(args[0], str):
                path = Path(self.folder, args[0]).resolve()
                compiled = "__pycache__" in path.parts or path.suffix == ".py"  # importing, not reading
                if not str(path).startswith((self.folder, *self.allowed)) and not compiled:
                    self.note(f"opens {path}")
            elif event in ("sys._getframe", "sys._current_frames"):
                self.note("inspects the call stack (sys._getframe)")
            elif event not in ("import", "open"):
                self.note(f"{event} ({str(args[0])[:60]})")
        finally:
            self.busy = False

    def records(self) -> list[str]:
        """What it saw, and the attributes of the watched modules now bound to something the student's modules
        defined (torch rebinds some of its own lazily: those are not the student's)."""
        replaced = []
        for (name, attr), ident in self.snapshot.items():
            value = getattr(sys.modules[name], attr, None)
            if id(value) != ident and str(getattr(value, "__module__", "")).startswith(IMPL_PACKAGE):
                replaced.append(f"{name}.{attr}")
        return self.seen + [f"replaces {name}" for name in sorted(replaced)[:10]]


def oversized_modules(files: list[Path]) -> list[str]:
    """A stage module far larger than any lesson's: a weight blob, perhaps (the judge looks at the files)."""
    return [f"{path.name} is {path.stat().st_size / 1024:.0f} KB, far larger than any lesson's module"
            for path in files if path.stat().st_size > LARGEST_LESSON]
