"""Stage 08 checks: two blocks, each with its own weights, both used."""

from lil_transformy.grading.checking import expect, random_tokens, student_code
from lil_transformy.grading.probes import block_call_order, blocks
from lil_transformy.grading.remote import run_probe

from ..model_checks import (  # noqa: F401
    test_logits_shape,
    test_loss_on_the_ladder,
    test_no_peeking_by_perturbation,
    test_no_peeking_on_a_real_story,
    test_the_attention_it_builds_on_is_causal,
    test_the_trained_model_never_sees_the_future,
)


def test_two_blocks_with_their_own_weights(Model, tiny):
    with student_code():
        found = run_probe(blocks, Model(tiny))
    expect(found["count"] == 2, "2 distinct Block modules", f"{found['count']}",
           "build a new Block for each entry, [Block(...) for _ in range(N_BLOCKS)]: [block] * N_BLOCKS lists "
           "one block twice, and the two share their weights")
    expect(not found["shared"], "two blocks with separate parameters", f"{found['shared']} parameter tensors shared",
           "give each block its own modules: call self.make_attention(cfg) once per block")


def test_every_block_runs_once_in_order(Model, tiny):
    with student_code():
        model = Model(tiny)
        count = run_probe(blocks, model)["count"]
        calls = run_probe(block_call_order, model, random_tokens(tiny.vocab_size, (1, 4)))
    expect(list(calls) == list(range(count)), f"blocks called in order {list(range(count))}", f"{list(calls)}",
           "for block in self.blocks: x = block(x)")
