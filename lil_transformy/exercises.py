"""exercises/ is generated from solutions/: every solution block becomes a stub.

A solution block in a stage module::

    ### BEGIN SOLUTION hint: one line that points the way
    ...the reference code...
    ### END SOLUTION

becomes, in the exercise module::

    # YOUR CODE HERE
    raise NotImplementedError("stage 04, attention_weights: not written yet. Hint: ...")

Everything outside the blocks is copied as it is, so the two never drift apart.
"""
import re
from pathlib import Path

from .errors import LilTransformyError
from .paths import REPO_ROOT

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION(?:\s+hint:\s*(?P<hint>.*))?$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
DEF = re.compile(r"^\s*(?:def|class)\s+(\w+)")


def stub_source(solution: str, stage_label: str) -> str:
    """The exercise version of one solution module's source."""
    out, inside, enclosing = [], None, "?"
    for number, line in enumerate(solution.splitlines(), start=1):
        if (found := DEF.match(line)) and inside is None:
            enclosing = found.group(1)
        if (begin := BEGIN.match(line)) is not None:
            if inside is not None:
                raise LilTransformyError(f"{stage_label}: line {number}: BEGIN SOLUTION inside a solution block")
            inside = number
            indent, hint = begin.group("indent"), (begin.group("hint") or "").strip()
            message = f"{stage_label}, {enclosing}: not written yet." + (f" Hint: {hint}" if hint else "")
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError({message!r})")
        elif END.match(line):
            if inside is None:
                raise LilTransformyError(f"{stage_label}: line {number}: END SOLUTION without BEGIN")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise LilTransformyError(f"{stage_label}: the solution block opened on line {inside} is never closed")
    return "\n".join(out) + "\n"


def expected_exercises(root: Path = REPO_ROOT) -> dict[str, str]:
    """File name -> the text exercises/ must hold."""
    files = {"__init__.py": '"""Your code: one module per stage, generated from solutions/ with stubs to fill in."""\n'}
    for path in sorted((root / "solutions").glob("stage_*.py")):
        label = "stage " + path.stem.split("_")[1]
        files[path.name] = stub_source(path.read_text(encoding="utf-8"), label)
    return files


def out_of_sync(root: Path = REPO_ROOT) -> list[str]:
    """The exercise files that differ from what solutions/ generates, or should not be there."""
    expected = expected_exercises(root)
    present = {p.name for p in (root / "exercises").glob("*.py")}
    differ = [name for name, text in expected.items()
              if not (root / "exercises" / name).exists() or (root / "exercises" / name).read_text(encoding="utf-8") != text]
    return sorted(differ + sorted(present - set(expected)))


def write_exercises(root: Path = REPO_ROOT, target: Path | None = None) -> list[Path]:
    """Write every exercise module (each file atomically); return the paths written."""
    target = target or root / "exercises"
    target.mkdir(parents=True, exist_ok=True)
    expected = expected_exercises(root)  # every file generated before any is written
    written = []
    for name, text in expected.items():
        path = target / name
        tmp = path.with_suffix(".py.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
