"""Lil Transformy: the library of a test-driven course that evolves a language model, one stage at a time.

The core, flat in this package, is what a student's stages and notebooks run on (paths, errors, stages,
data, tokenizer, vocab, tokens, train, sampling, plots, notebook, progress, evolve, ladder, runner, and
the `lil-transformy` command in cli). Around it, one subpackage per wing with another audience:
``grading`` (the judge and its sandbox: the security boundary), ``course`` (instructors: build and grade
an nbgrader course), ``authoring`` (maintainers: exercises from solutions, mutants, notebook files) and
``full`` (the full-scale preset). The lessons live in ``solutions/`` (written once) and ``exercises/``
(generated from them); the checks ship as ``lil_transformy.checks``. Map: docs/ARCHITECTURE.md.
"""
import os
import sys

__version__ = "0.1.0"

# Torch's CPU threads (GNU OpenMP) wait for each other spinning for a short while, then asleep, instead of spinning
# for about 0.2 s: the same numbers, as fast when the machine is idle, and about twice as fast when other programs
# keep its cores busy (measured: README, "How long a stage trains"). libgomp reads this when torch loads, so only
# where the course is imported first: its commands, notebooks and checks. The grading child gets it from its
# environment (grading/sandbox.py); a value already set is kept.
if "torch" not in sys.modules:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
