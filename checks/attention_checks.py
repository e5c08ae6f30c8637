"""Checks shared by the stages whose lesson includes attention."""
import inspect

from lil_transformy.checking import expect

FORBIDDEN = ("MultiheadAttention", "scaled_dot_product_attention", "TransformerEncoderLayer", "nn.Transformer")


def expect_nothing_ready_made(module) -> None:
    source = inspect.getsource(module)
    used = [name for name in FORBIDDEN if name in source]
    expect(not used, "attention and blocks written out by hand", f"{', '.join(used)} in {module.__name__}",
           "this stage teaches how they work: build them from matmul, masking, softmax and your earlier stages")
