"""Where courses built before the grading wing had its own package find the autograde preprocessor: their
nbgrader_config.py names `lil_transformy.nbgrader_hooks.GradeWithTheChecks`."""
from lil_transformy.grading.nbgrader_hooks import GradeWithTheChecks

__all__ = ["GradeWithTheChecks"]
