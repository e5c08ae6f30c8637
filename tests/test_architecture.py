"""docs/ARCHITECTURE.md, kept honest: who imports whom (parsed with ast: nothing is imported), modules short and
opening with a docstring, and the document naming every part of the library there is on disk."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lil_transformy"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
WINGS = ("grading", "course", "authoring", "full")
NOT_CORE = ("cli.py", "nbgrader_hooks.py")  # the command line reaches into every wing; the shim names grading's hooks
LONGEST_MODULE = 300  # lines
NEVER_IMPORTS = {  # part: the wings it never imports ("Who may import whom")
    "core": ("grading", "course", "authoring", "full"),
    "grading": ("course", "authoring", "full"),
    "full": ("grading", "course", "authoring"),
    "authoring": ("course",),
    "course": ("full",),
    "checks": ("course", "authoring", "full"),
}


def library_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def part_modules(part: str) -> list[Path]:
    if part == "core":
        return [path for path in sorted(PACKAGE.glob("*.py")) if path.name not in NOT_CORE]
    return sorted((ROOT / "checks" if part == "checks" else PACKAGE / part).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in `path`, also inside functions: `from A import b` gives A and A.b (b may be
    a module), a relative import is resolved, and so is importlib.import_module("...") with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                above = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(above + ([node.module] if node.module else []))
            found += [(node.lineno, base)] + [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


@pytest.mark.parametrize("part", NEVER_IMPORTS)
def test_imports_follow_the_architecture(part):
    forbidden = [f"lil_transformy.{wing}" for wing in NEVER_IMPORTS[part]]
    found = sorted({f"{path.relative_to(ROOT)}:{line} imports {name}" for path in part_modules(part)
                    for line, name in imports(path) if any(name == f or name.startswith(f"{f}.") for f in forbidden)})
    assert part_modules(part), f"no modules found for {part}"
    assert not found, (f"\n  expected: {part} never imports {', '.join(NEVER_IMPORTS[part])}\n  found:    "
                       + "\n            ".join(found)
                       + "\n  hint:     move what both need into the core, or the code into the wing that uses it "
                         "(docs/ARCHITECTURE.md, 'Who may import whom')")


def test_no_module_is_long():
    long = [f"{path.relative_to(ROOT)}: {n} lines" for path in library_modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > LONGEST_MODULE]
    assert not long, (f"\n  expected: every module of the library at most {LONGEST_MODULE} lines\n  found:    "
                      + "; ".join(long) + "\n  hint:     split it by job: one module, one thing a reader looks for")


def test_every_module_opens_with_a_docstring():
    bare = [str(path.relative_to(ROOT)) for path in library_modules()
            if ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None]
    assert not bare, (f"\n  expected: every module opens with a docstring saying what it is for\n  found:    "
                      f"none in {', '.join(bare)}\n  hint:     one line a newcomer reads first")


def documented_parts() -> dict[str, set[str]]:
    """docs/ARCHITECTURE.md's parts list: {"core" or a wing: the modules it names}."""
    parts = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"- \*\*(\w+)\*\* `lil_transformy/(?:(\w+)/)?`: (.*)", line):
            name, folder, modules = match.groups()
            assert name == (folder or "core"), f"the document's part {name!r} names the folder {folder!r}"
            parts[name] = set(re.findall(r"`(\w+\.py)`", modules))
    return parts


def test_the_document_names_every_part_on_disk():
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    on_disk = {"core": {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}}
    on_disk |= {wing: {p.name for p in (PACKAGE / wing).glob("*.py") if p.name != "__init__.py"} for wing in subpackages}
    assert sorted(WINGS) == subpackages, (f"\n  expected: the wings {sorted(WINGS)}\n  found:    the subpackages "
                                          f"{subpackages}\n  hint:     a new wing needs its import rules here and "
                                          f"its place in docs/ARCHITECTURE.md")
    documented = documented_parts()
    differences = [f"{part}: on disk, not in the document {sorted(on_disk.get(part, set()) - documented.get(part, set()))}"
                   f"; in the document, not on disk {sorted(documented.get(part, set()) - on_disk.get(part, set()))}"
                   for part in sorted(set(on_disk) | set(documented)) if on_disk.get(part) != documented.get(part)]
    assert not differences, ("\n  expected: docs/ARCHITECTURE.md's parts list names every module of the core and of "
                             "each wing\n  found:    " + "\n            ".join(differences)
                             + "\n  hint:     update the list under 'The parts'")
