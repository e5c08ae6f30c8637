"""Fixtures every stage's checks use. A check file's folder (checks/stage_NN) names its stage.

With ``--isolate process|sandbox`` (how grading runs) the student's module is never imported here:
`stage` and `Model` are handles on objects in a child process (lil_transformy.remote), and the
checks judge only the data that comes back.
"""
import shutil
from dataclasses import replace

import pytest
import torch

from lil_transformy import checking, sandbox
from lil_transformy.errors import LilTransformyError
from lil_transformy.grading import GROUPS
from lil_transformy.paths import REFERENCE_COMMAND
from lil_transformy.remote import Remote, StudentCodeError
from lil_transformy.stages import get_stage, implementation_folder, load_stage_module
from lil_transformy.train import SHARED


def stage_number(request) -> str:
    return request.path.parent.name.removeprefix("stage_")


@pytest.fixture
def impl(request) -> str:
    return request.config.getoption("--impl")


class StudentChild:
    """The child process that holds the student's code, started on first use and again after it died."""

    def __init__(self, folder, isolate: str, scratch_root):
        self.folder, self.isolate, self.scratch_root, self.remote = folder, isolate, scratch_root, None
        self.import_failed = None  # why importing the student's module failed: every later check fails at once

    def import_stage(self, number: str):
        if self.import_failed:
            pytest.fail(self.import_failed, pytrace=False)
        try:
            return self.get().ask("import", number)
        except BaseException as error:  # also a timeout: a module that loops at import loops every time
            self.import_failed = f"importing your module failed: {error}"
            raise

    def get(self) -> Remote:
        if self.remote is None or not self.remote.alive:
            if self.remote is not None:
                self.remote.close()
            scratch = self.scratch_root / f"run{len(list(self.scratch_root.iterdir()))}"
            scratch.mkdir()
            for module in self.folder.glob("stage_*.py"):  # the stage modules, nothing else
                shutil.copy(module, scratch)
            make = sandbox.sandboxed_child if self.isolate == "sandbox" else sandbox.plain_child
            # the child gets the judge's CPU threads: N students graded at once must not oversubscribe the machine
            self.remote = Remote(make(scratch, torch.get_num_threads()), str(self.scratch_root / "child.log"))
        return self.remote


@pytest.fixture(scope="session")
def student_child(request, tmp_path_factory):
    isolate = request.config.getoption("--isolate")
    if isolate == "no":
        yield None
        return
    child = StudentChild(implementation_folder(request.config.getoption("--impl")), isolate,
                         tmp_path_factory.mktemp("student"))
    yield child
    if child.remote is not None:
        child.remote.close()


@pytest.fixture
def stage(request, impl, student_child):
    """The module under test: e.g. exercises/stage_04_attention.py (a handle on it, when isolated)."""
    number = stage_number(request)
    try:
        if student_child is None:
            return load_stage_module(number, impl)
        return student_child.import_stage(number)
    except (LilTransformyError, StudentCodeError) as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def stage_source(request, impl) -> tuple[str, str]:
    """(file name, text) of the module under test, read as text: the judge never imports it."""
    path = implementation_folder(impl) / f"{get_stage(stage_number(request)).module}.py"
    return path.name, path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def Model(request, stage):
    """The stage's language model class."""
    name = get_stage(stage_number(request)).model
    try:
        return getattr(stage, name)
    except AttributeError:
        pytest.fail(f"your module must keep the class {name} the scaffold defines", pytrace=False)


@pytest.fixture
def tiny():
    """A configuration small enough for instant checks."""
    return replace(SHARED, vocab_size=50, d_model=16, context=8)


@pytest.fixture(scope="session")
def token_data():
    from lil_transformy.tokens import load_token_data

    try:
        return load_token_data()
    except LilTransformyError as error:
        pytest.fail(checking.NOT_YOUR_CODE + str(error), pytrace=False)


@pytest.fixture(scope="session")
def reference():
    if not checking.EVOLUTION_REPORT.exists():
        pytest.fail(f"{checking.NOT_YOUR_CODE}{checking.EVOLUTION_REPORT} is missing: "
                    f"run `{REFERENCE_COMMAND}`", pytrace=False)
    return checking.reference_report()


def pytest_collection_modifyitems(items):
    """nbgrader awards points per group (lil_transformy.grading.GROUPS): every check is in exactly one.

    A check marked with no group's marker grades the component's property. The group is recorded for
    the JUnit report the graded cells read.
    """
    for item in items:
        group = next((name for name, spec in GROUPS.items() if item.get_closest_marker(spec.marker)), "property")
        if group == "property":
            item.add_marker(pytest.mark.property)
        item.user_properties.append(("group", group))
