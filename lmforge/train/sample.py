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


@torch.inference_mode()
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
    gen = torch.Generator(device=device).manual_seed(seed)
    logits, cache = _prefill(model, [prompt], len(prompt) + max_tokens)  # (1, V)
    out: list[int] = []
    V = vocab_size or model.config.vocab_size
    for _ in range(max_tokens):
        last = logits[0, :V].float()
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
            logits = model(torch.tensor([[nxt]], device=device), kv_cache=cache)[0][:, -1]
    return out


def _prefill(model: GPT, prompts: list[list[int]], max_len: int) -> tuple[torch.Tensor, KVCache]:
    """Run left-padded `prompts` through the model once: the logits of each one's last position
    (B, V_padded) and a KV cache of `max_len` positions that holds them (pads marked in its
    `valid`, never attended). Only the last position goes through the output head: over every
    prompt position the head was ~40% of the prefill's FLOPs at `small`, for logits never read."""
    device = next(model.parameters()).device
    B, L = len(prompts), max(len(p) for p in prompts)
    ids = torch.zeros(B, L, dtype=torch.long)
    valid = torch.ones(B, max_len, dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, L - len(p):] = torch.tensor(p)
        valid[i, : L - len(p)] = False  # left padding
    padded = bool((~valid).any())
    cache = KVCache(model.config, B, max_len, device=device, dtype=next(model.parameters()).dtype,
                    valid=valid.to(device) if padded else None)
    h = model.hidden(ids.to(device), kv_cache=cache)  # (B, L, C)
    return model.lm_head(h[:, -1]), cache


# New positions per shared prompt (rows x tokens) up to which its rows attend in the shared layout
# (KVCache.share). Each query there scores every row's new keys of its group, so the layout
# pays while the per-query call overhead it saves outweighs that: on one CPU core at `small`
# width the crossover was at 400-600 (groups of 8, 16 and 32 rows); past it the cache is
# copied into one sequence per row (KVCache.unshare) and generation continues there.
SHARED_NEW_POSITIONS = 512
SAMPLE_BLOCK = 128  # vocabulary ids per block of the two-level inverse CDF in `_sample`


def _sample(last: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> torch.Tensor:
    """One id per row of logits (B, V): argmax at temperature 0, else drawn from the softmax
    (top-k cut first) by inverse CDF, one uniform per row (torch.multinomial draws an exponential
    for every vocabulary entry, ~half of all sampling time at 64 rows x 8192 ids on a CPU).

    The CDF is found in two levels: the sums of blocks of `SAMPLE_BLOCK` ids locate the block,
    then the cumulative sum of that block alone locates the id. A full-vocabulary `cumsum` is a
    sequential scan (1.5 ms of the ~3 ms a step took at 64 x 8192 on one core); block sums
    vectorise, and the softmax's division is never needed (the uniform is scaled by the total
    instead). The id drawn is the first whose cumulative mass reaches u x total, as before; the
    summation order differs, so a draw can differ only where u falls within float rounding of a
    boundary. A zero-probability id (padded or cut by top-k) is never drawn."""
    if temperature <= 0:
        return last.argmax(-1)
    if temperature != 1.0:
        last = last / temperature
    if top_k:
        kth = torch.topk(last, min(top_k, last.size(-1)), dim=-1).values[:, -1:]
        last = last.masked_fill(last < kth, float("-inf"))
    B, V = last.shape
    nb = -(-V // SAMPLE_BLOCK)
    w = torch.zeros(B, nb * SAMPLE_BLOCK, dtype=torch.float32, device=last.device)  # exp(logit - max), zero past V
    torch.sub(last, last.amax(-1, keepdim=True), out=w[:, :V]).exp_()
    blocks = w.view(B, nb, SAMPLE_BLOCK)
    cum = blocks.sum(-1).cumsum_(-1)  # (B, nb) mass up to the end of each block
    u = 1.0 - torch.rand(B, 1, generator=generator, device=last.device)  # (0, 1]
    target = u * cum[:, -1:]  # (B, 1)
    j = torch.searchsorted(cum, target).clamp_max_(nb - 1)  # the block where the target mass is reached
    before = torch.where(j > 0, cum.gather(1, (j - 1).clamp_min(0)), 0.0)  # mass before block j, < target
    inner = blocks.gather(1, j[:, :, None].expand(B, 1, SAMPLE_BLOCK)).squeeze(1).cumsum_(-1)  # (B, block)
    i = torch.searchsorted(inner, torch.minimum(target - before, inner[:, -1:]))  # first id reaching it (> 0 mass)
    return (j * SAMPLE_BLOCK + i).squeeze(1)


@torch.inference_mode()
def generate_batch(model: GPT, prompts: list[list[int]], max_new: int, *, temperature: float, top_k: int | None = None,
                   generator: torch.Generator | None = None, stop_id: int | None = None, vocab_size: int | None = None,
                   check_every: int | None = None) -> list[list[int]]:
    """New ids for every prompt at once: the prompts left-padded into one KV cache, one forward
    pass per new token for the whole batch (a row that has stopped rides along and is cut at its
    `stop_id`, which is kept). Greedy at `temperature` 0. RL samples a group per prompt by
    repeating it: `generate_batch(model, [p] * n + [q] * n, ...)`; repeated prompts are run
    through the model once and their cache copied to every row that asks for them.

    The cache is preallocated and written in place; the stop test reads the device every
    `check_every` steps (default: every step on a CPU, where it costs nothing; every 8 on an
    accelerator, where it waits for the device). Where the time goes at `small`, 8 prompts x
    8 samples x 32 new tokens on one CPU core (benchmarks/generate.py, torch.profiler): ~47%
    matrix products, ~12% attention over the cache (~23% before a group's rows shared their
    prompt's keys, `KVCache.share`), ~3% sampling (~6% with a full-vocabulary cumsum), the rest
    element-wise kernels and the per-call overhead of many small ones."""
    if not prompts or not all(prompts):
        raise ValueError("generate_batch needs at least one prompt, none of them empty")
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    distinct: dict[tuple, int] = {}
    source = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]  # row -> its prompt's first row
    B, L = len(prompts), max(len(p) for p in prompts)
    V = vocab_size or model.config.vocab_size
    P = len(distinct)
    G = B // P
    if P == B:
        logits, cache = _prefill(model, prompts, L + max_new)
    elif P * G == B and source == [r // G for r in range(B)]:  # RL's shape: each prompt's G rows in a run
        first, cache = _prefill(model, [list(p) for p in distinct], L + G * max_new)
        cache.share(G)  # the prompt's keys stay stored once; see KVCache
        logits = first.repeat_interleave(G, dim=0)
    else:  # prefill each distinct prompt once, then give every row a copy of its prompt's keys and values
        first, pre = _prefill(model, [list(p) for p in distinct], L)
        rows = torch.tensor(source, device=device)
        valid = None
        if pre.valid is not None:
            valid = torch.ones(B, L + max_new, dtype=torch.bool, device=device)
            valid[:, :L] = pre.valid[rows]
        cache = KVCache(model.config, B, L + max_new, device=device, dtype=pre.k.dtype, valid=valid)
        cache.k[:, :, :, :L] = pre.k[:, rows]
        cache.v[:, :, :, :L] = pre.v[:, rows]
        cache.advance(L)
        logits = first[rows]
    check_every = check_every or (1 if device.type == "cpu" else 8)
    out = torch.empty(B, max_new, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    n = 0
    while n < max_new:
        nxt = _sample(logits[:, :V].float(), temperature, top_k, generator)
        out[:, n] = nxt
        n += 1
        if stop_id is not None:
            done |= nxt == stop_id
            if n % check_every == 0 and bool(done.all()):
                break
        if n < max_new:
            if cache.group > 1 and n * cache.group > SHARED_NEW_POSITIONS:
                cache.unshare()
            logits = model(nxt[:, None], kv_cache=cache)[0][:, -1]
    model.train(was)
    result = []
    for row in out[:, :n].tolist():
        result.append(row[: row.index(stop_id) + 1] if stop_id is not None and stop_id in row else row)
    return result


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
