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


@torch.no_grad()
def generate_batch(model: GPT, prompts: list[list[int]], max_new: int, *, temperature: float, top_k: int | None = None,
                   generator: torch.Generator | None = None, stop_id: int | None = None, vocab_size: int | None = None) -> list[list[int]]:
    """New ids for every prompt at once: the prompts left-padded into one batch, one KV cache,
    one forward pass per new token for the whole batch (a row that has stopped rides along and
    is cut at its `stop_id`, which is kept). Greedy at `temperature` 0. RL samples a group per
    prompt by repeating it: `generate_batch(model, [p] * n + [q] * n, ...)`."""
    if not prompts or not all(prompts):
        raise ValueError("generate_batch needs at least one prompt, none of them empty")
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    B, L = len(prompts), max(len(p) for p in prompts)
    ids = torch.zeros(B, L, dtype=torch.long)
    valid = torch.ones(B, L + max_new, dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, L - len(p):] = torch.tensor(p)
        valid[i, : L - len(p)] = False  # left padding
    padded = bool((~valid).any())
    cache = KVCache(model.config, B, L + max_new, device=device, dtype=next(model.parameters()).dtype,
                    valid=valid.to(device) if padded else None)
    V = vocab_size or model.config.vocab_size
    logits, _ = model(ids.to(device), kv_cache=cache)
    last = logits[:, -1, :V].float()  # (B, V)
    steps, done = [], torch.zeros(B, dtype=torch.bool, device=device)
    for i in range(max_new):
        if temperature <= 0:
            nxt = last.argmax(-1)
        else:
            last = last / temperature
            if top_k:
                kth = torch.topk(last, min(top_k, V), dim=-1).values[:, -1:]
                last = last.masked_fill(last < kth, float("-inf"))
            # inverse-CDF sampling: one uniform per row (torch.multinomial draws an exponential for
            # every vocabulary entry, ~half of all sampling time at 64 rows x 8192 ids on a CPU)
            cdf = torch.softmax(last, -1).cumsum(-1)  # (B, V)
            u = 1.0 - torch.rand(B, 1, generator=generator, device=device)  # (0, 1]: a zero-probability id is never picked
            nxt = torch.searchsorted(cdf, u * cdf[:, -1:]).squeeze(1).clamp_max(V - 1)
        steps.append(nxt)
        if stop_id is not None:
            done |= nxt == stop_id
        if bool(done.all()) or i == max_new - 1:
            break
        logits, _ = model(nxt[:, None], kv_cache=cache)
        last = logits[:, -1, :V].float()
    model.train(was)
    out = []
    for row in torch.stack(steps, 1).tolist():
        out.append(row[: row.index(stop_id) + 1] if stop_id is not None and stop_id in row else row)
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
