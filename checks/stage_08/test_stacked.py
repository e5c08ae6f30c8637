"""Stage 08 checks: two blocks, each with its own weights, both used."""
import torch

from checks.model_checks import (test_logits_shape, test_loss_on_the_ladder, test_no_peeking_by_gradient,  # noqa: F401
                                  test_no_peeking_by_perturbation, test_no_peeking_on_a_real_story)
from lil_transformy.checking import expect, student_code


def test_two_blocks_with_their_own_weights(Model, tiny):
    torch.manual_seed(0)
    with student_code():
        model = Model(tiny)
    blocks = [m for m in model.modules() if type(m).__name__ == "Block"]
    expect(len(blocks) == 2, "2 distinct Block modules", f"{len(blocks)}",
           "build a new Block for each entry, [Block(...) for _ in range(N_BLOCKS)]: [block] * N_BLOCKS lists "
           "one block twice, and the two share their weights")
    shared = {id(p) for p in blocks[0].parameters()} & {id(p) for p in blocks[1].parameters()}
    expect(not shared, "two blocks with separate parameters", f"{len(shared)} parameter tensors shared",
           "give each block its own modules: call self.make_attention(cfg) once per block")


def test_every_block_runs_once_in_order(Model, tiny):
    torch.manual_seed(0)
    calls = []
    with student_code():
        model = Model(tiny).eval()
        blocks = [m for m in model.modules() if type(m).__name__ == "Block"]
        for i, block in enumerate(blocks):
            block.register_forward_hook(lambda module, inputs, output, i=i: calls.append(i))
        model(torch.randint(tiny.vocab_size, (1, 4)))
    expect(calls == list(range(len(blocks))), f"blocks called in order {list(range(len(blocks)))}", f"{calls}",
           "for block in self.blocks: x = block(x)")
