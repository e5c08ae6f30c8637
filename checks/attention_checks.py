"""Checks shared by the stages whose lesson includes attention."""
import inspect

from lil_transformy.checking import expect

FORBIDDEN = ("MultiheadAttention", "scaled_dot_product_attention", "TransformerEncoderLayer", "nn.Transformer")


def expect_no_ready_made_attention(module) -> None:
    source = inspect.getsource(module)
    used = [name for name in FORBIDDEN if name in source]
    expect(not used, "attention written out by hand", f"{', '.join(used)} in {module.__name__}",
           "this stage teaches how attention works: build it from matmul, masking and softmax")
