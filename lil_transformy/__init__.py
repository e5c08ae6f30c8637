"""Lil Transformy: the library of a test-driven course that evolves a language model, one stage at a time.

The core, flat in this package, is what a student's stages and notebooks run on (paths, errors, stages,
data, tokenizer, vocab, tokens, train, sampling, plots, notebook, progress, evolve, ladder, runner, and
the `lil-transformy` command in cli). Around it, one subpackage per wing with another audience:
``grading`` (the judge and its sandbox: the security boundary), ``course`` (instructors: build and grade
an nbgrader course), ``authoring`` (maintainers: exercises from solutions, mutants, notebook files) and
``full`` (the full-scale preset). The lessons live in ``solutions/`` (written once) and ``exercises/``
(generated from them); the checks ship as ``lil_transformy.checks``. Map: docs/ARCHITECTURE.md.
"""
__version__ = "0.1.0"
