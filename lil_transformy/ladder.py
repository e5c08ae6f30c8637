"""The loss ladder, in one place: each stage's rung below it, the reference losses, and how strong a rung is.

The evolution report (evolve.py), the search for the shared budget (scripts/search_budget.py) and
the loss checks (checks/model_checks.py) all read the ladder from here.
"""
import json
import statistics
from dataclasses import dataclass

from lil_transformy.paths import EVOLUTION_REPORT
from lil_transformy.stages import Stage

LADDER_GAP_SIGMAS = 3  # a rung holds with room when the mean gap is at least this many seed standard deviations
LADDER_WORST_MARGIN = 0.03  # nats: ... and the stage's worst seed is at least this far below the stage before
SD_FLOOR = 0.003  # nats: a spread measured on few seeds is never taken for smaller than this


def reference_report() -> dict:
    """reports/evolution.json, made by REFERENCE_COMMAND (paths.py)."""
    return json.loads(EVOLUTION_REPORT.read_text())


def reference_loss(report: dict, number: str) -> tuple[float, float]:
    """(mean, seed-to-seed spread) of a stage's held-out loss in the reference report."""
    losses = report["stages"][number]["val_loss"]
    return statistics.fmean(losses), max(losses) - min(losses)


@dataclass(frozen=True)
class Rung:
    """How stage `to` lands below stage `below` over the same seeds."""
    below: str
    to: str
    gap: float  # below's mean - to's mean
    sd: float  # to's seed-to-seed standard deviation
    worst: float  # below's mean - to's worst seed: what a loss check compares, seed by seed

    @property
    def sigmas(self) -> float:
        return self.gap / max(self.sd, SD_FLOOR)

    @property
    def score(self) -> float:
        """>= 1: the rung holds with room (both the mean gap and the worst seed)."""
        return min(self.sigmas / LADDER_GAP_SIGMAS, self.worst / LADDER_WORST_MARGIN)


def rung(losses: dict[str, list[float]], stage: Stage) -> Rung | None:
    """The rung up to `stage` from its predecessor, from held-out losses per seed; None without both or two seeds."""
    below = stage.previous
    if below is None or below not in losses or len(losses.get(stage.number, [])) < 2:
        return None
    mean_below, mine = statistics.fmean(losses[below]), losses[stage.number]
    return Rung(below, stage.number, mean_below - statistics.fmean(mine), statistics.stdev(mine),
                mean_below - max(mine))
