"""Which students' modules are near-identical, for review (never points): winnowed fingerprints of token k-grams.

MOSS's method (Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document fingerprinting",
SIGMOD 2003). A module becomes a stream of tokens with comments, docstrings and layout gone, every name the
student chose replaced by one placeholder (keywords, builtins, imported modules and attributes of other objects
than `self` kept: `torch.tril` stays) and every literal by its kind. Each run of K tokens is hashed and, of every
W consecutive hashes, the smallest is kept: two modules that share a run of K + W - 1 tokens share a
fingerprint, wherever the run sits. So renamed variables, reformatting, comments and reordered statements leave
the fingerprints in place. What the release gave every student (the stub: its scaffold and docstrings) is
subtracted first, and so is what more than half the class wrote alike (MOSS's -m): short code every correct
student writes the same way (`torch.tril(torch.ones(t, t))`) does not make two honest students look alike.

A pair's score is the share of the smaller module's own fingerprints the other module has too (0 to 1).
"""
import builtins
import html
import io
import keyword
import tokenize
import zlib
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

K = 8  # tokens per k-gram
W = 4  # k-grams per winnowing window: any shared run of K + W - 1 = 11 tokens is seen
THRESHOLD = 0.7  # a pair (or a student and the reference) at or above this is shown for review (tests/test_report.py)
MIN_PRINTS = 6  # fewer own fingerprints than this: too little own code to compare
COMMON_SHARE, COMMON_FLOOR = 0.5, 5  # a fingerprint in more students than both is the class's idiom: ignored
KEPT = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}

Prints = dict[int, set[int]]  # fingerprint: the source lines of the k-grams it stands for


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    score: float  # the share of the smaller one's own fingerprints they share
    shared: frozenset  # the fingerprints they share (for the side-by-side view)


def statements(source: str) -> list[list[tokenize.TokenInfo]]:
    """The module's logical lines as tokens, without layout or comments; as far as it tokenizes."""
    found: list[list[tokenize.TokenInfo]] = [[]]
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NEWLINE or (token.type == tokenize.OP and token.string == ";"):
                found.append([])
            elif token.type not in SKIPPED:
                found[-1].append(token)
    except (tokenize.TokenError, SyntaxError):
        pass  # a module that does not parse: its tokens so far
    return [s for s in found if s]


def normalised(source: str) -> list[tuple[str, int]]:
    """(token, line) for every token but comments, layout and docstrings: chosen names as "V", literals by kind."""
    stream = [s for s in statements(source) if any(t.type != tokenize.STRING for t in s)]  # a docstring is all string
    kept = KEPT | {t.string for s in stream if s[0].string in ("import", "from") for t in s if t.type == tokenize.NAME}
    out: list[tuple[str, int]] = []
    for statement in stream:
        before = ["", ""]
        for token in statement:
            text = token.string
            if token.type == tokenize.NAME and text not in kept and not (before[-1] == "." and before[-2] != "self"):
                text = "V"
            elif token.type == tokenize.NUMBER:
                text = "0"
            elif token.type in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)):
                text = '""'
            before = [before[-1], token.string]
            out.append((text, token.start[0]))
        out.append((";", statement[-1].end[0]))
    return out


def fingerprints(source: str) -> Prints:
    """The winnowed fingerprints of a module, each with the lines its k-grams cover."""
    tokens = normalised(source)
    codes = [zlib.crc32(t.encode()) for t, _ in tokens]  # a tuple of ints hashes the same in every process
    grams = [(hash(tuple(codes[i:i + K])), tokens[i][1], tokens[i + K - 1][1])
             for i in range(len(tokens) - K + 1)]
    prints: Prints = {}
    for start in range(max(len(grams) - W + 1, 1 if grams else 0)):
        window = grams[start:start + W]
        smallest = min(g[0] for g in window)
        h, first, last = next(g for g in reversed(window) if g[0] == smallest)  # the rightmost smallest
        prints.setdefault(h, set()).update(range(first, last + 1))
    return prints


def own(prints: Prints, given: Prints) -> Prints:
    """What the student wrote: their fingerprints less those of what the release gave them."""
    return {h: lines for h, lines in prints.items() if h not in given}


def common(by_student: dict[str, Prints]) -> set[int]:
    """The fingerprints more than COMMON_SHARE of the class (and more than COMMON_FLOOR students) have."""
    counts = Counter(h for prints in by_student.values() for h in prints)
    most = max(COMMON_FLOOR, COMMON_SHARE * len(by_student))
    return {h for h, n in counts.items() if n > most}


def score(a: set, b: set, shared: set | None = None) -> float:
    """The share of the smaller set its partner has too; 0 for too little code."""
    if min(len(a), len(b)) < MIN_PRINTS:
        return 0.0
    return len(a & b if shared is None else shared) / min(len(a), len(b))


def similar_pairs(by_student: dict[str, Prints], floor: float = 0.0) -> list[Pair]:
    """Every pair of students scoring above `floor` (the class's idioms left out), highest first. Only students who
    share a fingerprint are compared (an index of who has which)."""
    idiom = common(by_student)
    kept = {s: set(p) - idiom for s, p in by_student.items()}
    holders: dict[int, list[str]] = {}
    for student, prints in kept.items():
        for h in prints:
            holders.setdefault(h, []).append(student)
    together: dict[tuple[str, str], set[int]] = {}
    for h, who in holders.items():
        for a, b in combinations(sorted(who), 2):
            together.setdefault((a, b), set()).add(h)
    pairs = [Pair(a, b, score(kept[a], kept[b], shared), frozenset(shared)) for (a, b), shared in together.items()]
    return sorted((p for p in pairs if p.score > floor), key=lambda p: (-p.score, p.a, p.b))


def to_reference(by_student: dict[str, Prints], reference: Prints) -> dict[str, Pair]:
    """Each student against the reference solution (less the stub), idioms included: the reference is public."""
    ref = set(reference)
    return {s: Pair(s, "reference", score(set(p), ref), frozenset(set(p) & ref)) for s, p in by_student.items()}


def side_by_side(title: str, names: tuple[str, str], sources: tuple[str, str], prints: tuple[Prints, Prints],
                 shared: frozenset, back: str) -> str:
    """A page with the two modules in columns, the lines of their shared fingerprints highlighted."""
    columns = []
    for name, source, own_prints in zip(names, sources, prints):
        marked = {line for h in shared for line in own_prints.get(h, ())}
        rows = "\n".join(f'<span class="{"m" if n in marked else "n"}">{n:4d}  {html.escape(line)}</span>'
                         for n, line in enumerate(source.splitlines(), 1))
        columns.append(f"<div><h2>{html.escape(name)}</h2><pre>{rows}</pre></div>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif} .cols{display:flex;gap:1em} .cols>div{flex:1;overflow-x:auto} "
            "pre{font-size:12px} span{display:block} .m{background:#ffe08a}</style></head><body>"
            f"<p><a href='{back}'>back to the class report</a></p><h1>{html.escape(title)}</h1>"
            f"<p>Highlighted: the lines of the {len(shared)} fingerprints the two share (runs of {K} or more "
            f"tokens, names and literals normalised) beyond the stub. Evidence to look at, not a verdict.</p>"
            f"<div class='cols'>{''.join(columns)}</div></body></html>")
