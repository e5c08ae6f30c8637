"""`lil-transformy course report`: what a graded class got wrong, and whose work looks alike, on one page.

It reads what grading kept, and re-grades nothing: the judges' verdicts (verdicts/<assignment>/<student>.json,
each check's message and the loss the loss check reached), grades.csv (nbgrader's scores; SQLite or PostgreSQL,
one machine or sharded, once `course grade` or `course export` wrote it) and the submitted modules. It writes
report/ in the course folder: index.html (opens from disk, plots as PNG images), one CSV per table, and pairs/,
the side-by-side views of similar modules (similarity.py: evidence for review, never points).
"""
import csv
import html
import json
import re
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import matplotlib.pyplot as plt

from lil_transformy.course import similarity
from lil_transformy.course.folder import VERDICTS, course_root, course_stages, submitted_students
from lil_transformy.grading.judge import EVIDENCE, GROUPS, LARGEST_MODULE, LOSS, verdict
from lil_transformy.ladder import reference_loss, reference_report
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import Stage, get_stage

REPORT = "report"  # in the course folder
PAGES = 200  # side-by-side pages at most (similarity.csv lists every pair)
FOUND_LOSS = re.compile(r"found:\s+(\d+\.\d+)")  # a failed loss check's message (checks/model_checks.py)


def cause(message: str) -> str:
    """The misconception a failure names: its hint, else its first line (numbers left out)."""
    text = " ".join(message.split())
    if "hint:" in text:
        return text.rsplit("hint:", 1)[1].strip()[:400]
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    return re.sub(r"-?\d+\.\d+(e-?\d+)?", "#", first.strip())[:400]


def read_verdicts(root: Path, stages: list[Stage], students: list[str]) -> dict:
    """{(student, assignment): {"outcomes":…, "problem":…}} for every verdict kept."""
    found = {}
    for stage in stages:
        for student in students:
            try:
                found[student, stage.assignment] = json.loads((root / VERDICTS / stage.assignment / f"{student}.json").read_text())
            except (OSError, ValueError):
                pass
    return found


def read_scores(root: Path, stages: list[Stage], verdicts: dict) -> dict:
    """{(student, assignment): (points, out of)}: grades.csv where it has the row, else the verdict's points."""
    scores = {}
    for (student, assignment), kept in verdicts.items():
        number = assignment.removeprefix("stage_")
        groups = [g for g in GROUPS if g in kept["outcomes"]] or (["property"] if number == "00" else list(GROUPS))
        scores[student, assignment] = (sum(verdict(number, g, kept["outcomes"], kept["problem"])[1] for g in groups),
                                       float(sum(GROUPS[g].points for g in groups)))
    path, wanted = root / "grades.csv", {s.assignment for s in stages}
    if path.exists():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row["assignment"] in wanted and row.get("status") != "handed in, not graded":  # no score yet
                    scores[row["student_id"], row["assignment"]] = (float(row["raw_score"] or 0), float(row["max_score"]))
    return scores


def trained_loss(kept: dict) -> float | None:
    """The held-out loss the loss check reached, from the verdict (judge.LOSS), or its failure message."""
    if kept["outcomes"].get(LOSS):
        return float(kept["outcomes"][LOSS][0][0])
    for name, message in kept["outcomes"].get("loss", []):
        match = FOUND_LOSS.search(message or "")
        if name.startswith("test_loss_on_the_ladder") and match:
            return float(match.group(1))
    return None


def ladder_lines(number: str) -> tuple[float | None, float | None]:
    """(the reference's loss for this stage, the loss to beat) from the reference report."""
    try:
        report = reference_report()
        ref = reference_loss(report, number)[0] if number in report["stages"] else None
        below = get_stage(number).previous or ("01" if number == "02" else None)  # 02 matches 01; 01 the unigram
        return ref, reference_loss(report, below)[0] if below else report["unigram_loss"]
    except (OSError, ValueError, KeyError):
        return None, None


def table(header: list[str], rows: list[list[str]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows) + "</table>")


def names(students) -> str:
    return ", ".join(f'<a href="#s-{html.escape(s)}">{html.escape(s)}</a>' for s in sorted(students))


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def plot_grid(stages: list[Stage], draw, path: Path) -> None:
    """One small panel per stage, `draw(ax, stage)` filling it."""
    columns = min(4, len(stages))
    rows = -(-len(stages) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(stages):]:
        ax.axis("off")
    for ax, stage in zip(axes.flat, stages):
        draw(ax, stage)
        ax.set_title(f"stage {stage.number}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def class_report(root: Path, stages: list[Stage] | None = None) -> Path:
    """Write report/ in the course folder; returns its index.html."""
    root = course_root(root)
    stages = course_stages(root, stages)
    students = submitted_students(root)
    verdicts = read_verdicts(root, stages, students)
    scores = read_scores(root, stages, verdicts)
    out = root / REPORT
    (out / "pairs").mkdir(parents=True, exist_ok=True)
    handed_in = {(s, st.assignment) for st in stages for s in students if (root / "submitted" / s / st.assignment).is_dir()}
    waiting = sorted(handed_in - set(verdicts))  # handed in, no verdict kept: not graded yet
    sections = [f"<p>{len(students)} students, {len(stages)} stages. Read from the verdicts the judge kept and "
                f"grades.csv; nothing was graded again. Tables as CSV: <a href='stages.csv'>stages</a>, "
                f"<a href='checks.csv'>checks</a>, <a href='students.csv'>students</a>, "
                f"<a href='similarity.csv'>similarity</a>.</p>"]

    stage_rows = []
    for st in stages:
        got = [scores[s, st.assignment] for s in students if (s, st.assignment) in scores]
        full = sum(1 for points, most in got if most and points >= most)
        stage_rows.append([st.number, st.title, sum(1 for s in students if (s, st.assignment) in handed_in),
                           sum(1 for s in students if (s, st.assignment) in verdicts), full])
    write_csv(out / "stages.csv", ["stage", "title", "handed in", "graded", "full marks"], stage_rows)

    def points_panel(ax, st):
        got = [scores[s, st.assignment][0] for s in students if (s, st.assignment) in scores]
        values = sorted(set(got))
        ax.bar([f"{v:g}" for v in values], [got.count(v) for v in values], color="tab:blue")
        ax.set_xlabel("points", fontsize=8)
    plot_grid(stages, points_panel, out / "points.png")
    sections.append("<h2 id='stages'>Per stage</h2>" + table(["stage", "title", "handed in", "graded", "full marks"],
                                                              [[str(c) for c in r] for r in stage_rows])
                    + "<p><img src='points.png' alt='distribution of points per stage'></p>")

    check_rows, parts = [], ["<h2 id='checks'>Per check: who fails it, and why (the hint that fired)</h2>"]
    for st in stages:
        failing: dict[str, set[str]] = defaultdict(set)
        causes: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for s in students:
            for group, outcomes in verdicts.get((s, st.assignment), {}).get("outcomes", {}).items():
                for name, message in outcomes if group in GROUPS else []:
                    if message is not None:
                        check = f"{group}: {name.split('[')[0]}"
                        failing[check].add(s)
                        causes[check][cause(message)].add(s)
        graded = sum(1 for s in students if (s, st.assignment) in verdicts)
        rows = []
        for check in sorted(failing, key=lambda c: -len(failing[c])):
            listed = "".join(f"<details><summary>{len(who)}: {html.escape(why)}</summary>{names(who)}</details>"
                             for why, who in sorted(causes[check].items(), key=lambda kv: -len(kv[1])))
            rows.append([html.escape(check), f"{len(failing[check])} of {graded}", listed])
            check_rows += [[st.number, check, len(failing[check]), why, " ".join(sorted(who))]
                           for why, who in causes[check].items()]
        parts.append(f"<h3>stage {st.number} ({html.escape(st.title)})</h3>"
                     + (table(["check", "students failing", "causes (click for the students)"], rows) if rows
                        else "<p>no check failed</p>"))
    write_csv(out / "checks.csv", ["stage", "check", "students failing", "cause", "students"], check_rows)
    sections += parts

    trained = [st for st in stages if st.model]
    if trained:
        def loss_panel(ax, st):
            reached = [(trained_loss(v), all(m is None for _, m in v["outcomes"].get("loss", [("", "")])))
                       for (s, a), v in verdicts.items() if a == st.assignment]
            reached = [(loss, ok) for loss, ok in reached if loss is not None]
            ax.scatter([(i * 0.618) % 1 for i in range(len(reached))], [r[0] for r in reached], s=10,
                       c=["tab:green" if ok else "tab:red" for _, ok in reached])
            ref, beat = ladder_lines(st.number)
            if ref is not None:
                ax.axhline(ref, color="black", lw=1, label="reference")
            if beat is not None:
                ax.axhline(beat, color="black", ls="--", lw=1, label="to beat")
            ax.set_xticks([])
            ax.legend(fontsize=6)
        plot_grid(trained, loss_panel, out / "losses.png")
        sections.append("<h2 id='losses'>Trained losses beside the ladder</h2><p>Each dot a student's held-out loss "
                        "(green: passed the loss check, red: failed); solid line the reference's loss, dashed the "
                        "loss to beat.</p><p><img src='losses.png' alt='trained losses per stage'></p>")

    def passed(s, st):
        points, most = scores.get((s, st.assignment), (0.0, 1.0))
        return bool(most) and points >= most
    stuck = {s: next((st.number for st in stages if not passed(s, st)), "all passed") for s in students}
    by_stage = defaultdict(list)
    for s, where in stuck.items():
        by_stage[where].append(s)
    sections.append("<h2 id='stuck'>Who is stuck where: the first stage not passed with full marks</h2>"
                    + table(["stage", "students", "who"], [[w, str(len(who)), names(who)]
                                                          for w, who in sorted(by_stage.items())]))

    flags = [[s, a, html.escape("; ".join(r for r, _ in v["outcomes"][EVIDENCE]))]
             for (s, a), v in sorted(verdicts.items()) if v["outcomes"].get(EVIDENCE)]
    problems = [[s, a, html.escape(v["problem"])] for (s, a), v in sorted(verdicts.items()) if v.get("problem")]
    sections.append("<h2 id='review'>For review: what the evidence flagged (points unchanged)</h2>"
                    + (table(["student", "assignment", "seen"], [[names([s]), a, r] for s, a, r in flags])
                       if flags else "<p>nothing flagged</p>")
                    + "<h3>Graded 0 because the checks could not run</h3>"
                    + (table(["student", "assignment", "why"], [[names([s]), a, w] for s, a, w in problems])
                       if problems else "<p>none</p>")
                    + "<h3 id='waiting'>Not graded yet (handed in, no verdict kept)</h3>"
                    + (table(["student", "assignment"], [[names([s]), a] for s, a in waiting]) if waiting
                       else "<p>none</p>"))

    sections.append(similarity_section(root, stages, students, out))

    student_rows = [[s, *[f"{scores[s, st.assignment][0]:g}/{scores[s, st.assignment][1]:g}"
                          if (s, st.assignment) in scores else "-" for st in stages], stuck[s]] for s in students]
    write_csv(out / "students.csv", ["student", *[st.number for st in stages], "first stage not passed"], student_rows)
    feedback = {(s, a): f"../feedback/{s}/{a}/{a}.html" for s in students for a in (st.assignment for st in stages)
                if (root / "feedback" / s / a / f"{a}.html").exists()}
    rows = [[f"<span id='s-{html.escape(r[0])}'>{html.escape(r[0])}</span>",
             *[f"<a href='{html.escape(quote(feedback[r[0], st.assignment]))}'>{c}</a>" if (r[0], st.assignment) in feedback
               else c for st, c in zip(stages, r[1:-1])], r[-1]] for r in student_rows]
    sections.append("<h2 id='students'>Students (points per stage; a link opens the feedback)</h2>"
                    + table(["student", *[f"stage {st.number}" for st in stages], "first not passed"], rows))
    page = out / "index.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>Class report</title><style>"
                    "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{border:1px solid "
                    "#ccc;padding:2px 6px;vertical-align:top;font-size:13px} summary{cursor:pointer}</style></head>"
                    "<body><h1>Class report</h1><nav><a href='#stages'>stages</a> · <a href='#checks'>checks</a> · "
                    "<a href='#stuck'>stuck</a> · <a href='#review'>review</a> · <a href='#similarity'>similarity"
                    "</a> · <a href='#students'>students</a></nav>" + "".join(sections) + "</body></html>\n")
    print(f"class report: {page}")
    return page


def module_text(path: Path) -> str:
    """A module's text, as the judge would read it: a plain file, never a link, none too large (else "")."""
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= LARGEST_MODULE:
            return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    return ""


def similarity_section(root: Path, stages: list[Stage], students: list[str], out: Path) -> str:
    """Per stage and over the course: pairs of students, and each student against the reference; CSV and pages."""
    rows: list[list] = []
    html_rows: list[list[str]] = []
    everyone: dict[str, similarity.Prints] = defaultdict(dict)
    for st in stages:
        name = f"{st.module}.py"
        given = similarity.fingerprints(module_text(root / "release" / st.assignment / name)
                                        or module_text(root / "source" / st.assignment / name))
        sources = {s: module_text(root / "submitted" / s / st.assignment / name) for s in students}
        prints = {s: similarity.own(similarity.fingerprints(text), given) for s, text in sources.items() if text}
        for s, p in prints.items():
            everyone[s].update({hash((st.number, h)): lines for h, lines in p.items()})  # per stage
        reference = module_text(REPO_ROOT / "solutions" / name)  # a clone: the reference is public
        found = similarity.similar_pairs(prints, floor=0.3)
        if reference:
            ref_prints = similarity.own(similarity.fingerprints(reference), given)
            sources["reference"], prints["reference"] = reference, ref_prints
            found += [p for p in similarity.to_reference(
                {s: v for s, v in prints.items() if s != "reference"}, ref_prints).values() if p.score > 0.3]
        for pair in sorted(found, key=lambda p: -p.score):
            rows.append([st.number, pair.a, pair.b, f"{pair.score:.2f}", len(pair.shared)])
            if pair.score >= similarity.THRESHOLD and len(html_rows) < PAGES:
                page = f"pairs/{st.assignment}-{pair.a}-{pair.b}.html"
                (out / page).write_text(similarity.side_by_side(
                    f"stage {st.number}: {pair.a} and {pair.b} ({pair.score:.2f})", (pair.a, pair.b),
                    (sources[pair.a], sources[pair.b]), (prints[pair.a], prints[pair.b]), pair.shared, "../index.html"))
                html_rows.append([st.number, names([pair.a]) if pair.a in students else pair.a,
                                  names([pair.b]) if pair.b in students else pair.b, f"{pair.score:.2f}",
                                  f"<a href='{html.escape(quote(page))}'>side by side</a>"])
    whole = similarity.similar_pairs(everyone, floor=0.3)
    rows += [["all", p.a, p.b, f"{p.score:.2f}", len(p.shared)] for p in whole]
    html_rows += [["all", names([p.a]), names([p.b]), f"{p.score:.2f}", "see the stages above"]
                  for p in whole if p.score >= similarity.THRESHOLD][:PAGES]
    write_csv(out / "similarity.csv", ["stage", "student", "with", "score", "shared fingerprints"], rows)
    return ("<h2 id='similarity'>Similarity, for review (never points)</h2><p>Winnowed fingerprints of the stage "
            "modules, names and literals normalised, what the release gave subtracted; score: the share of the "
            f"smaller module's own fingerprints the other has too. Pairs at or above {similarity.THRESHOLD} are listed "
            "(similarity.csv: every pair above 0.3). A score is evidence to look at, not a verdict.</p>"
            + (table(["stage", "student", "with", "score", "evidence"], html_rows) if html_rows
               else "<p>no pair above the threshold</p>"))
