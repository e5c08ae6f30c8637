import os

import pytest

from lil_transformy.data import BUNDLED
from lil_transformy.paths import DATA_ENV


@pytest.fixture(scope="session")
def token_data_dir():
    """The corpus the tests read: $LIL_TRANSFORMY_DATA where set, else the slice the course ships."""
    return os.environ.get(DATA_ENV) or str(BUNDLED)


@pytest.fixture(scope="session")
def token_data(token_data_dir):
    from lil_transformy.tokens import load_token_data

    return load_token_data(token_data_dir)
