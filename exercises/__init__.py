"""Your code: one module per stage, generated from solutions/ with stubs to fill in."""
