"""Stage 01 checks: causal_average, and the bag-of-words model (shapes, causality, loss)."""
import pytest
import torch

from lil_transformy.grading.checking import (
    expect,
    expect_shape,
    first_future_leak_of_vectors,
    random_vectors,
    student_code,
)

from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss


def test_causal_average_values(stage):
    x = torch.tensor([[[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]]])  # (batch 1, seq 3, d_model 2)
    with student_code():
        out = stage.causal_average(x)
    expect_shape(out, (1, 3, 2), "causal_average(x)", "the output has the input's shape")
    expected = torch.tensor([[[1.0, 10.0], [2.0, 15.0], [3.0, 30.0]]])
    expect(torch.allclose(out, expected), f"{expected.tolist()} (the mean of each prefix)", f"{out.tolist()}",
           "position t averages x[:, 0], ..., x[:, t]: t + 1 vectors, not seq")


@pytest.mark.causality
def test_causal_average_never_looks_ahead(stage):
    with student_code():
        leak = first_future_leak_of_vectors(stage.causal_average, random_vectors(2, 6, 4))
    expect(leak is None, "out[:, t] to depend on x[:, :t + 1] only",
           f"out[:, {leak and leak[0]}] depends on x[:, {leak and leak[1]}]" if leak else "",
           "average prefixes (cumsum), not the whole sequence")
