"""The stages of the course, and how to load one stage's module from an implementation.

An implementation is a folder of stage modules: ``solutions`` (the reference), ``exercises``
(the student's), or any other folder laid out the same way (a submission, a mutant).
"""
import hashlib
import importlib
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import REPO_ROOT

IMPLEMENTATIONS = ("exercises", "solutions")
IMPL_PACKAGE = "lt_impl_"  # the import names of implementation folders start so (package_for)


@dataclass(frozen=True)
class Stage:
    number: str
    module: str
    model: str | None  # the language model class the stage defines; None for data prep
    title: str
    # The names its checks use, a contract with every student: a module-level name, or Class.attribute (set in
    # the scaffold's __init__). Renaming one fails the checks with a message that names it (tests/test_stages.py).
    contract: tuple[str, ...] = ()
    # The earlier stages whose code runs in this one: what it imports, and what that uses of theirs (stage 08's
    # Block runs stage 06's FeedForward). Their checks run again on the student's own modules (tests/test_stages.py).
    builds_on: tuple[str, ...] = ()

    @property
    def assignment(self) -> str:
        """Its folder and nbgrader assignment: checks/stage_NN, release/stage_NN."""
        return f"stage_{self.number}"

    @property
    def previous(self) -> str | None:
        """The stage whose loss this one must beat: the one before on the ladder (a detour: the ladder stage it
        branches off). None below 02: stage 01 beats the unigram, and 02 matches 01 (positions under an average
        add nothing)."""
        if self in DETOURS:
            return self.number[:2]
        return STAGES[STAGES.index(self) - 1].number if self.number > "02" else None


STAGES = [
    Stage("00", "stage_00_data", None, "data prep",
          ("UNKNOWN_ID", "count_tokens", "coverage_curve", "smallest_vocab_for_coverage", "build_id_maps",
           "encode_with_unknowns")),
    Stage("01", "stage_01_bag_of_words", "BagOfWordsLM", "bag of words", ("causal_average",)),
    Stage("02", "stage_02_positions", "PositionalBagOfWordsLM", "+ positions",
          ("TokenAndPositionEmbedding.token_embedding", "TokenAndPositionEmbedding.position_embedding",
           "PositionalBagOfWordsLM.embed"), builds_on=("01",)),
    Stage("03", "stage_03_bigram", "BigramLM", "bigram"),
    Stage("04", "stage_04_attention", "AttentionLM", "+ attention",
          ("causal_mask", "attention_weights", "AttentionHead.W_Q", "AttentionHead.W_K", "AttentionHead.W_V")),
    Stage("05", "stage_05_attention_positions", "PositionalAttentionLM", "+ positions", ("PositionalAttentionLM.embed",),
          builds_on=("02", "04")),
    Stage("06", "stage_06_ffn", "AttentionFFNLM", "+ FFN", ("FeedForward",), builds_on=("02", "04")),
    Stage("07", "stage_07_block", "BlockLM", "block",
          ("AttentionHead", "Block.attention", "Block.ffn", "Block.ln_1", "Block.ln_2"), builds_on=("02", "04", "06")),
    Stage("08", "stage_08_stacked", "StackedLM", "stacked",
          ("Block", "StackedLM.embed", "StackedLM.ln_final", "StackedLM.unembed"), builds_on=("02", "04", "06", "07")),
    Stage("09", "stage_09_multi_head", "MultiHeadLM", "multi-head",
          ("MultiHeadAttention.W_Q", "MultiHeadAttention.W_O", "MultiHeadAttention.split_heads"),
          builds_on=("02", "04", "06", "07", "08")),
]
# Side trips off the ladder: checked and in the notebooks, but not a rung the next stage must beat.
DETOURS = [Stage("03b", "stage_03b_ngram", "NGramLM", "n-gram detour", ("window",))]


def stage_of_assignment(assignment: str) -> Stage:
    """stage_NN -> its stage."""
    return get_stage(assignment.removeprefix("stage_"))


def get_stage(number: str) -> Stage:
    for stage in STAGES + DETOURS:
        if stage.number == str(number).zfill(2):
            return stage
    raise LilTransformyError(f"there is no stage {number!r}: the stages are "
                             f"{', '.join(s.number for s in STAGES + DETOURS)}")


def parse_stages(text: str, detours: bool = False) -> list[Stage]:
    """'01-09', '03,05', '7' -> stages (with detours: '03-04' includes 03b)."""
    pool = sorted(STAGES + DETOURS, key=lambda s: s.number) if detours else STAGES
    chosen = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        low, high = get_stage(first), get_stage(last or first)
        chosen += [s for s in pool if low.number <= s.number <= high.number and s not in chosen]
    return chosen


def implementation_folder(impl: str) -> Path:
    folder = REPO_ROOT / impl if impl in IMPLEMENTATIONS else Path(impl).resolve()
    if not folder.is_dir():
        raise LilTransformyError(f"unknown implementation {impl!r}: use 'exercises', 'solutions' "
                                 f"or a folder of stage modules")
    return folder


def load_stage_module(number: str, impl: str = "exercises") -> types.ModuleType:
    """Import stage `number` from the implementation `impl` (a name in IMPLEMENTATIONS or a folder).

    Stages import their earlier stages relatively (``from lil_transformy.stage_04_attention import ...``), so a
    student's stage 05 runs on the student's own stage 04, never on the reference.
    """
    stage = get_stage(number)
    folder = implementation_folder(impl)
    if not (folder / f"{stage.module}.py").exists():
        raise LilTransformyError(f"{folder} has no {stage.module}.py")
    package = package_for(folder, impl)
    try:
        return importlib.import_module(f"{package}.{stage.module}")
    except Exception as error:  # a student's syntax error, a bad import: say where, in one line
        raise LilTransformyError(f"{folder / stage.module}.py could not be imported: "
                                 f"{type(error).__name__}: {error}") from error


def package_for(folder: Path, impl: str) -> str:
    """The import name of an implementation folder: a name of its own, so that no implementation (the
    reference least of all) is importable by a plain ``import solutions``."""
    name = IMPL_PACKAGE + hashlib.sha1(str(folder).encode()).hexdigest()[:12]
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    return name


def model_class(number: str, impl: str = "exercises"):
    stage = get_stage(number)
    if stage.model is None:
        raise LilTransformyError(f"stage {stage.number} ({stage.title}) has no model to train")
    return getattr(load_stage_module(number, impl), stage.model)
