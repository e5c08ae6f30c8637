"""pytest options for the whole repository: which implementation the checks grade."""
import pytest

from lil_transformy.errors import LilTransformyError
from lil_transformy.stages import implementation_folder


def pytest_addoption(parser):
    parser.addoption("--impl", default="exercises",
                     help="what checks/ grades: 'exercises' (your code, the default), 'solutions' "
                          "(the reference), or a folder of stage modules")
    parser.addoption("--isolate", default="no", choices=["no", "process", "sandbox"],
                     help="where the student's code runs: 'no' (in pytest, the default), 'process' (a child "
                          "process: checks judge only the data it returns), 'sandbox' (that child in bubblewrap; "
                          "how grading runs)")


def pytest_configure(config):
    try:
        implementation_folder(config.getoption("--impl"))
    except LilTransformyError as error:
        raise pytest.UsageError(str(error)) from None
