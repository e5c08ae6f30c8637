"""Checks shared by the stages whose lesson includes attention."""
from lil_transformy.checking import expect

FORBIDDEN = ("MultiheadAttention", "scaled_dot_product_attention", "TransformerEncoderLayer", "nn.Transformer")


def expect_nothing_ready_made(stage_source: tuple[str, str]) -> None:
    """stage_source: (file name, text) of the student's module (the `stage_source` fixture)."""
    name, source = stage_source
    used = [word for word in FORBIDDEN if word in source]
    expect(not used, "attention and blocks written out by hand", f"{', '.join(used)} in {name}",
           "this stage teaches how they work: build them from matmul, masking, softmax and your earlier stages")
