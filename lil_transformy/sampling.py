"""Text from a trained model: feed the last `context` tokens, draw the next, repeat."""
import torch

from lil_transformy.vocab import Vocabulary


@torch.no_grad()
def generate(model: torch.nn.Module, ids: torch.Tensor, new_tokens: int, context: int,
             temperature: float = 1.0, top_k: int | None = None, seed: int = 0) -> torch.Tensor:
    """ids: (batch, seq) -> (batch, seq + new_tokens). The model never sees more than `context` tokens."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    ids = ids.to(device)
    for _ in range(new_tokens):
        logits = model(ids[:, -context:])[:, -1, :] / temperature  # (batch, vocab): the next token only
        if top_k is not None:
            threshold = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        probs = torch.softmax(logits, dim=-1).cpu()
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator).to(device)], dim=1)
    return ids


def sample_text(model: torch.nn.Module, vocab: Vocabulary, prompt: str, context: int,
                new_tokens: int = 40, seed: int = 0, temperature: float = 0.8) -> str:
    prompt_ids = torch.as_tensor(vocab.encode(prompt)).unsqueeze(0)  # (1, seq)
    out = generate(model, prompt_ids, new_tokens, context, temperature=temperature, top_k=50, seed=seed)
    return vocab.decode(out[0])
