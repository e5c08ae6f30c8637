"""Where things live: the repository, the data folder, the cache; and which device to use."""
import os
from pathlib import Path

DATA_ENV = "LIL_TRANSFORMY_DATA"
CACHE_ENV = "LIL_TRANSFORMY_CACHE"
DEVICE_ENV = "LIL_TRANSFORMY_DEVICE"  # cpu, mps or cuda instead of the automatic choice

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Costly things (tokenized corpus, vocabulary) are kept here between runs."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lil_transformy"
    path = Path(os.environ.get(CACHE_ENV, default))
    path.mkdir(parents=True, exist_ok=True)
    return path
