"""`lil-transformy progress`: a student's view of the whole course on one screen."""
import json
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from .checking import EVOLUTION_REPORT
from .paths import REPO_ROOT
from .stages import STAGES

STUDENT_LOSSES = REPO_ROOT / "runs" / "my-losses.json"  # written by `lil-transformy train`


def record_loss(stage: str, loss: float) -> None:
    losses = json.loads(STUDENT_LOSSES.read_text()) if STUDENT_LOSSES.exists() else {}
    losses[stage] = round(loss, 4)
    STUDENT_LOSSES.parent.mkdir(exist_ok=True)
    STUDENT_LOSSES.write_text(json.dumps(losses, indent=1, sort_keys=True))


def fast_check_results(impl: str) -> dict[str, tuple[int, int]]:
    """Stage number -> (passed, total) of its fast checks, from one pytest run."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        subprocess.run([sys.executable, "-m", "pytest", "checks", f"--impl={impl}", "-m", "not training", "-q",
                        "-p", "no:cacheprovider", f"--junitxml={report}"], cwd=REPO_ROOT, capture_output=True,
                       timeout=300)
        cases = list(ET.parse(report).getroot().iter("testcase"))
    results = {}
    for case in cases:
        number = case.get("classname").split(".")[1].removeprefix("stage_")  # checks.stage_04.test_attention
        passed, total = results.get(number, (0, 0))
        ok = not any(child.tag in ("failure", "error", "skipped") for child in case)
        results[number] = (passed + ok, total + 1)
    return results


def show_progress(impl: str = "exercises") -> int:
    checks = fast_check_results(impl)
    reference = json.loads(EVOLUTION_REPORT.read_text())["stages"] if EVOLUTION_REPORT.exists() else {}
    mine = json.loads(STUDENT_LOSSES.read_text()) if STUDENT_LOSSES.exists() else {}
    print(f"{'stage':<6}{'':<15}{'fast checks':<18}{'your loss':>10}{'reference':>11}")
    for stage in STAGES:
        passed, total = checks.get(stage.number, (0, 0))
        bar = "#" * passed + "." * (total - passed)
        done = "done" if total and passed == total else f"{passed}/{total}"
        ref = reference.get(stage.number)
        ref_text = f"{statistics.fmean(ref['val_loss']):.3f}" if ref else "-"
        own = f"{mine[stage.number]:.3f}" if stage.number in mine else "-"
        print(f"{stage.number:<6}{stage.title:<15}{bar[:12]:<12}{done:>6}{own:>10}{ref_text:>11}")
    print("\nfast checks: pytest checks/stage_NN -m 'not training'; your loss: lil-transformy train NN")
    return 0
