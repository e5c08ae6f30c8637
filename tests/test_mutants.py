import pytest

from lil_transformy.authoring.mutants import Patch, apply, read_patches
from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import REPO_ROOT


@pytest.mark.parametrize("kind", ["mutants", "variants"])
def test_every_patch_applies_to_the_current_solutions(kind, tmp_path):
    patches = read_patches(REPO_ROOT / kind)
    assert len(patches) >= (15 if kind == "mutants" else 6)
    for patch in patches:
        copy = apply(patch, tmp_path / patch.name)
        assert (copy / "stage_00_data.py").exists()
        assert kind == "variants" or patch.caught_by


def test_a_stale_patch_is_a_clear_error(tmp_path):
    stale = Patch("stale", "04", "a mistake", "no_peeking", [{"old": "text that is not there", "new": ""}])
    with pytest.raises(LilTransformyError, match="occurs 0 times in stage_04_attention.py"):
        apply(stale, tmp_path / "stale")


def test_a_check_that_skips_does_not_pass(tmp_path):
    """A 'variant' that skips every check at import is no correct variant: skipped counts as failed."""
    from lil_transformy.authoring.mutants import check_patch

    skipper = Patch("skipper", "01", "skips every check", None,
                    [{"old": "import torch\n", "new": "import pytest\npytest.skip('no', allow_module_level=True)\n"
                                                      "import torch\n"}])
    outcome = check_patch(skipper, tmp_path, training=False)
    assert outcome.passed == [] and len(outcome.failed) > 3
