"""The class report (course/report.py) and its similarity (course/similarity.py), on a crafted class.

No judge runs here. Each student's verdict is synthesised from the stage's own component checks, called in this
process on the student's module (so a mutant fails the very check, with the very hint, grading would give it),
plus the whole model's causality with the cause the checks name (attention_checks.attention_diagnosis); the loss
is made up near the reference. The students: five who wrote every stage on their own, each in a style of their
own (by hand, below), a copier of one of them (names changed, comments stripped, statements reordered,
reformatted), a copier of the reference (names changed), and students with the mutants' mistakes.
"""
import csv
import importlib
import inspect
import json
import random
import re
import shutil
import socket
import subprocess
import textwrap
import time
import urllib.request
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
import torch
from lil_transformy.checks.attention_checks import attention_diagnosis
from lil_transformy.checks.model_checks import AFTER_ATTENTION_HINT, NO_PEEKING_HINT

from lil_transformy.authoring.mutants import apply, named
from lil_transformy.cli import main
from lil_transformy.course import similarity
from lil_transformy.course.release import graded_cell
from lil_transformy.course.report import class_report
from lil_transformy.grading.checking import expect, first_future_leak_by_perturbation, random_tokens
from lil_transformy.grading.judge import EVIDENCE, GROUPS, LOSS
from lil_transformy.ladder import reference_loss, reference_report
from lil_transformy.paths import CHECKS, REPO_ROOT
from lil_transformy.stages import get_stage, load_stage_module
from lil_transformy.train import SHARED

STAGES = ["01", "04", "09"]
# Five independent solutions of each stage, one per style: the bodies of the parts a student writes, in order.
HONEST = {
    "01": [
        ["return x.cumsum(1) / torch.arange(1, x.shape[1] + 1, device=x.device).unsqueeze(-1)",
         "x = self.token_embedding(idx)\nx = causal_average(x)\nreturn self.unembed(x)"],
        ["out = torch.zeros_like(x)\nfor t in range(x.size(1)):\n    out[:, t] = x[:, : t + 1].mean(dim=1)\nreturn out",
         "return self.unembed(causal_average(self.token_embedding(idx)))"],
        ["seq = x.shape[1]\nw = torch.tril(torch.ones(seq, seq, device=x.device, dtype=x.dtype))\n"
         "w = w / w.sum(dim=1, keepdim=True)\nreturn w @ x",
         "emb = self.token_embedding(idx)\navg = causal_average(emb)\nlogits = self.unembed(avg)\nreturn logits"],
        ["n = torch.arange(1, x.size(1) + 1, dtype=x.dtype, device=x.device)\nreturn torch.cumsum(x, dim=1) / n[None, :, None]",
         "h = causal_average(self.token_embedding(idx))\nreturn self.unembed(h)"],
        ["means = [x[:, :i].mean(1) for i in range(1, x.shape[1] + 1)]\nreturn torch.stack(means, dim=1)",
         "tokens = self.token_embedding(idx)  # (B, T, C)\nreturn self.unembed(causal_average(tokens))"],
    ],
    "04": [
        ["return torch.tril(torch.ones(seq, seq, dtype=torch.bool, device=device))",
         "d = q.shape[-1]\nscores = torch.matmul(q, k.transpose(-1, -2)) / d ** 0.5\n"
         "mask = causal_mask(q.shape[-2], q.device)\nscores = scores.masked_fill(mask == 0, float('-inf'))\n"
         "return scores.softmax(dim=-1)",
         "q = self.W_Q(x)\nk = self.W_K(x)\nv = self.W_V(x)\nreturn attention_weights(q, k) @ v"],
        ["return torch.ones(seq, seq, device=device).tril().bool()",
         "att = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(k.size(-1)))\n"
         "att = att.masked_fill(causal_mask(att.size(-1), att.device).logical_not(), float('-inf'))\nreturn att.softmax(-1)",
         "weights = attention_weights(self.W_Q(x), self.W_K(x))\nreturn weights @ self.W_V(x)"],
        ["i = torch.arange(seq, device=device)\nreturn i[:, None] >= i[None, :]",
         "scores = torch.einsum('...id,...jd->...ij', q, k) / math.sqrt(q.shape[-1])\n"
         "allowed = causal_mask(q.shape[-2], device=q.device)\n"
         "scores = torch.where(allowed, scores, torch.full_like(scores, -float('inf')))\nreturn torch.softmax(scores, -1)",
         "return torch.matmul(attention_weights(self.W_Q(x), self.W_K(x)), self.W_V(x))"],
        ["return ~torch.triu(torch.ones(seq, seq, dtype=torch.bool, device=device), diagonal=1)",
         "seq, d_head = q.shape[-2], q.shape[-1]\nlogits = (q / d_head ** 0.5) @ k.mT\n"
         "logits = logits.masked_fill(~causal_mask(seq, q.device), -torch.inf)\n"
         "weights = torch.exp(logits - logits.amax(dim=-1, keepdim=True))\nreturn weights / weights.sum(dim=-1, keepdim=True)",
         "query, key, value = self.W_Q(x), self.W_K(x), self.W_V(x)\nreturn attention_weights(query, key).matmul(value)"],
        ["m = torch.zeros(seq, seq, dtype=torch.bool, device=device)\nfor i in range(seq):\n    m[i, : i + 1] = True\nreturn m",
         "scale = 1 / math.sqrt(q.size(-1))\nw = (q @ k.transpose(-2, -1)) * scale\n"
         "future = ~causal_mask(w.shape[-1], w.device)\nw = w.masked_fill(future, -1e9)\n"
         "return torch.nn.functional.softmax(w, dim=-1)",
         "a = attention_weights(self.W_Q(x), self.W_K(x))  # (B, T, T)\nout = a @ self.W_V(x)\nreturn out"],
    ],
    "09": [
        ["b, t, c = x.shape\nx = x.reshape(b, t, self.n_heads, c // self.n_heads)\nreturn x.permute(0, 2, 1, 3)",
         "B, T, C = x.shape\nq = self.split_heads(self.W_Q(x))\nk = self.split_heads(self.W_K(x))\n"
         "v = self.split_heads(self.W_V(x))\ny = attention_weights(q, k) @ v\ny = y.permute(0, 2, 1, 3).reshape(B, T, C)\n"
         "return self.W_O(y)"],
        ["return x.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)",
         "q, k, v = map(self.split_heads, (self.W_Q(x), self.W_K(x), self.W_V(x)))\nout = attention_weights(q, k) @ v\n"
         "out = out.transpose(1, 2).flatten(2)\nreturn self.W_O(out)"],
        ["batch, seq, d_model = x.size()\nd_head = d_model // self.n_heads\n"
         "return x.view(batch, seq, self.n_heads, d_head).transpose(1, 2).contiguous()",
         "batch, seq, d_model = x.shape\n"
         "heads = self.split_heads(self.W_Q(x)), self.split_heads(self.W_K(x)), self.split_heads(self.W_V(x))\n"
         "mixed = torch.matmul(attention_weights(heads[0], heads[1]), heads[2])\n"
         "merged = mixed.transpose(1, 2).contiguous().view(batch, seq, d_model)\nreturn self.W_O(merged)"],
        ["return torch.stack(x.chunk(self.n_heads, dim=-1), dim=1)",
         "q = self.split_heads(self.W_Q(x))\nk = self.split_heads(self.W_K(x))\nv = self.split_heads(self.W_V(x))\n"
         "w = attention_weights(q, k)\nz = torch.einsum('bhij,bhjd->bhid', w, v)\nz = torch.cat(z.unbind(dim=1), dim=-1)\n"
         "return self.W_O(z)"],
        ["size = x.shape[-1] // self.n_heads\nheads = [x[..., h * size:(h + 1) * size] for h in range(self.n_heads)]\n"
         "return torch.stack(heads, dim=1)",
         "n = x.shape[-1]\nparts = [self.split_heads(W(x)) for W in (self.W_Q, self.W_K, self.W_V)]\n"
         "attended = attention_weights(parts[0], parts[1]) @ parts[2]\n"
         "return self.W_O(attended.transpose(1, 2).reshape(*x.shape[:-1], n))"],
    ],
}
MUTANTS = {"mutant_softmax": "softmax_wrong_axis", "mutant_mask_after": "mask_after_softmax",
           "mutant_no_mask": "no_causal_mask", "mutant_view": "split_heads_by_plain_view",
           "mutant_average": "average_over_whole_sequence"}
REGION = re.compile(r"^( *)### BEGIN SOLUTION[^\n]*\n.*?^\1### END SOLUTION\n", re.M | re.S)
TINY = replace(SHARED, vocab_size=50, d_model=16, context=8)


def written(number: str, bodies: list[str]) -> str:
    """The reference module of a stage with the parts a student writes replaced by `bodies`."""
    source = (REPO_ROOT / "solutions" / f"{get_stage(number).module}.py").read_text()
    parts = iter(bodies)
    return REGION.sub(lambda m: textwrap.indent(next(parts), m.group(1)) + "\n", source)


def copied(source: str, names: dict[str, str]) -> str:
    """A copy with names changed, comments stripped, spaces changed and the first two functions swapped."""
    for old, new in names.items():
        source = re.sub(rf"\b{old}\b", new, source)
    source = re.sub(r"  # .*", "", source).replace(" = ", "  =  ").replace(", ", ",")
    blocks = re.split(r"\n(?=def |class )", source)
    functions = [i for i, b in enumerate(blocks) if b.startswith(("def ", "class "))]
    if len(functions) >= 2:
        i, j = functions[:2]
        blocks[i], blocks[j] = blocks[j], blocks[i]
    return "\n".join(blocks)


def message(expected: str, found: str, hint: str) -> str:
    with pytest.raises(pytest.fail.Exception) as failure:
        expect(False, expected, found, hint)
    return str(failure.value.msg)


def synthesised_verdict(number: str, folder: Path, loss: float) -> dict:
    """What the judge keeps, built from the stage's own component checks run here on the module, the model's
    causality and a loss; never a real grading run."""
    stage_module = load_stage_module(number, str(folder))
    outcomes: dict = {"shapes": [("test_logits_shape[2-5]", None)], "causality": [], "property": []}
    tests = importlib.import_module(f"lil_transformy.checks.stage_{number}.{next((CHECKS / f'stage_{number}').glob('test_*.py')).stem}")
    for name, check in vars(tests).items():
        if name.startswith("test_") and check.__module__ == tests.__name__ and set(inspect.signature(check).parameters) <= {"stage", "tiny"}:
            group = next((g for g in GROUPS if any(m.name == g for m in getattr(check, "pytestmark", []))), "property")
            try:
                check(**{p: {"stage": stage_module, "tiny": TINY}[p] for p in inspect.signature(check).parameters})
                outcomes[group].append((name, None))
            except pytest.fail.Exception as failure:
                outcomes[group].append((name, str(failure.msg)))
    torch.manual_seed(0)
    model = getattr(stage_module, get_stage(number).model)(TINY).eval()
    leak = first_future_leak_by_perturbation(model, random_tokens(TINY.vocab_size, (2, TINY.context)), TINY.vocab_size)
    attention = load_stage_module("04", str(folder)) if number >= "04" else None
    hint = NO_PEEKING_HINT.get(number) or (attention and attention_diagnosis(attention, number)) or AFTER_ATTENTION_HINT[number]
    outcomes["causality"].append(("test_no_peeking_by_perturbation",
                                  message("the logits ignore later tokens", f"a change at {leak}", hint) if leak else None))
    outcomes["loss"] = [("test_loss_on_the_ladder", None if not leak else message(
        "a held-out loss from a model that uses only the tokens up to each position", "a model that sees the future",
        "a loss that used the next tokens means nothing"))]
    outcomes[LOSS] = [(f"{loss:.4f}", None)]
    return {"key": "synthesised", "outcomes": outcomes, "problem": None}


def course_folder(root: Path, stages: list[str]) -> None:
    (root / "nbgrader_config.py").write_text("c = get_config()  # noqa\n")
    for number in stages:
        stage = get_stage(number)
        groups = ["property"] if number == "00" else list(GROUPS)
        (root / "source" / stage.assignment).mkdir(parents=True)
        nbformat.write(nbformat.v4.new_notebook(cells=[graded_cell(number, g) for g in groups]),
                       root / "source" / stage.assignment / f"{stage.assignment}.ipynb")
        (root / "release" / stage.assignment).mkdir(parents=True)
        shutil.copy(REPO_ROOT / "exercises" / f"{stage.module}.py", root / "release" / stage.assignment)


def hand_in(root: Path, student: str, number: str, source: str) -> None:
    stage = get_stage(number)
    folder = root / "submitted" / student / stage.assignment
    folder.mkdir(parents=True, exist_ok=True)
    for module in sorted((REPO_ROOT / "solutions").glob("stage_*.py")):  # what it builds on: the reference
        if module.name <= f"{stage.module}.py" and not (folder / module.name).exists():
            shutil.copy(module, folder)
    (folder / f"{stage.module}.py").write_text(source)


RENAMES = {"scores": "s", "weights": "probs", "seq": "n", "q": "query", "k": "key", "v": "val", "x": "inp",
           "out": "result", "b": "bs", "t": "tt", "c": "cc", "y": "merged_out", "d": "dim", "mask": "m"}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    course_folder(root, STAGES)
    rng = random.Random(0)
    ladder = reference_report()
    reference = {n: (REPO_ROOT / "solutions" / f"{get_stage(n).module}.py").read_text() for n in STAGES}
    for number in STAGES:
        for i, bodies in enumerate(HONEST[number]):
            hand_in(root, f"honest_{i}", number, written(number, bodies))
        hand_in(root, "copier", number, copied(written(number, HONEST[number][0]), RENAMES))
        hand_in(root, "ref_copier", number, copied(reference[number], RENAMES))
    for student, mutant in MUTANTS.items():
        patch = named("mutants", mutant)
        module = apply(patch, root / "mutated" / mutant) / f"{get_stage(patch.stage).module}.py"
        for number in STAGES:
            if number <= patch.stage:
                hand_in(root, student, number, module.read_text() if number == patch.stage else reference[number])
    # A module that is a link is never read: here to a file that would pair with honest_0 and show on a page.
    (root / "secret.txt").write_text("# TOPSECRET\n" + written("04", HONEST["04"][0]))
    hand_in(root, "linker", "04", "")
    (root / "submitted" / "linker" / "stage_04" / "stage_04_attention.py").unlink()
    (root / "submitted" / "linker" / "stage_04" / "stage_04_attention.py").symlink_to(root / "secret.txt")
    for student in sorted(p.name for p in (root / "submitted").iterdir() if p.name != "linker"):
        for number in STAGES:
            folder = root / "submitted" / student / get_stage(number).assignment
            if folder.is_dir() and (student, number) != ("honest_4", "09"):  # honest_4's stage 09: not graded yet
                kept = synthesised_verdict(number, folder, reference_loss(ladder, number)[0] + rng.uniform(-.03, .03))
                if (student, number) == ("honest_3", "04"):
                    kept["outcomes"][EVIDENCE] = [("read a file beyond its own modules: /etc/passwd", None)]
                (root / "verdicts" / get_stage(number).assignment).mkdir(parents=True, exist_ok=True)
                (root / "verdicts" / get_stage(number).assignment / f"{student}.json").write_text(json.dumps(kept))
    page = class_report(root)
    return root, page


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_hand_written_style_passes_the_checks_run_here(crafted):
    """The honest students are correct solutions: the checks run here pass them (else the test proves nothing)."""
    root, _ = crafted
    for number in STAGES:
        for i in range(5):
            verdict = root / "verdicts" / get_stage(number).assignment / f"honest_{i}.json"
            if verdict.exists():
                failed = [n for g, o in json.loads(verdict.read_text())["outcomes"].items() if g in GROUPS
                          for n, m in o if m]
                assert not failed, f"honest_{i} stage {number}: {failed}"


def test_mistakes_appear_under_their_checks_and_causes(crafted):
    root, page = crafted
    checks = rows(root / "report" / "checks.csv")

    def students_under(stage, check, cause):
        return {s for r in checks if r["stage"] == stage and check in r["check"] and cause in r["cause"]
                for s in r["students"].split()}
    assert {"mutant_softmax", "mutant_mask_after"} <= students_under(
        "04", "test_attention_weights_are_causal_and_normalised", "softmax over the keys")
    assert "mutant_no_mask" in students_under("04", "test_attention_weights_are_causal_and_normalised",
                                              "mask the scores with -inf before the softmax")
    assert "mutant_softmax" in students_under("04", "test_no_peeking", "softmax over the queries")
    assert "mutant_mask_after" in students_under("04", "test_no_peeking", "mask applied after the softmax")
    assert "mutant_view" in students_under("09", "test_split_heads", "a plain view or reshape")
    assert "mutant_average" in students_under("01", "no_peeking", "causal_average must average")
    honest = {f"honest_{i}" for i in range(5)}
    assert not honest & {s for r in checks for s in r["students"].split()}
    stuck = {r["student"]: r["first stage not passed"] for r in rows(root / "report" / "students.csv")}
    assert stuck["mutant_average"] == "01" and stuck["mutant_softmax"] == "04" and stuck["mutant_view"] == "09"
    assert stuck["honest_0"] == "all passed" and stuck["honest_4"] == "09"  # its stage 09 is not graded yet
    text = page.read_text()
    assert "/etc/passwd" in text and "not graded yet" in text.lower()


def scores(root: Path) -> dict:
    return {(r["stage"], r["student"], r["with"]): float(r["score"]) for r in rows(root / "report" / "similarity.csv")}


def test_copiers_are_paired_and_honest_students_are_not(crafted):
    root, _ = crafted
    found = scores(root)
    score = lambda stage, a, b: found.get((stage, *sorted((a, b))), found.get((stage, a, b), 0.0))  # noqa: E731
    for stage in ("04", "09", "all"):
        assert score(stage, "copier", "honest_0") >= similarity.THRESHOLD, stage
    for stage in ("04", "09"):
        assert score(stage, "ref_copier", "reference") >= similarity.THRESHOLD, stage
    honest = [f"honest_{i}" for i in range(5)]
    pairs = [(s, a, b) for s in (*STAGES, "all") for i, a in enumerate(honest) for b in honest[i + 1:]]
    pairs += [(s, a, "reference") for s in STAGES for a in honest]
    flagged = [(p, score(*p)) for p in pairs if score(*p) >= similarity.THRESHOLD]
    highest = max(score(*p) for p in pairs)
    print(f"\nhonest pairs flagged: {len(flagged)} of {len(pairs)} (false-positive rate {len(flagged) / len(pairs):.1%}); "
          f"highest honest score {highest:.2f}; copiers' lowest {min(score(s, 'copier', 'honest_0') for s in ('04', '09', 'all')):.2f}")
    assert not flagged, flagged


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.images, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.add(attrs.get("id"))
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])


def test_every_link_and_image_of_the_report_resolves(crafted):
    root, page = crafted
    for path in [page, *(page.parent / "pairs").glob("*.html")]:
        parsed = Links()
        parsed.feed(path.read_text())
        assert "TOPSECRET" not in path.read_text()
        for target in parsed.links + parsed.images:
            file, _, anchor = target.partition("#")
            assert (path.parent / file).exists() if file else anchor in parsed.ids, (path.name, target)
    assert list((page.parent / "pairs").glob("stage_04-copier-honest_0.html"))
    assert main(["course", "report", str(root), "--stages", "04"]) == 0  # the command writes it too
    assert "stage 09" not in page.read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)")
def test_the_page_renders_in_a_real_browser_with_its_plots(crafted):
    """Headless chromium loads the page from disk through the DevTools protocol: the page and every image load
    (naturalWidth > 0), and a link to a side-by-side page opens it."""
    websocket = pytest.importorskip("websocket", reason="no websocket-client (Jupyter's) for the DevTools protocol")
    _, page = crafted
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    browser = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={port}",
                                f"--user-data-dir={page.parent.parent / 'chromium-profile'}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        target = None
        for _ in range(100):
            try:
                listing = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json").read())
                target = next(t for t in listing if t["type"] == "page")
                break
            except (OSError, StopIteration):
                time.sleep(0.2)
        assert target, "chromium did not start"
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30)
        try:
            calls = iter(range(1, 10 ** 6))

            def call(method, **params):
                number = next(calls)
                ws.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    reply = json.loads(ws.recv())
                    if reply.get("id") == number:
                        return reply.get("result", {})

            def evaluate(expression):
                for _ in range(50):
                    value = call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")
                    if value:
                        return value
                    time.sleep(0.2)
                return value

            def opened(url):
                call("Page.navigate", url=url)
                return evaluate(f"location.href === {json.dumps(url)} && document.readyState === 'complete' && document.title")

            assert opened(page.as_uri()) == "Class report"
            images = evaluate("document.readyState === 'complete' && Array.from(document.images).map(i => [i.src, i.naturalWidth])")
            assert images and all(width > 0 for _, width in images), images
            link = evaluate("Array.from(document.links).map(a => a.href).find(h => h.includes('/pairs/'))")
            assert link, "no side-by-side link"
            assert urlparse(link).path.endswith(".html")
            assert (opened(link) or "").startswith("stage ")  # the side-by-side page, its shared lines highlighted
            assert evaluate("document.querySelectorAll('.m').length") > 0
        finally:
            ws.close()
    finally:
        browser.terminate()
        browser.wait(timeout=10)


def test_code_most_of_the_class_writes_alike_pairs_nobody():
    """An idiom in every module (MOSS's -m) is left out of the pairs; what only two students share is not."""
    idiom = "def causal_mask(seq, device=None):\n    return torch.tril(torch.ones(seq, seq, dtype=torch.bool, device=device))\n"
    own = [f"def f(x):\n    return x.{op}(dim=-1).{other}(1, 2).flatten(2).{op}(0)\n"
           for op, other in zip(["sum", "mean", "amax", "amin", "std", "var"], ["transpose", "swapaxes", "movedim"] * 2)]
    modules = {f"s{i}": similarity.fingerprints(idiom * 3 + source) for i, source in enumerate(own)}
    modules["copy"] = similarity.fingerprints(idiom * 3 + own[0].replace("x", "y"))
    pairs = {(p.a, p.b) for p in similarity.similar_pairs(modules) if p.score >= similarity.THRESHOLD}
    assert pairs == {("copy", "s0")}, pairs
