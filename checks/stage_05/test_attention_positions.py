"""Stage 05 checks: with positions, attention can tell word order."""
from dataclasses import replace

import torch

from checks.model_checks import (test_logits_shape, test_loss_on_the_ladder, test_no_peeking_by_gradient,  # noqa: F401
                                  test_no_peeking_by_perturbation, test_no_peeking_on_a_real_story)
from lil_transformy.checking import expect, student_code
from lil_transformy.train import SHARED


def test_word_order_now_matters(Model, token_data):
    cfg = replace(SHARED, vocab_size=token_data.vocab.size)
    torch.manual_seed(0)
    girl_dog = torch.as_tensor(token_data.vocab.encode("The girl saw the dog")).unsqueeze(0)
    dog_girl = torch.as_tensor(token_data.vocab.encode("The dog saw the girl")).unsqueeze(0)
    with student_code():
        model = Model(cfg).eval()
        a, b = model(girl_dog)[0, -1], model(dog_girl)[0, -1]
    expect(not torch.allclose(a, b, atol=1e-5),
           "different next-token logits for 'The girl saw the dog' and 'The dog saw the girl'",
           "the same logits: the model cannot tell word order",
           "start forward() from self.embed(idx): token vectors plus position vectors")
