"""exercises/ is generated from solutions/: every solution block becomes a stub.

A solution block in a stage module::

    ### BEGIN SOLUTION hint: one line that points the way
    ...the reference code...
    ### END SOLUTION

becomes, in the exercise module::

    # YOUR CODE HERE
    raise NotImplementedError("stage 04, attention_weights: not written yet. Hint: ...")

Everything outside the blocks is copied as it is, so the two never drift apart.

A student's files are sacred: ``exercises/generated.sha256`` records the hash of every file as it
was generated, and a file that differs from it (a student's work) is never overwritten without
``force``.
"""
import hashlib
import re
from pathlib import Path

from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import REPO_ROOT

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION(?:\s+hint:\s*(?P<hint>.*))?$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
DEF = re.compile(r"^\s*(?:def|class)\s+(\w+)")
MANIFEST = "generated.sha256"  # `sha256sum` format: the hash of every exercise file as generated


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


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_text(files: dict[str, str]) -> str:
    return "".join(f"{sha256(text)}  {name}\n" for name, text in sorted(files.items()))


def recorded_hashes(target: Path) -> dict[str, str]:
    path = target / MANIFEST
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return {name: digest for digest, _, name in (line.partition("  ") for line in lines)}


def edited_files(target: Path, expected: dict[str, str]) -> list[Path]:
    """The files in `target` that someone changed after they were generated: a student's work."""
    recorded = recorded_hashes(target)
    edited = []
    for name, text in expected.items():
        path = target / name
        if path.exists():
            current = path.read_text(encoding="utf-8")
            if current != text and recorded.get(name) != sha256(current):
                edited.append(path)
    return edited


def out_of_sync(root: Path = REPO_ROOT) -> list[str]:
    """The exercise files that differ from what solutions/ generates, or should not be there."""
    expected = expected_exercises(root)
    expected[MANIFEST] = manifest_text(expected)
    present = {p.name for p in (root / "exercises").glob("*.py")} | {MANIFEST}
    differ = [name for name, text in expected.items()
              if not (root / "exercises" / name).exists() or (root / "exercises" / name).read_text(encoding="utf-8") != text]
    return sorted(differ + sorted(present - set(expected)))


def write_exercises(root: Path | None = None, target: Path | None = None, force: bool = False) -> list[Path]:
    """Write every exercise module (each file atomically) and the manifest; return the paths written.

    Refuses, writing nothing, when a file was edited since it was generated, unless `force`.
    """
    root = root or REPO_ROOT
    target = target or root / "exercises"
    target.mkdir(parents=True, exist_ok=True)
    expected = expected_exercises(root)  # every file generated before any is written
    edited = [] if force else edited_files(target, expected)
    if edited:
        raise LilTransformyError(
            "not overwriting files edited since they were generated (a student's work?): "
            + ", ".join(str(p) for p in edited) + ". Nothing was written. Move them away to start afresh; "
            "maintainers who mean to discard them: --force")
    written = []
    for name, text in {**expected, MANIFEST: manifest_text(expected)}.items():
        path = target / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
