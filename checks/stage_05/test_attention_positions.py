"""Stage 05 checks: with positions, attention can tell word order."""
from dataclasses import replace

import torch

from lil_transformy.grading.checking import expect, student_code
from lil_transformy.tokens import WORD_ORDER_PAIR, word_order_pair
from lil_transformy.train import SHARED

from ..model_checks import *  # noqa: F403  the checks every language model gets: shapes, causality, the loss
from ..model_checks import test_the_attention_it_builds_on_is_causal, test_the_stages_it_builds_on_pass_their_checks  # noqa: F401


def test_word_order_now_matters(Model, token_data):
    cfg = replace(SHARED, vocab_size=token_data.vocab.size)
    girl_dog, dog_girl = word_order_pair(token_data.vocab)
    with student_code():
        model = Model(cfg).eval()
        a, b = model(girl_dog)[0, -1], model(dog_girl)[0, -1]
    expect(not torch.allclose(a, b, atol=1e-5),
           "different next-token logits for {!r} and {!r}".format(*WORD_ORDER_PAIR),
           "the same logits: the model cannot tell word order",
           "start forward() from self.embed(idx): token vectors plus position vectors")
