"""The authoring tools, for maintainers: exercises generated from the solutions, realistic mistakes (mutants) and
other correct solutions (variants) the checks are proven against, the notebooks as files."""
