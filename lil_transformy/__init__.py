"""Lil Transformy: the shared library of the course (data, tokenizer, training, sampling, plots).

The lessons live in ``solutions/`` (written once) and ``exercises/`` (generated from them).
"""
__version__ = "0.1.0"
