"""reports/evolution.json is what the loss checks compare against: prove it is current."""
from dataclasses import replace

import pytest

from lil_transformy.ladder import reference_report
from lil_transformy.paths import REFERENCE_COMMAND, REFERENCE_SEEDS, REPO_ROOT
from lil_transformy.stages import STAGES, model_class
from lil_transformy.train import SHARED, config_dict, train

REDERIVED_STAGE = "03"


def test_report_was_made_with_the_shared_budget_on_this_data(token_data):
    config = reference_report()["config"]
    assert {k: config[k] for k in config_dict(SHARED)} == config_dict(SHARED), \
        f"SHARED changed since the report: run `{REFERENCE_COMMAND}`"
    assert config["data_fingerprint"] == token_data.fingerprint, "the data or vocabulary changed since the report"
    assert config["seeds"] == REFERENCE_SEEDS and config["impl"] == "solutions"


def test_the_readme_gives_the_command_that_made_the_report():
    assert REFERENCE_COMMAND in (REPO_ROOT / "README.md").read_text()


def test_report_covers_every_model_stage():
    stages = reference_report()["stages"]
    assert sorted(stages) == [s.number for s in STAGES if s.model]
    assert all(len(s["val_loss"]) == len(REFERENCE_SEEDS) for s in stages.values())


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
