"""reports/evolution.json is what the loss checks compare against: prove it is current."""
from dataclasses import replace

import pytest

from lil_transformy.checking import reference_report
from lil_transformy.stages import STAGES, model_class
from lil_transformy.train import SHARED, config_dict, train

REDERIVED_STAGE = "03"


def test_report_was_made_with_the_shared_budget_on_this_data(token_data):
    config = reference_report()["config"]
    assert {k: config[k] for k in config_dict(SHARED)} == config_dict(SHARED), \
        "SHARED changed since the report: run `lil-transformy evolve --seeds 0,1,2,3,4 --out reports`"
    assert config["data_fingerprint"] == token_data.fingerprint, "the data or vocabulary changed since the report"
    assert config["seeds"] == [0, 1, 2, 3, 4] and config["impl"] == "solutions"


def test_report_covers_every_model_stage():
    stages = reference_report()["stages"]
    assert sorted(stages) == [s.number for s in STAGES if s.model]
    assert all(len(s["val_loss"]) == 5 for s in stages.values())


@pytest.mark.training
@pytest.mark.timeout(300)
def test_one_reference_loss_is_rederived(token_data):
    """The last seed, not seed 0: it also proves the report's seeds trained on the batches train() gives them."""
    report = reference_report()
    seed = report["config"]["seeds"][-1]
    result = train(model_class(REDERIVED_STAGE, "solutions"), token_data, replace(SHARED, seed=seed), progress=False)
    recorded = report["stages"][REDERIVED_STAGE]["val_loss"][-1]
    assert result.val_loss == pytest.approx(recorded, abs=2e-3), \
        f"stage {REDERIVED_STAGE} seed {seed} now reaches {result.val_loss:.4f}, the report says {recorded}"
