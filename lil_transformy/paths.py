"""Where things live: the repository, the data folder, the cache; and which device to use."""
import os
from pathlib import Path

DATA_ENV = "LIL_TRANSFORMY_DATA"  # a TinyStories folder, or HUB; unset: the slice the course ships
HUB = "hub"
CACHE_ENV = "LIL_TRANSFORMY_CACHE"
DEVICE_ENV = "LIL_TRANSFORMY_DEVICE"  # cpu, mps or cuda instead of the automatic choice
JUDGE_SEED_ENV = "LIL_TRANSFORMY_JUDGE_SEED"  # the judge's random choices (grading): never in the child's environment

PACKAGE = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE.parent  # a clone of the repository (editable install); in an installed wheel, site-packages
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "checks").is_dir()
# What a student's graded cells need ships with the package (pyproject.toml maps these folders into the wheel):
CHECKS = REPO_ROOT / "checks" if IN_CHECKOUT else PACKAGE / "checks"
EVOLUTION_REPORT = (REPO_ROOT / "reports" if IN_CHECKOUT else PACKAGE / "reports") / "evolution.json"  # the
# reference losses every loss check compares with
REFERENCE_SEEDS = [0, 1, 2, 3, 4]  # the seeds of the committed report
REFERENCE_COMMAND = f"lil-transformy evolve --seeds {','.join(map(str, REFERENCE_SEEDS))} --out reports"


def make_data_path_absolute() -> None:
    """Resolve a relative $LIL_TRANSFORMY_DATA once, against the folder it was given in.

    Notebook kernels and graded cells run in other folders; they inherit the absolute path.
    """
    value = os.environ.get(DATA_ENV)
    if value and value != HUB:
        os.environ[DATA_ENV] = str(Path(value).expanduser().resolve())


make_data_path_absolute()  # on import: before this process starts any kernel or child


def cache_dir() -> Path:
    """Costly things (tokenized corpus, vocabulary) are kept here between runs."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lil_transformy"
    path = Path(os.environ.get(CACHE_ENV, default))
    path.mkdir(parents=True, exist_ok=True)
    return path
