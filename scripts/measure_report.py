"""How long `lil-transformy course report` takes for a class of N students x every stage (synthesised verdicts).

    python scripts/measure_report.py --students 200

Builds a course folder in a temporary directory: every stage's source notebook and stub, and per student
and stage a submitted module (the reference with the parts a student writes in one of five hand-written
styles where tests/test_report.py has them, the reference elsewhere, names renamed per student) and a verdict
file like the judge's (every check of the stage; a few failing with one of the checks' hints; the loss reached).
No judge runs. Prints the seconds `class_report` took, and its CPU seconds (what a
busy machine does not inflate).
"""
import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lil_transformy.course.report import class_report  # noqa: E402
from lil_transformy.grading.judge import LOSS  # noqa: E402
from lil_transformy.paths import REPO_ROOT  # noqa: E402
from lil_transformy.stages import DETOURS, STAGES  # noqa: E402
from tests.test_report import HONEST, course_folder, written  # noqa: E402

HINTS = ["softmax over the keys (the last axis), after masking", "mask the scores with -inf before the softmax",
         "a plain view or reshape straight to (batch, n_heads, seq, d_head) cuts the memory in the wrong order",
         "your stage 04 learns less than the stage before it: are all its components used in forward()?"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(0)
    stages = sorted(STAGES + DETOURS, key=lambda s: s.number)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        course_folder(root, [s.number for s in stages])
        for i in range(args.students):
            student = f"student_{i:03d}"
            for stage in stages:
                folder = root / "submitted" / student / stage.assignment
                folder.mkdir(parents=True)
                source = (written(stage.number, rng.choice(HONEST[stage.number])) if stage.number in HONEST
                          else (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text())
                (folder / f"{stage.module}.py").write_text(source.replace("x", f"x{i}"))
                checks = {"shapes": [(f"test_logits_shape[{n}]", None) for n in range(3)],
                          "causality": [(f"test_causal_{n}", None) for n in range(4)],
                          "property": [(f"test_property_{n}", None) for n in range(5)],
                          "loss": [("test_loss_on_the_ladder", None)], LOSS: [(f"{4 - 0.05 * len(stage.number):.4f}", None)]}
                if rng.random() < 0.2:
                    checks["property"][rng.randrange(5)] = ("test_property_x", "\n  expected: a\n  found: b\n  hint: "
                                                            + rng.choice(HINTS))
                verdicts = root / "verdicts" / stage.assignment
                verdicts.mkdir(parents=True, exist_ok=True)
                (verdicts / f"{student}.json").write_text(json.dumps({"key": "", "outcomes": checks, "problem": None}))
        start, cpu = time.perf_counter(), time.process_time()
        class_report(root)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        pages = len(list((root / "report" / "pairs").glob("*.html")))
    print(f"class report: {args.students} students x {len(stages)} stages in {seconds:.1f} s ({cpu:.1f} CPU s; {pages} side-by-side pages)")


if __name__ == "__main__":
    main()
