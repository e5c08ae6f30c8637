"""Stage 08 checks: two blocks, each with its own weights, both used, in order.

The judge changes the first block's weights and watches the second block's output; it runs the
model's own pieces (embed, each block, ln_final, unembed) one by one and compares with the
model's logits: no probe runs next to the student's code.
"""
import itertools
import random

import torch

from lil_transformy.grading.checking import (
    expect,
    parameter_names,
    random_tokens,
    random_vectors,
    set_weights,
    student_code,
)

from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss
from ..model_checks import test_the_attention_it_builds_on_is_causal, test_the_stages_it_builds_on_pass_their_checks  # noqa: F401

N_BLOCKS = 2
SAME = 1e-4  # the same float32 operations in another order differ by ~1e-6


def test_two_blocks_with_their_own_weights(Model, tiny):
    x = random_vectors(2, 5, tiny.d_model)
    with student_code():
        model = Model(tiny).eval()
        count = len(model.blocks)
        expect(count == N_BLOCKS, f"{N_BLOCKS} blocks in self.blocks", f"{count}",
               "self.blocks = nn.ModuleList([Block(...) for _ in range(N_BLOCKS)])")
        first, second = model.blocks[0], model.blocks[1]
        before = (first(x), second(x))
        weights_before = {name: value.clone() for name, value in model.state_dict().items()}  # not live
        changed = [name for name in parameter_names(model) if name.startswith("blocks.0.")]
        set_weights(model, {name: "normal" for name in changed})
        after = {}
        for i in random.SystemRandom().sample([0, 1], 2):  # an order the student's code cannot predict
            after[i] = (first, second)[i](x)
        moved_first = (after[0] - before[0]).abs().max().item()
        moved = (after[1] - before[1]).abs().max().item()
        weights_after = model.state_dict()
    expect(moved_first > 1e-6, "block 0's output to change when the judge sets its weights (blocks.0.*)",
           f"it did not ({len(changed)} weights set)", "the checks set weights through the model's own "
           "load_state_dict: keep the blocks as nn.Modules in self.blocks, and their weights as parameters")
    shared = [name for name in weights_before if name.startswith("blocks.1.")
              and not torch.equal(weights_before[name], weights_after[name])]
    expect(moved <= 1e-6, "block 1's output unchanged when the judge changes only block 0's weights",
           f"it moved by {moved:.3g}: the two blocks share " + (", ".join(shared) or "their weights"),
           "build a new Block, with a new attention, for each entry: [Block(...) for _ in range(N_BLOCKS)]; "
           "[block] * N_BLOCKS lists one block twice, and an attention built once is shared by both blocks")


def test_every_block_runs_once_in_order(Model, tiny):
    """The model's logits equal its own pieces run here one after another: embed, blocks[0], blocks[1], ln_final,
    unembed."""
    idx = random_tokens(tiny.vocab_size, (2, 6))
    with student_code():
        model = Model(tiny).eval()
        logits = model(idx)
        streams = {(): model.embed(idx)}  # the residual stream after the blocks run in each order
        for order in (o for n in range(1, N_BLOCKS + 2) for o in itertools.product(range(len(model.blocks)), repeat=n)):
            streams[order] = model.blocks[order[-1]](streams[order[:-1]])
        gaps = {order: (logits - model.unembed(model.ln_final(x))).abs().max().item() for order, x in streams.items()}
    in_order = tuple(range(N_BLOCKS))
    matches = next((list(order) for order, gap in sorted(gaps.items(), key=lambda og: og[0] != in_order)
                    if gap <= SAME), None)  # in order first: shared blocks match other orders too
    expect(matches == list(in_order), f"logits from the blocks run in order {list(in_order)}, computed here from "
           "your model's own embed, blocks, ln_final and unembed", f"blocks run in order {matches}" if matches else
           f"a difference of {gaps.get(in_order, float('nan')):.3g}, and no other order of your blocks either",
           "for block in self.blocks: x = block(x)")
