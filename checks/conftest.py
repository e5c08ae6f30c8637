"""Fixtures every stage's checks use. A check file's folder (checks/stage_NN) names its stage."""
from dataclasses import replace

import pytest

from lil_transformy import checking
from lil_transformy.errors import LilTransformyError
from lil_transformy.grading import GROUPS
from lil_transformy.stages import load_stage_module, model_class
from lil_transformy.train import SHARED


def stage_number(request) -> str:
    return request.path.parent.name.removeprefix("stage_")


@pytest.fixture
def impl(request) -> str:
    return request.config.getoption("--impl")


@pytest.fixture
def stage(request, impl):
    """The module under test: e.g. exercises/stage_04_attention.py."""
    try:
        return load_stage_module(stage_number(request), impl)
    except LilTransformyError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def Model(request, impl, stage):
    """The stage's language model class."""
    return model_class(stage_number(request), impl)


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
                    f"run `lil-transformy evolve --seeds 0,1,2 --out reports`", pytrace=False)
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
