"""The reference solution of every stage: the one source of truth (exercises/ is generated from it)."""
