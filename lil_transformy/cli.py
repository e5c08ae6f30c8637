"""The `lil-transformy` command: exercises, vocab, check, progress, train, evolve, course, strip-notebooks, mutants, variants."""
import argparse
import importlib.util
import os
import sys

from lil_transformy.data import HUB_DATASET
from lil_transformy.errors import LilTransformyError
from lil_transformy.paths import DATA_ENV, make_data_path_absolute


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lil-transformy", description=__doc__)
    parser.add_argument("--data", help=f"a TinyStories folder, or 'hub' (default: ${DATA_ENV}, else the slice "
                                       f"the course ships)")
    commands = parser.add_subparsers(dest="command", required=True)

    exercises = commands.add_parser("exercises", help="write exercises/ from solutions/ (maintainers); never "
                                                      "overwrites a file edited since it was generated")
    exercises.add_argument("--check", action="store_true", help="only check exercises/ is in sync; exit 1 if not")
    exercises.add_argument("--force", action="store_true", help="overwrite edited files too (discards that work)")

    commands.add_parser("vocab", help="stage 00: the truncated vocabulary and its coverage on the data")

    progress = commands.add_parser("progress", help="your fast checks and losses, stage by stage, on one screen")
    progress.add_argument("--impl", default="exercises", help="exercises (yours, default), solutions, or a folder")

    check = commands.add_parser("check", help="run a stage's checks on your code (as `pytest checks/stage_NN`; "
                                              "also without a clone, e.g. in a released assignment's folder)")
    check.add_argument("stage", help="a stage number, e.g. 04")
    check.add_argument("--impl", help="the folder of your stage modules (default: this folder if it holds the "
                                      "stage's module, else exercises/)")
    check.add_argument("--fast", action="store_true", help="only the fast checks: no training")

    train = commands.add_parser("train", help="train one stage with the shared budget, print its loss and a sample")
    train.add_argument("stage", help="a stage number, e.g. 05")
    train.add_argument("--impl", default="exercises", help="exercises (yours, default), solutions, or a folder")
    train.add_argument("--seed", type=int, default=0)
    add_preset_flags(train)

    evolve = commands.add_parser("evolve", help="train every stage with the shared budget: the evolution report")
    evolve.add_argument("--stages", default="01-09", help="e.g. 01-09 or 03,05 (default 01-09)")
    evolve.add_argument("--seeds", default="0", help="e.g. 0,1,2 (default 0)")
    evolve.add_argument("--impl", default="solutions", help="solutions (default), exercises, or a folder")
    evolve.add_argument("--out", help="folder for evolution.json, .md, .png (default runs/evolution; "
                                      "with --preset full runs/full, which also holds the checkpoints)")
    add_preset_flags(evolve)

    course = commands.add_parser("course", help="an nbgrader course from the stages (instructors)")
    actions = course.add_subparsers(dest="action", required=True, metavar="{build,grade,export,report,demo}")
    build = actions.add_parser("build", help="the course folder and a release per stage (students get "
                                             "DIR/release/stage_NN)")
    grade = actions.add_parser("grade", help="autograde every submission in DIR/submitted, feedback, grades.csv, a "
                                             "table; a re-run grades only what is left")
    export = actions.add_parser("export", help="grades.csv from the gradebook (after every --shard is done)")
    report = actions.add_parser("report", help="DIR/report/index.html: failed checks and why, losses, who is stuck, similarity")
    demo = actions.add_parser("demo", help="build, submit three students (reference, stub, broken) and grade them "
                                           "end to end")
    for action, what in ((build, "a new course folder"), (grade, "the course folder `course build` made"),
                         (export, "the course folder `course build` made"), (report, "a graded course"), (demo, "a new course folder")):
        action.add_argument("dir", help=what)
    for action in (build, demo):
        action.add_argument("--stages", default="00-09", help="e.g. 00,03,05 (default 00-09, the 03b detour included)")
    for action in (grade, export, report):
        action.add_argument("--stages", help="only these of the course's stages, e.g. 03,05 (default: every stage "
                                             "the course was built for)")
    build.add_argument("--with-earlier-solutions", action="store_true",
                       help="ship the reference modules of the earlier stages each stage imports (default: stubs; "
                            "students bring their own)")
    build.add_argument("--course-id", default="lil-transformy",
                       help="nbgrader's course id, as students' nbgrader_config.py names it (default lil-transformy)")
    build.add_argument("--exchange", help="the nbgrader exchange's root folder, shared by you and your students "
                                          "(default: nbgrader's, /srv/nbgrader/exchange)")
    build.add_argument("--partial-credit", action="store_true",
                       help="a share of a group's points for each of its checks that passes (default: all or "
                            "nothing per group)")
    for action in (grade, demo):
        action.add_argument("--jobs", type=int, default=1,
                            help="students judged at once, each in its own sandbox with cores/jobs CPU threads (at "
                                 "most one job per core; default 1)")
        action.add_argument("--unsandboxed", action="store_true",
                            help="grade without the bubblewrap sandbox: students' code could then reach the "
                                 "gradebook and each other's work")
    grade.add_argument("--shard", type=shard_spec, metavar="K/M",
                       help="only share K of M of the students (by a hash of their names), for M machines writing "
                            "one PostgreSQL gradebook; then `course export` on any of them")
    for action, what in ((build, "written into nbgrader_config.py"), (grade, "instead of the configured one"),
                         (export, "instead of the configured one"), (demo, "written into nbgrader_config.py")):
        action.add_argument("--db", help=f"the gradebook's URL (nbgrader's db_url), e.g. "
                                         f"postgresql://user@host/course, {what} (default: SQLite in the course "
                                         f"folder)")

    commands.add_parser("strip-notebooks", help="remove outputs from notebooks/*.ipynb before committing (maintainers)")

    for kind, what in (("mutants", "realistic mistakes the checks must catch"),
                       ("variants", "other correct code the checks must pass")):
        suite = commands.add_parser(kind, help=f"grade every patch in {kind}/: {what}")
        suite.add_argument("--only", help=f"one of {kind}/*.toml, by name")

    args = parser.parse_args(argv)
    if args.data:
        os.environ[DATA_ENV] = args.data
        make_data_path_absolute()
    try:
        return COMMANDS[args.command](args)
    except LilTransformyError as error:
        print(f"lil-transformy: error: {error}", file=sys.stderr)
        return 2


def add_preset_flags(command) -> None:
    command.add_argument("--preset", choices=["course", "full"], default="course",
                         help="course (default): the shipped slice, the shared budget, seconds per stage on a CPU; "
                              "full: all of TinyStories at the seed's scale (d_model 128, context 256), for a GPU "
                              "or a Mac, downloaded once, checkpointed and resumable")
    command.add_argument("--dataset", default=HUB_DATASET,
                         help="--preset full: the dataset for datasets.load_dataset, a hub name or a folder")
    command.add_argument("--compile", action="store_true", help="--preset full: torch.compile the model")


OUT_OF_SYNC = ("exercises/ differs from what solutions/ generates: {files}.\n"
               "Students: these are your edits; nothing to do (check your stages with `pytest checks/stage_NN`).\n"
               "Maintainers: after changing solutions/, run `lil-transformy exercises` (it never overwrites an "
               "edited file) and commit exercises/.")


def run_exercises(args) -> int:
    from lil_transformy.authoring.exercises import out_of_sync, write_exercises

    if args.check:
        stale = out_of_sync()
        if stale:
            print(OUT_OF_SYNC.format(files=", ".join(stale)), file=sys.stderr)
            return 1
        print("exercises/ is in sync with solutions/")
        return 0
    for path in write_exercises(force=args.force):
        print(f"wrote {path}")
    return 0


def run_vocab(args) -> int:
    from lil_transformy.tokens import load_token_data

    data = load_token_data()
    unknown = float((data.heldout == 0).float().mean())
    print(f"data: {data.source}\ntraining tokens: {len(data.train):,}   held-out tokens: {len(data.heldout):,}\n"
          f"vocabulary: {data.vocab.size:,} ids (of GPT-2's 50,257) covering {data.vocab.coverage:.2%} "
          f"of the training tokens; {unknown:.2%} of the held-out tokens are <unk>")
    return 0


def run_check(args) -> int:
    from pathlib import Path

    import pytest

    from lil_transformy.paths import CHECKS
    from lil_transformy.stages import get_stage

    stage = get_stage(args.stage)
    impl = args.impl or ("." if (Path.cwd() / f"{stage.module}.py").exists() else "exercises")
    return int(pytest.main([str(CHECKS / stage.assignment), f"--impl={impl}", f"--rootdir={CHECKS.parent}",
                            "-p", "no:cacheprovider", *(["-m", "not training"] if args.fast else [])]))


def run_train(args) -> int:
    from dataclasses import replace

    from lil_transformy.sampling import sample_text
    from lil_transformy.stages import get_stage, model_class
    from lil_transformy.tokens import load_token_data
    from lil_transformy.train import SHARED, train
    from lil_transformy.trainings import shared_training

    stage = get_stage(args.stage)
    if args.preset == "full":
        return train_full_stage(stage, args)
    data = load_token_data()
    if args.seed == 0:  # the stage's one training, shared with its loss check and its notebook
        result, how = shared_training(stage.number, args.impl, data, "`lil-transformy train`", label=stage.assignment)
    else:
        result = train(model_class(stage.number, args.impl), data, replace(SHARED, seed=args.seed), label=stage.assignment)
        how = f"trained {result.config.steps} steps with seed {args.seed} in {result.seconds:.0f} s"
    print(f"stage {stage.number} ({stage.title}): held-out loss {result.val_loss:.3f} "
          f"(perplexity {result.perplexity:.1f}), {how}")
    print(sample_text(result.model, data.vocab, "Once upon a time", result.config.context))
    return 0


def train_full_stage(stage, args) -> int:
    from dataclasses import replace
    from pathlib import Path

    from lil_transformy.full.data import load_full_data
    from lil_transformy.full.report import checkpoint_path
    from lil_transformy.full.scale import FULL, train_full
    from lil_transformy.sampling import sample_text
    from lil_transformy.stages import model_class

    data = load_full_data(args.dataset)
    checkpoint = checkpoint_path(Path("runs/full"), stage.number, args.seed)
    result = train_full(model_class(stage.number, args.impl), data, replace(FULL, seed=args.seed), checkpoint,
                        args.compile, label=f"stage {stage.number}")
    print(f"stage {stage.number} ({stage.title}), full preset: held-out loss {result.val_loss:.3f} "
          f"(perplexity {result.perplexity:.1f}) in {result.seconds / 60:.1f} min; checkpoint {checkpoint}")
    print(sample_text(result.model, data.vocab, "Once upon a time", result.config.context))
    return 0


def run_evolve(args) -> int:
    from pathlib import Path

    from lil_transformy.evolve import evolve
    from lil_transformy.stages import parse_stages

    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise LilTransformyError(f"--seeds takes numbers separated by commas, not {args.seeds!r}") from None
    if args.preset == "full":
        from lil_transformy.full.report import evolve_full

        out = Path(args.out or "runs/full")
        evolve_full(parse_stages(args.stages, detours=True), seeds, out, args.impl, dataset=args.dataset,
                    compile_model=args.compile)
    else:
        out = Path(args.out or "runs/evolution")
        evolve(parse_stages(args.stages), seeds, out, impl=args.impl)
    print((out / "evolution.md").read_text())
    return 0


def run_progress(args) -> int:
    from lil_transformy.progress import show_progress

    return show_progress(args.impl)


def run_course(args) -> int:
    from pathlib import Path

    from lil_transformy import course
    from lil_transformy.stages import parse_stages

    if importlib.util.find_spec("nbgrader") is None:
        raise LilTransformyError("the course commands need nbgrader: pip install 'lil-transformy[course]' (from a "
                                 "clone: pip install -e '.[course]')")
    root = Path(args.dir).resolve()
    stages = parse_stages(args.stages, detours=True) if args.stages else None
    if args.action == "build":
        assert stages is not None  # --stages defaults to 00-09 for build and demo
        groups = course.build(root, stages, args.with_earlier_solutions, args.db, args.partial_credit, args.course_id,
                              args.exchange)
        for number, names in groups.items():
            print(f"stage_{number}: graded groups {', '.join(names)}")
        print(f"course in {root}: students get {root / 'release'}; collect their work into "
              f"{root / 'submitted'}/<student>/stage_NN, then `lil-transformy course grade {args.dir}`")
        return 0
    if args.action == "grade":
        course.grade_class(root, stages, not args.unsandboxed, args.jobs, args.shard, args.db)
        return 0
    if args.action == "report":
        return 0 if course.class_report(root, stages) else 1
    if args.action == "export":
        print(f"grades: {root / 'grades.csv'} ({len(course.export(root, stages, args.db))} rows)")
        return 0
    assert stages is not None  # --stages defaults to 00-09 for build and demo
    return 0 if course.demo(root, stages, not args.unsandboxed, args.jobs, args.db) else 1


def shard_spec(text: str) -> tuple[int, int]:
    """K/M, 1 <= K <= M."""
    k, _, m = text.partition("/")
    if not (k.isdigit() and m.isdigit() and 1 <= int(k) <= int(m)):
        raise argparse.ArgumentTypeError(f"{text!r}: write K/M with 1 <= K <= M, e.g. 1/3 on the first of 3 machines")
    return int(k), int(m)


def run_strip_notebooks(args) -> int:
    from lil_transformy.authoring.notebook_files import NOTEBOOKS, strip

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if strip(path):
            print(f"stripped {path.name}")
    return 0


def run_suite(args) -> int:
    from lil_transformy.authoring.mutants import run_suite as run

    return run(args.command, args.only)


COMMANDS = {"exercises": run_exercises, "check": run_check, "vocab": run_vocab, "train": run_train, "evolve": run_evolve,
            "mutants": run_suite, "variants": run_suite, "progress": run_progress,
            "strip-notebooks": run_strip_notebooks, "course": run_course}

if __name__ == "__main__":
    sys.exit(main())
