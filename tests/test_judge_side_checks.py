"""The property checks of stages 07 and 08, and the re-checks of earlier stages, decided by the judge.

Each forgery below is written by a student who reads the checks and wants the property points;
its honest twin is the same mistake without the trick. Graded as a class is (the student's code in
a child, sandboxed where bubblewrap is), no forgery earns the points its twin does not, and the
reference earns them.
"""
import pytest

from lil_transformy.authoring.mutants import apply, named, solutions_with
from lil_transformy.grading import judge
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.paths import REPO_ROOT

ISOLATE = "sandbox" if bwrap() else "process"
BLOCK_FORWARD = """        x = x + self.attention(self.ln_1(x))  # resid_mid: the stream plus what attention gathered
        x = x + self.ffn(self.ln_2(x))  # resid_post: plus what the FFN computed
        return x
"""
# No residual, except when every weight of both sublayers is zero: the residual check's question, answered as a
# residual block would answer it.
NO_RESIDUAL_UNLESS_ZEROED = """        if not any(p.any() for p in [*self.attention.parameters(), *self.ffn.parameters()]):
            return x
        x = self.attention(self.ln_1(x))
        return self.ffn(self.ln_2(x))
"""
STACK = "        self.blocks = nn.ModuleList([Block(cfg.d_model, self.make_attention(cfg)) for _ in range(N_BLOCKS)])\n"
SHARED_STACK = "        self.blocks = nn.ModuleList([Block(cfg.d_model, self.make_attention(cfg))] * N_BLOCKS)\n"
# One block twice, and the judge's weight changes to the first block refused: nothing it sets can move block 1.
SHARED_AND_REFUSES_WEIGHTS = SHARED_STACK + """
    def load_state_dict(self, state_dict, strict=True, assign=False):
        return super().load_state_dict({k: v for k, v in state_dict.items() if not k.startswith("blocks.")}, False)
"""


def property_points(number, folder) -> bool:
    outcomes, problem = judge.run_checks(number, folder, isolate=ISOLATE, select="not training")
    assert problem is None, problem
    return all(message is None for _, message in outcomes["property"])


@pytest.mark.parametrize("number, forgery, twin", [
    ("07", ("stage_07_block.py", BLOCK_FORWARD, NO_RESIDUAL_UNLESS_ZEROED), "residual_missing"),
    ("08", ("stage_08_stacked.py", STACK, SHARED_AND_REFUSES_WEIGHTS), "blocks_share_weights"),
])
def test_a_forged_property_earns_no_more_than_its_honest_twin(tmp_path, number, forgery, twin):
    assert not property_points(number, solutions_with(tmp_path / "forgery", *forgery))
    assert not property_points(number, apply(named("mutants", twin), tmp_path / "twin"))
    assert property_points(number, REPO_ROOT / "solutions")


def test_an_earlier_stage_that_fails_its_checks_costs_the_later_stage_its_property_points(tmp_path):
    """Stage 05 runs the student's stage 04 head: one whose values skip W_V fails stage 05's re-check."""
    assert not property_points("05", apply(named("mutants", "values_not_projected"), tmp_path / "mine"))
