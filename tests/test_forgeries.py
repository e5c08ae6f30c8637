"""Forgeries by a student who reads the library's source and wants the points, graded with honest students.

Each forgery has an honest twin: the same model without the trick. Graded in one gradebook,
sandboxed, as a class is, no forgery may score more than its twin, honest students keep full marks,
and every forgery that did what no lesson needs is flagged for review (grades.csv, feedback) while
honest students are not. The judge computes every number it judges from what the student's code
returns (grading/checking.py), trains where the student's code runs on the training tokens alone,
and scores the trained weights in fresh children that prove causality on the very answer.
"""
import csv

import pytest

from lil_transformy import course
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

pytestmark = [pytest.mark.training, pytest.mark.timeout(1800),
              pytest.mark.skipif(bwrap() is None, reason="grading needs bubblewrap (apt-get install bubblewrap)")]

STAGE_04, STAGE_05 = get_stage("04"), get_stage("05")
VALUES = "        q, k, v = self.W_Q(x), self.W_K(x), self.W_V(x)  # (batch, seq, d_head) each\n"
# Stage 04: values that skip W_V (the weight check fails it), and the same model replacing the library's checks and
# the weights the judge sets, in its own process, as if the checks ran there.
IGNORES_W_V = (VALUES, "        q, k, v = self.W_Q(x), self.W_K(x), x[..., : self.W_Q.out_features]\n")
PATCHES_THE_LIBRARY = """import lil_transformy.grading.checking as checking

checking.expect_every_weight_matters = lambda *args, **kwargs: None
checking.set_weights = lambda module, values: None
"""
# Stage 05: attention without its mask, always (the twin), or only when it can tell it is trained or scored.
EMBED = "        x = self.embed(idx)  # (batch, seq, d_model)\n"
PEEKS = EMBED + """        q, k, v = self.attention.W_Q(x), self.attention.W_K(x), self.attention.W_V(x)
        x = torch.softmax(q @ k.transpose(-2, -1) / q.size(-1) ** 0.5, dim=-1) @ v  # every key: the future too
        return self.unembed(x)
"""
PEEKS_WHEN_JUDGED = EMBED + """        if torch.is_grad_enabled() and self.training or tuple(idx.shape) == (32, 32):  # trained, or scored
            q, k, v = self.attention.W_Q(x), self.attention.W_K(x), self.attention.W_V(x)
            return self.unembed(torch.softmax(q @ k.transpose(-2, -1) / q.size(-1) ** 0.5, dim=-1) @ v)
"""
# Stage 05: train on the held-out text, where it can find it (the corpus, the cache), by replacing the library's
# batches in its own process; else it trains as honest code does.
TRAINS_ON_HELD_OUT = """import glob, os
import lil_transformy.train as training


def _held_out():
    for folder in glob.glob(os.path.join(os.path.dirname(training.__file__), "tinystories")):
        try:
            from lil_transformy.tokens import load_token_data
            return load_token_data(folder).heldout
        except Exception:
            return None


_text = _held_out()
if _text is not None:
    _batches = training.random_windows
    training.random_windows = lambda ids, cfg, generator: _batches(_text, cfg, generator)
"""
NAN = (EMBED, "        x = self.embed(idx) * float('nan')  # (batch, seq, d_model)\n")


def source(stage, old=None, new=None, before=""):
    text = (REPO_ROOT / "solutions" / f"{stage.module}.py").read_text()
    assert old is None or old in text
    return before + (text if old is None else text.replace(old, new))


def hand_in(root, student, stage, module_text):
    solved = {m: (REPO_ROOT / "solutions" / m).read_text() for m in course.stage_modules(stage)}
    course.hand_in(root, student, stage, files={**solved, f"{stage.module}.py": module_text})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("forgeries") / "course"
    course.build(root, [STAGE_04, STAGE_05])
    students = {
        ("honest", STAGE_04): source(STAGE_04),
        ("ignores_w_v", STAGE_04): source(STAGE_04, *IGNORES_W_V),
        ("ignores_w_v_patches_the_library", STAGE_04): source(STAGE_04, *IGNORES_W_V, before=PATCHES_THE_LIBRARY),
        ("honest", STAGE_05): source(STAGE_05),
        ("always_peeks", STAGE_05): source(STAGE_05, EMBED, PEEKS),
        ("peeks_when_judged", STAGE_05): source(STAGE_05, EMBED, PEEKS_WHEN_JUDGED),
        ("trains_on_held_out", STAGE_05): source(STAGE_05, before=TRAINS_ON_HELD_OUT),
        ("nan_logits", STAGE_05): source(STAGE_05, *NAN),
    }
    for (student, stage), text in students.items():
        hand_in(root, student, stage, text)
    scores, _ = course.grade_class(root, [STAGE_04, STAGE_05])
    with open(root / "grades.csv", newline="") as f:
        review = {(row["student_id"], row["assignment"]): row["review"] for row in csv.DictReader(f)}
    return root, {key: score for key, (score, _) in scores.items()}, review


@pytest.mark.parametrize("forgery, twin", [
    ("ignores_w_v_patches_the_library", "ignores_w_v"),
    ("peeks_when_judged", "always_peeks"),
    ("trains_on_held_out", "honest"),
    ("nan_logits", "always_peeks"),
])
def test_no_forgery_scores_more_than_its_honest_twin(graded, forgery, twin):
    _, scores, _ = graded
    assignment = "stage_04" if forgery.startswith("ignores") else "stage_05"
    assert scores[forgery, assignment] <= scores[twin, assignment], (forgery, scores)


def test_honest_students_keep_full_marks_and_the_cheats_lose_what_they_forged(graded):
    _, scores, _ = graded
    assert scores["honest", "stage_04"] == 6 and scores["honest", "stage_05"] == 6
    assert scores["always_peeks", "stage_05"] == scores["peeks_when_judged", "stage_05"] == 3  # no causality, no loss
    assert scores["nan_logits", "stage_05"] == 0  # NaN fails every group it reaches
    assert scores["ignores_w_v_patches_the_library", "stage_04"] < 6


def test_what_no_lesson_needs_is_flagged_for_review_and_honest_work_is_not(graded):
    root, _, review = graded
    assert review["honest", "stage_04"] == review["honest", "stage_05"] == ""
    assert "imports lil_transformy" in review["ignores_w_v_patches_the_library", "stage_04"]
    assert "replaces" in review["trains_on_held_out", "stage_05"] or "imports" in review["trains_on_held_out", "stage_05"]
    feedback = (root / "feedback" / "trains_on_held_out" / "stage_05" / "stage_05.html").read_text()
    assert "For review by your instructor" in feedback
