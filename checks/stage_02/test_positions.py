"""Stage 02 checks: token + position embeddings, and why an average hides the positions."""
from dataclasses import replace

import torch

from lil_transformy.grading.checking import expect, expect_shape, set_weights, student_code
from lil_transformy.tokens import WORD_ORDER_PAIR, word_order_pair
from lil_transformy.train import SHARED

from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss
from ..model_checks import test_the_stages_it_builds_on_pass_their_checks  # noqa: F401


def test_embedding_adds_one_vector_per_position(stage, tiny):
    embed = stage.TokenAndPositionEmbedding(tiny)
    idx = torch.tensor([[4, 4, 4, 9]])  # the same token three times
    with student_code():
        out = embed(idx)
    expect_shape(out, (1, 4, tiny.d_model), "embed(idx)", "(batch, seq, d_model): one vector per token")
    position_part = out - embed.token_embedding(idx)
    expected = embed.position_embedding.weight[:4].unsqueeze(0)
    expect(torch.allclose(position_part, expected, atol=1e-6),
           "embed(idx) - token_embedding(idx) == position_embedding(0, 1, 2, 3)",
           "something else", "add position_embedding(torch.arange(seq)) to the token vectors")


def test_the_average_hides_word_order(Model, token_data):
    """The lesson: positions are in every vector, yet the average makes word order invisible."""
    cfg = replace(SHARED, vocab_size=token_data.vocab.size)
    with student_code():
        model = Model(cfg).eval()
        positions = "embed.position_embedding.weight"
        set_weights(model, {positions: "normal"})  # large positions: if order leaks, it shows
        girl_dog, dog_girl = (model(ids)[0, -1] for ids in word_order_pair(token_data.vocab))
        no_positions = Model(cfg).eval()
        no_positions.load_state_dict(model.state_dict())
        set_weights(no_positions, {positions: "zeros"})
        without = no_positions(word_order_pair(token_data.vocab)[0])[0, -1]
    expect(not torch.allclose(girl_dog, without, atol=1e-4), "the positions to change the logits",
           "the same logits with every position vector zeroed", "does forward() use self.embed (tokens + positions)?")
    expect(torch.allclose(girl_dog, dog_girl, atol=1e-4),
           "the same next-token logits for {!r} and {!r}".format(*WORD_ORDER_PAIR),
           f"logits that differ by up to {(girl_dog - dog_girl).abs().max():.2g}",
           "mean(token + position) = mean(token) + mean(position): average the sum, as stage 01 does")
