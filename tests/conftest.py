import os

import pytest

from lil_transformy.paths import DATA_ENV


@pytest.fixture(scope="session")
def token_data_dir():
    folder = os.environ.get(DATA_ENV)
    if not folder:
        pytest.fail(f"set {DATA_ENV} to the TinyStories slice (shared/data/tinystories) to run these tests")
    return folder


@pytest.fixture(scope="session")
def token_data(token_data_dir):
    from lil_transformy.tokens import load_token_data

    return load_token_data(token_data_dir)
