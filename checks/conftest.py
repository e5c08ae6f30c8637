"""Options and fixtures every stage's checks use. A check file's folder (checks/stage_NN) names its stage.

The checks ship with the package too (lil_transformy/checks in a wheel): a class student's graded cells
run them without a clone of the repository.

With ``--isolate process|sandbox`` (how grading runs) the student's module is never imported here:
`stage` and `Model` are handles on objects in a child process (lil_transformy.grading.remote), and the
checks judge only the data that comes back.
"""
import contextlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lil_transformy.errors import LilTransformyError
from lil_transformy.grading import checking, sandbox
from lil_transformy.grading.judge import DEFERRED, GROUPS
from lil_transformy.grading.limits import (
    FAST_CHECK_CPU_SECONDS,
    FAST_CHECK_WALL_SECONDS,
    TRAINING_WALL_SECONDS,
    training_cpu_seconds,
)
from lil_transformy.grading.remote import Remote, StudentCodeError
from lil_transformy.grading.trainer import judge_trains
from lil_transformy.ladder import reference_report
from lil_transformy.paths import CHECKS, EVOLUTION_REPORT, REFERENCE_COMMAND
from lil_transformy.runner import NOT_YOUR_CODE, run_pytest
from lil_transformy.stages import get_stage, implementation_folder, load_stage_module, stage_of_assignment
from lil_transformy.train import SHARED


def pytest_addoption(parser):
    parser.addoption("--impl", default="exercises",
                     help="what the checks grade: 'exercises' (your code, the default), 'solutions' "
                          "(the reference), or a folder of stage modules (e.g. '.', a released assignment)")
    parser.addoption("--isolate", default="no", choices=["no", "process", "sandbox"],
                     help="where the student's code runs: 'no' (in pytest, the default), 'process' (a child "
                          "process: checks judge only the data it returns), 'sandbox' (that child in bubblewrap; "
                          "how grading runs)")
    parser.addoption("--evidence", help="grading: write what the student's children recorded (a JSON list) here")
    parser.addoption("--defer-training", action="store_true",
                     help="list the checks that train, without running them: they are decided at grading (a "
                          "student's graded cell, which nbgrader's Validate gives 30 s)")


def pytest_configure(config):
    # pytest's summary at the end repeats each failure's first line, in full on a CI runner: a hint is printed once,
    # in the failure itself
    config.option.force_short_summary = True
    for marker, what in MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: {what}")
    try:
        implementation_folder(config.getoption("--impl"))
    except LilTransformyError as error:
        raise pytest.UsageError(str(error)) from None


MARKERS = {
    "training": "trains a model on the TinyStories slice (slow; skip with -m 'not training')",
    "passes_on_stubs": "a check the untouched stub already satisfies, by design (it says why)",
    **{spec.marker: f"graded group: {spec.what}" for spec in GROUPS.values()},
}


def stage_number(request) -> str:
    return stage_of_assignment(request.path.parent.name).number


@pytest.fixture
def impl(request) -> str:
    return request.config.getoption("--impl")


class StudentChild:
    """The child process that holds the student's code, started on first use and again after it died."""

    def __init__(self, folder, isolate: str, scratch_root):
        self.folder, self.isolate, self.scratch_root, self.remote = folder, isolate, scratch_root, None
        self.import_failed = None  # why importing the student's module failed: every later check fails at once
        self.limits = (FAST_CHECK_CPU_SECONDS, FAST_CHECK_WALL_SECONDS)
        self.evidence: list[str] = []  # what its children recorded (grading/evidence.py)

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
                self.close(self.remote)
            self.remote = self.new_child()
        return self.remote

    def close(self, remote: Remote) -> None:
        """End a child, keeping what it recorded (a child that died records nothing: that proves nothing)."""
        with contextlib.suppress(StudentCodeError):
            self.evidence += [record for record in remote.ask("evidence") if record not in self.evidence]
        remote.close()

    def new_child(self) -> Remote:
        """A child of its own, in a scratch folder holding a copy of the student's stage modules and nothing else."""
        scratch = self.scratch_root / f"run{len(list(self.scratch_root.iterdir()))}"
        scratch.mkdir()
        for module in self.folder.glob("stage_*.py"):
            shutil.copy(module, scratch)
        make = sandbox.sandboxed_child if self.isolate == "sandbox" else sandbox.plain_child
        # the child gets the judge's CPU threads: N students graded at once must not oversubscribe the machine
        remote = Remote(make(scratch, torch.get_num_threads()), str(self.scratch_root / "child.log"))
        remote.start_check(*self.limits)
        return remote

    @contextlib.contextmanager
    def fresh_children(self, n: int):
        """`n` fresh children, started together, that have seen no question: closed afterwards."""
        remotes = [self.new_child() for _ in range(n)]
        try:
            yield remotes
        finally:
            for remote in remotes:
                self.close(remote)

    @contextlib.contextmanager
    def trained_models(self, number: str, train_ids: torch.Tensor, vocab_size: int):
        """The stage's model trained by the judge with the shared budget, the student's model answering each step's
        loss and gradients in a fresh child that gets nothing else, one step checked in secret; then two fresh
        children holding the trained weights, in eval mode, to be scored (grading/trainer.py)."""
        with contextlib.ExitStack() as started:
            def fresh_children(n: int) -> list[Remote]:
                return started.enter_context(self.fresh_children(n))

            yield judge_trains(fresh_children, number, train_ids, vocab_size, checking.judge_generator())

    def start_check(self, limits: tuple[float, float]) -> None:
        """A new check: its (CPU seconds, wall backstop), and torch's seed 0 where the student's code runs."""
        self.limits = limits
        if self.remote is not None and self.remote.alive:
            self.remote.start_check(*limits)
        self.reseed()

    def reseed(self) -> None:
        """torch's seed 0 where the student's code runs."""
        if self.remote is not None and self.remote.alive:
            with contextlib.suppress(StudentCodeError):  # a child that died is started again (seeded) when needed
                self.remote.ask("seed", 0)


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
        child.close(child.remote)
    if request.config.getoption("--evidence"):
        Path(request.config.getoption("--evidence")).write_text(json.dumps(child.evidence))


def start_from_seed_0(student_child: StudentChild | None) -> None:
    checking.INPUTS.manual_seed(0)
    torch.manual_seed(0)
    if student_child is not None:
        student_child.reseed()


@pytest.fixture
def reseed(student_child):
    """Start again from seed 0, as a new check does (for a check that runs other checks)."""
    return lambda: start_from_seed_0(student_child)


@pytest.fixture(autouse=True)
def same_start_everywhere(request, student_child):
    """Every check starts from seed 0, for its inputs (checking.INPUTS) and for the student's code, wherever that
    runs: the same check prints the same numbers in a student's pytest and in grading. When grading, it also gets
    its own budget of CPU seconds (lil_transformy.grading.limits)."""
    start_from_seed_0(student_child)
    if student_child is not None:
        training = request.node.get_closest_marker("training") is not None
        stage = reference_report()["stages"].get(stage_number(request), {}) if EVOLUTION_REPORT.exists() else {}
        student_child.start_check((training_cpu_seconds(stage.get("seconds")), TRAINING_WALL_SECONDS) if training
                                  else (FAST_CHECK_CPU_SECONDS, FAST_CHECK_WALL_SECONDS))


@pytest.fixture
def load_stage(impl, student_child):
    """number -> the student's module of that stage (a handle on it, when isolated); a failure fails the check."""
    def load(number: str):
        try:
            if student_child is None:
                return load_stage_module(number, impl)
            return student_child.import_stage(number)
        except (LilTransformyError, StudentCodeError) as error:
            pytest.fail(str(error), pytrace=False)

    return load


@pytest.fixture
def stage(request, load_stage):
    """The module under test: e.g. exercises/stage_04_attention.py (a handle on it, when isolated)."""
    return load_stage(stage_number(request))


@pytest.fixture
def attention_stage(load_stage):
    """The student's stage 04 module (causal_mask, attention_weights), which later stages import; None if it
    cannot be loaded (its own checks say why)."""
    try:
        return load_stage("04")
    except pytest.fail.Exception:
        return None


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
        pytest.fail(NOT_YOUR_CODE + str(error), pytrace=False)


@pytest.fixture(scope="session")
def reference():
    if not EVOLUTION_REPORT.exists():
        pytest.fail(f"{NOT_YOUR_CODE}{EVOLUTION_REPORT} is missing: "
                    f"run `{REFERENCE_COMMAND}`", pytrace=False)
    return reference_report()


def pytest_collection_modifyitems(config, items):
    """nbgrader awards points per group (lil_transformy.grading.judge.GROUPS): every check is in exactly one.

    A check marked with no group's marker grades the component's property. The group is recorded for
    the JUnit report the graded cells read. Within a stage, the checks of its own components run first,
    then the whole model's (shapes, causality), the training last: the first failure a student reads is
    the smallest piece that is wrong, and the loss check knows whether anything failed before it.
    """
    for item in items:
        group = next((name for name, spec in GROUPS.items() if item.get_closest_marker(spec.marker)), "property")
        if group == "property":
            item.add_marker(pytest.mark.property)
        item.user_properties.append(("group", group))
        if config.getoption("--defer-training") and item.get_closest_marker("training"):
            number = stage_of_assignment(item.path.parent.name).number
            item.add_marker(pytest.mark.skip(reason=f"{DEFERRED}: it trains your model with the shared budget, "
                                                    f"longer than a graded cell may take (`lil-transformy check "
                                                    f"{number}` runs it here)"))
    first_of_folder = {}
    for position, item in enumerate(items):
        first_of_folder.setdefault(item.path.parent, position)

    def order(item):
        rank = 2 if item.get_closest_marker("training") else 1 if item.function.__module__.endswith("model_checks") else 0
        return first_of_folder[item.path.parent], rank

    items.sort(key=order)


FAST_FAILURES: dict[str, list[str]] = {}  # stage number: the names of its fast checks that failed in this run
FAST_RAN: dict[str, set[str]] = {}  # stage number: the names of its fast checks that ran in this run
FAST_LEFT_OUT: set[str] = set()  # the stages some of whose fast checks were not selected (-k, -m)
FAST_APART: dict[str, list[str]] = {}  # stage number: its fast checks that failed when run apart (fast_failures)
LOSS_LINES: list[str] = []  # what each loss check reached, for the summary


def fast_check_stage(item) -> str | None:
    """The stage of a fast check (in checks/stage_NN, not marked training); None for any other test."""
    if item.get_closest_marker("training") is None and item.path.parent.name.startswith("stage_"):
        return item.path.parent.name.removeprefix("stage_")
    return None


def pytest_deselected(items):
    FAST_LEFT_OUT.update(number for number in map(fast_check_stage, items) if number)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    number = fast_check_stage(item)
    if number:
        FAST_RAN.setdefault(number, set()).add(item.name)
        if report.failed:
            FAST_FAILURES.setdefault(number, []).append(item.name)
    return report


@pytest.fixture
def fast_failures(request) -> list[str]:
    """The fast checks of this stage that failed before this one, in this run. In a student's own run that did not
    select them all (-k, -m, a check named by its id), the stage's fast checks run first, apart, in a pytest of
    their own: the loss check never trains code whose fast checks fail, however it was selected."""
    number = stage_number(request)
    partial = number in FAST_LEFT_OUT or number not in FAST_RAN or any("::" in arg for arg in request.config.args)
    if request.config.getoption("--isolate") != "no" or not partial:
        return FAST_FAILURES.get(number, [])
    if number not in FAST_APART:
        folder = implementation_folder(request.config.getoption("--impl"))
        outcomes, output = run_pytest(str(CHECKS / f"stage_{number}"), f"--impl={folder}", "-m", "not training",
                                      "-q", f"--rootdir={CHECKS.parent}")
        FAST_APART[number] = ([check.name for check in outcomes if not check.passed] if outcomes else
                              [f"all of them: they could not run ({' / '.join(output.strip().splitlines()[-2:])})"])
    return FAST_APART[number]


@pytest.fixture
def loss_lines() -> list[str]:
    return LOSS_LINES


def pytest_terminal_summary(terminalreporter):
    """The loss each loss check reached, passed or not, in one line each (pytest shows no output of a pass)."""
    if LOSS_LINES:
        terminalreporter.section("loss checks")
        for line in LOSS_LINES:
            terminalreporter.write_line(line)
