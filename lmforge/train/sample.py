"""Text generation from a checkpoint with the KV cache.

The prompt goes through the model once (prefill), then each new token is one forward pass
of length 1 against the cached keys and values: O(T) work per token instead of O(T²) for
re-running the whole sequence. Greedy at temperature 0; otherwise temperature and top-k
sampling from a seeded `torch.Generator`, so the same seed gives the same text.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lmforge.train.model import GPT, KVCache


@torch.no_grad()
def generate(
    model: GPT,
    prompt: list[int],
    max_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    stop: set[int] | None = None,
    vocab_size: int | None = None,
) -> list[int]:
    """New token ids after `prompt` (at most `max_tokens`; ends early at a `stop` id).

    `vocab_size` (the tokenizer's) keeps the padded ids of the embedding from ever being drawn.
    """
    if not prompt:
        raise ValueError("empty prompt: pass at least one token (the BOS id for unconditional text)")
    model.eval()
    device = next(model.parameters()).device
    limit = model.rope_cos.size(0)
    max_tokens = min(max_tokens, limit - len(prompt))
    if max_tokens <= 0:
        raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in the model's {limit}-token limit")
    cache = KVCache(model.config, 1, len(prompt) + max_tokens, device=device, dtype=next(model.parameters()).dtype)
    gen = torch.Generator(device=device).manual_seed(seed)
    logits, _ = model(torch.tensor([prompt], device=device), kv_cache=cache)  # (1, T, V)
    out: list[int] = []
    V = vocab_size or model.config.vocab_size
    for _ in range(max_tokens):
        last = logits[0, -1, :V].float()
        if temperature <= 0:
            nxt = int(last.argmax())
        else:
            last = last / temperature
            if top_k:
                kth = torch.topk(last, min(top_k, V)).values[-1]
                last = last.masked_fill(last < kth, float("-inf"))
            nxt = int(torch.multinomial(torch.softmax(last, dim=-1), 1, generator=gen))
        out.append(nxt)
        if stop and nxt in stop:
            break
        if len(out) < max_tokens:
            logits, _ = model(torch.tensor([[nxt]], device=device), kv_cache=cache)
    return out


def sample_text(run: str | Path, prompt: str, max_tokens: int = 100, *, temperature: float = 0.8, top_k: int | None = 50,
                seed: int = 0, device: str = "cpu", tokenizer_dir: str | None = None) -> str:
    """Load the newest checkpoint of `run` and its tokenizer; return the prompt's continuation."""
    from lmforge.tokenize import Tokenizer
    from lmforge.train.trainer import TrainingError, load_model

    model, state = load_model(run, device, purpose="sample")
    tok_dir = tokenizer_dir or state.get("tokenizer_dir")
    if not tok_dir:
        raise TrainingError(f"{run}: the checkpoint names no tokenizer; pass --tokenizer DIR")
    tok = Tokenizer.load(tok_dir)
    if state.get("tokenizer_fingerprint") and tok.fingerprint != state["tokenizer_fingerprint"]:
        raise TrainingError(f"{tok_dir}: not the tokenizer this model was trained with (fingerprint differs)")
    ids = tok.encode(prompt, bos=True)
    new = generate(model, ids, max_tokens, temperature=temperature, top_k=top_k, seed=seed,
                   stop={tok.bos_id}, vocab_size=tok.vocab_size)
    return tok.decode([i for i in new if i != tok.bos_id])
