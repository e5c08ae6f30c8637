"""Mutants (realistic mistakes the checks must catch) and variants (other correct code they must pass).

Each is a TOML file: the stage it patches, what it is, and one or more exact replacements
applied to a copy of solutions/. A mutant also names the check group that must catch it::

    stage = "04"
    mistake = "no causal mask: every position attends to the future"
    caught_by = "no_peeking"          # a substring of the check names that must fail
    [[replace]]
    old = '''    scores = scores.masked_fill(...)\n'''
    new = ''

The patched copy is graded through the same --impl path a student's folder is.
"""
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import REPO_ROOT
from lil_transformy.runner import run_pytest
from lil_transformy.stages import DETOURS, STAGES, get_stage


@dataclass
class Patch:
    name: str
    stage: str
    about: str  # the mistake, or the way of writing it
    caught_by: str | None  # mutants only
    replacements: list[dict]


@dataclass
class Outcome:
    patch: Patch
    failed: list[str]  # names of the checks that failed
    passed: list[str]
    seconds: float


def read_patches(folder: Path) -> list[Patch]:
    patches = []
    for path in sorted(folder.glob("*.toml")):
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        patches.append(Patch(path.stem, get_stage(spec["stage"]).number, spec.get("mistake") or spec["way"],
                             spec.get("caught_by"), spec["replace"]))
    return patches


def named(kind: str, name: str) -> Patch:
    """mutants/NAME.toml or variants/NAME.toml."""
    found = [p for p in read_patches(REPO_ROOT / kind) if p.name == name]
    if not found:
        raise LilTransformyError(f"there is no {kind}/{name}.toml")
    return found[0]


def solutions_with(target: Path, module: str, old: str, new: str) -> Path:
    """A copy of solutions/ in `target` with one mistake: every `old` (it must occur) replaced by `new` in `module`."""
    stage = next(s for s in STAGES + DETOURS if f"{s.module}.py" == module)
    apply(Patch("a copy", stage.number, "", None, []), target)
    source = (target / module).read_text(encoding="utf-8")
    if old not in source:
        raise LilTransformyError(f"{old!r} is not in {module}: update the mistake to the solution")
    (target / module).write_text(source.replace(old, new), encoding="utf-8")
    return target


def apply(patch: Patch, target: Path) -> Path:
    """A copy of solutions/ in `target` with the patch applied; every `old` must occur exactly once."""
    shutil.copytree(REPO_ROOT / "solutions", target, ignore=shutil.ignore_patterns("__pycache__"))
    module = target / f"{get_stage(patch.stage).module}.py"
    source = module.read_text(encoding="utf-8")
    for replacement in patch.replacements:
        if source.count(replacement["old"]) != 1:
            raise LilTransformyError(f"{patch.name}: the text to replace occurs {source.count(replacement['old'])} "
                                     f"times in {module.name}, not once: update the patch to the solution")
        source = source.replace(replacement["old"], replacement["new"])
    module.write_text(source, encoding="utf-8")
    return target


def check_patch(patch: Patch, workdir: Path, training: bool) -> Outcome:
    """Run the stage's checks against the patched copy, as `pytest checks/stage_NN --impl <copy>`."""
    impl = apply(patch, workdir / patch.name)
    start = time.perf_counter()
    outcomes, _ = run_pytest(f"checks/stage_{patch.stage}", f"--impl={impl}", "-q",
                             *([] if training else ["-m", "not training"]), timeout=900)
    failed = [check.name for check in outcomes if not check.passed] if outcomes else ["no checks ran"]
    return Outcome(patch, failed, [check.name for check in outcomes if check.passed], time.perf_counter() - start)


def run_suite(kind: str, only: str | None = None) -> int:
    """`lil-transformy mutants` / `variants`: grade every patch, print a table, 0 when all is well."""
    import tempfile

    from tqdm.auto import tqdm

    patches = [p for p in read_patches(REPO_ROOT / kind) if only in (None, p.name)]
    if not patches:
        raise LilTransformyError(f"no {kind} found" + (f" named {only!r}" if only else ""))
    rows, bad = [], 0
    with tempfile.TemporaryDirectory() as workdir:
        for patch in tqdm(patches, desc=kind, unit=kind[:-1]):
            training = kind == "variants" or "loss" in (patch.caught_by or "")
            outcome = check_patch(patch, Path(workdir), training)
            verdict = caught_or_not(outcome) if kind == "mutants" else ("passes" if not outcome.failed else "FAILS")
            bad += verdict not in ("caught", "passes")
            shown = ", ".join(outcome.failed) if kind == "mutants" else ", ".join(outcome.failed) or "all checks pass"
            rows.append(f"| {patch.name} | {patch.stage} | {patch.about} | {verdict} | {shown} | {outcome.seconds:.0f} |")
    header = "caught by" if kind == "mutants" else "failing checks"
    print(f"| {kind[:-1]} | stage | what | verdict | {header} | s |\n| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"{len(patches) - bad} of {len(patches)} {kind} as expected")
    return 1 if bad else 0


def caught_or_not(outcome: Outcome) -> str:
    if not outcome.failed:
        return "SURVIVED"
    caught_by = outcome.patch.caught_by
    assert caught_by is not None  # a mutant names the checks that must catch it
    if not any(caught_by in name for name in outcome.failed):
        return f"WEAK (expected {outcome.patch.caught_by})"
    return "caught"
