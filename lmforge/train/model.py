"""A compact GPT in one file: RoPE, RMSNorm, causal SDPA, ReLU² MLP, optional tied embeddings.

The whole model is a config dataclass and four modules (`Attention`, `MLP`, `Block`, `GPT`)
plus a KV cache for generation. Choices, and why:

- RoPE instead of learned positions: no position table, and a model extrapolates a little
  past its training context instead of failing with an index error.
- Parameter-free RMSNorm (`rms_norm`, no weight, no bias) and no biases anywhere: fewer
  tiny kernels per block, which is most of the gap to GPT-2's LayerNorm + bias layout on CPU.
- ReLU² in the MLP (modded-nanogpt, nanochat): as good as GELU at this scale, and cheaper.
- The vocabulary is padded to a multiple of 64 so the output head's matrix product runs at
  full speed on tensor cores (50257 -> 50304 costs 0.1% more head FLOPs and is ~25% faster
  on an A100 in nanoGPT's measurements). Padded ids are never targets.
- `GPT.hidden(idx)` returns the final normalised hidden states (B, T, C) so the alignment
  stages can put a value or reward head on top without touching this file.

FLOPs per token for MFU follow the PaLM formula nanoGPT uses: 6N + 12·layers·context·width,
with N the parameters in matrix products (the output head included, the input embedding
lookup not); see `GPT.flops_per_token`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmforge.train.presets import PRESETS  # name -> shape (torch-free, for the CLI's --help)

VOCAB_MULTIPLE = 64


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a GPT. `vocab_size` is the tokenizer's; the embedding is padded (see above)."""

    vocab_size: int = 50257
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 1024  # training context length, in tokens
    tie_embeddings: bool = False  # share the input embedding with the output head
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * n_embd
    rope_theta: float = 10000.0

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; pick a head count that divides it")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError(f"head size {self.n_embd // self.n_head} must be even for RoPE; change n_head or n_embd")
        if self.vocab_size < 1 or self.block_size < 1 or self.n_layer < 1:
            raise ValueError("vocab_size, block_size and n_layer must be positive")

    @property
    def padded_vocab_size(self) -> int:
        return -(-self.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def preset_config(name: str, vocab_size: int, **overrides) -> GPTConfig:
    """The `GPTConfig` of a named preset for a tokenizer with `vocab_size` ids."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return GPTConfig(vocab_size=vocab_size, **{**PRESETS[name], **overrides})


def rotary_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of RoPE's angles, each (length, head_dim // 2), in float32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)  # (T, hs/2)
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(x1·cos - x2·sin, x1·sin + x2·cos), written into one new tensor with `out=` and
    `addcmul_`: four passes and one allocation instead of six temporaries and a `cat`
    (0.3 ms against 3.8 ms for q at `small`, B = 8, on one CPU core)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # (T, hs/2), broadcast over B, nh
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # contiguous (B, nh, T, hs)
    o1, o2 = out.chunk(2, dim=-1)
    torch.mul(x1, cos, out=o1).addcmul_(x2, sin, value=-1)
    torch.mul(x1, sin, out=o2).addcmul_(x2, cos)
    return out


class _Rotary(torch.autograd.Function):
    """RoPE with the inverse rotation as its backward (a rotation's adjoint is its inverse):
    one pass like the forward, instead of autograd's trail of mul/sub/cat/chunk backwards."""

    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return _rotate(x, cos, sin)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        return _rotate(grad, cos, -sin), None, None


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x1[i], x2[i]) of the two halves of the head dimension. x: (B, nh, T, hs)."""
    return _Rotary.apply(x, cos, sin)


class _ReluSquared(torch.autograd.Function):
    """relu(x)², backward 2·relu(x)·grad: two element-wise passes instead of autograd's
    pow-backward and threshold-backward (~5% of a CPU step at width 256). The backward
    scales its one new tensor in place (a fresh (B, T, 4C) tensor costs ~3x an in-place
    pass on CPU, where its pages fault in anew)."""

    @staticmethod
    def forward(ctx, x):
        r = F.relu(x)
        ctx.save_for_backward(r)
        return r * r

    @staticmethod
    def backward(ctx, grad):
        (r,) = ctx.saved_tensors
        return (grad * r).mul_(2.0)


class _RMSNorm(torch.autograd.Function):
    """x / sqrt(mean(x²) + eps) over the last dimension, eps = the dtype's machine epsilon
    (as `F.rms_norm` with no weight). Its backward is one formula, rstd·(g - y·mean(g·y)),
    instead of autograd's walk back through pow, mean, add, rsqrt and mul: 1.3 ms against
    2.5-3.2 ms per norm (fwd + bwd) at `small`, B = 8, on one CPU core; 13 norms a step."""

    @staticmethod
    def forward(ctx, x):
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True).add_(torch.finfo(x.dtype).eps))  # (..., 1)
        y = x * rstd
        ctx.save_for_backward(y, rstd)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, rstd = ctx.saved_tensors
        dot = (grad * y).mean(-1, keepdim=True)
        return (grad - y * dot).mul_(rstd)


class _BlockCausalAttention(torch.autograd.Function):
    """Causal attention for CPU training, as batched matrix products over blocks of queries.

    Query block [s, e) attends to keys [0, e) only, so the products skip the masked upper
    triangle except within the diagonal tile (10 of 16 tiles at T = 256 with blocks of 64),
    and each runs as one `bmm` over batch x heads at the BLAS's full speed. The probabilities
    of each block are kept for the backward (about B·nh·T²/2 of them, 5 MB a layer at `small`
    in float32), where the FlashAttention backward recomputes them. On one CPU core at `small`
    (B = 8, 4 heads, T = 256, head 64) forward + backward take ~14 ms against ~21 ms for
    SDPA's CPU flash kernel in float32 (~36 against ~61 ms at T = 512), and ~12 against
    ~22 ms in bf16. Without gradients (evaluation) nothing is kept.

    In bf16 (under autocast) the products run in bf16 and the softmax and its backward in
    float32, with dK and dV summed over blocks in float32: the precision of an eager
    attention under autocast (relative error ~0.4% against float64, SDPA's ~0.3%). In
    float32 the results equal SDPA's to rounding (tests/test_model.py).
    """

    @staticmethod
    def forward(ctx, q, k, v, block: int):
        B, H, T, D = q.shape
        lowp = q.dtype in (torch.bfloat16, torch.float16)  # softmax and sums in float32
        scale = D ** -0.5
        q3 = q.reshape(B * H, T, D) * scale  # scaled once, so no product needs alpha
        k3, v3 = k.reshape(B * H, T, D), v.reshape(B * H, T, D)
        out = torch.empty_like(q3)
        tri = torch.full((block, block), float("-inf"), device=q.device).triu_(1)
        probs = []
        for s in range(0, T, block):
            e = min(s + block, T)
            scores = torch.bmm(q3[:, s:e], k3[:, :e].transpose(1, 2))  # (BH, n, e)
            if lowp:
                scores = scores.float()
            scores[:, :, s:e] += tri[: e - s, : e - s]  # causal within the diagonal tile
            p = torch.softmax(scores, dim=-1).to(q.dtype)
            torch.bmm(p, v3[:, :e], out=out[:, s:e])
            probs.append(p)
        ctx.block, ctx.scale, ctx.lowp = block, scale, lowp
        ctx.save_for_backward(q3, k3, v3, out, *probs)
        return out.view(B, H, T, D)

    @staticmethod
    def backward(ctx, grad):
        q3, k3, v3, out, *probs = ctx.saved_tensors
        BH, T, D = q3.shape
        dtype, block = q3.dtype, ctx.block
        g3 = grad.reshape(BH, T, D).to(dtype)
        dq = torch.empty_like(q3)
        if not ctx.lowp:
            delta = (g3 * out).sum(-1, keepdim=True)  # rowsum(dO·O) = rowsum(dP·P), (BH, T, 1)
            dk, dv = torch.zeros_like(k3), torch.zeros_like(v3)
            buf = q3.new_empty(BH * min(block, T) * T)  # dP of one block, reused
            for i, s in enumerate(range(0, T, block)):
                e = min(s + block, T)
                p, gi = probs[i], g3[:, s:e]
                dv[:, :e].baddbmm_(p.transpose(1, 2), gi)
                dp = torch.bmm(gi, v3[:, :e].transpose(1, 2), out=buf[: BH * (e - s) * e].view(BH, e - s, e))
                ds = dp.sub_(delta[:, s:e]).mul_(p)  # softmax backward, in place
                torch.bmm(ds, k3[:, :e], out=dq[:, s:e])
                dk[:, :e].baddbmm_(ds.transpose(1, 2), q3[:, s:e])  # q3 carries the scale already
        else:  # products in bf16; softmax backward and the sums over blocks in float32
            # (every in-place op keeps one dtype: float32 += bf16 takes a ~7x slower path)
            delta = (g3.float() * out.float()).sum(-1, keepdim=True)
            dk = torch.zeros(k3.shape, dtype=torch.float32, device=k3.device)
            dv = torch.zeros(v3.shape, dtype=torch.float32, device=v3.device)
            for i, s in enumerate(range(0, T, block)):
                e = min(s + block, T)
                p, gi = probs[i], g3[:, s:e]
                dv[:, :e] += torch.bmm(p.transpose(1, 2), gi).float()
                ds = torch.bmm(gi, v3[:, :e].transpose(1, 2)).float().sub_(delta[:, s:e]).mul_(p.float()).to(dtype)
                torch.bmm(ds, k3[:, :e], out=dq[:, s:e])
                dk[:, :e] += torch.bmm(ds.transpose(1, 2), q3[:, s:e]).float()
            dk, dv = dk.to(dtype), dv.to(dtype)
        dq.mul_(ctx.scale)
        shape = grad.shape
        return dq.view(shape), dk.view(shape), dv.view(shape), None


BLOCK_ATTENTION_MAX_T = 512  # the kept probabilities grow as T²: ~107 MB a layer at d12 width, B = 8, T = 1024 in float32
BLOCK_ATTENTION_SIZE = 64  # query rows per block: the fastest of 16/32/64/128 at T = 128-512


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal self-attention of (B, nh, T, hs) tensors: the blocked path on CPU in float32 or
    bf16 (see `_BlockCausalAttention`), for training and evaluation alike, so that a frozen
    reference and its trainable copy compute the same numbers (DPO's loss starts at exactly
    log 2); SDPA otherwise (CUDA, contexts over `BLOCK_ATTENTION_MAX_T`; generation with a KV
    cache does not come here)."""
    if (
        q.device.type == "cpu"
        and q.dtype in (torch.float32, torch.bfloat16)
        and q.dtype == k.dtype == v.dtype
        and q.size(2) <= BLOCK_ATTENTION_MAX_T
    ):
        with torch.autocast("cpu", enabled=False):  # the function picks its own dtypes
            return _BlockCausalAttention.apply(q, k, v, BLOCK_ATTENTION_SIZE)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    """Parameter-free RMSNorm over the last dimension (equals `F.rms_norm(x, (C,))`)."""
    return _RMSNorm.apply(x)


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Cross-entropy of `h @ W.T` computed in row chunks, gradients formed in the forward pass.

    The plain path writes the (N, V) logits, reads them for log-softmax, writes the log-probs,
    and does the same twice more backwards: on a CPU with a 8192-token vocabulary and 1024
    tokens that is ~32 MB per pass, out of cache, and ~20% of a `tiny` step. Here each chunk
    of 256 rows (8 MB at V = 8192; see `forward` for larger vocabularies) goes into one reused
    buffer: logits -> exp(logits - max) in place -> (softmax - onehot) / n in place, and
    straight into the two gradient products (written with `out=`), so nothing (N, V)-sized
    is ever kept and no chunk allocates fresh memory (a fresh 8 MB tensor costs ~3x an
    in-place pass on CPU: the pages are faulted in again each time). Liger's fused linear
    cross-entropy, in plain PyTorch. FLOPs are the same; the win is memory traffic: at
    `small` (N = 2048, C = 256, V = 8192, 1 thread) ~285 ms against ~320 ms for the earlier
    version of this class (logsumexp + gather + exp again), the matrix products alone ~258 ms.
    The result equals `F.cross_entropy(h @ W.T, y, ignore_index=-1)` to float error.
    """

    @staticmethod
    def forward(ctx, h, weight, targets, chunk_rows: int | None = None, matmul_dtype: torch.dtype | None = None):
        # Each chunk also rewrites the whole (V, C) weight gradient, so a bigger vocabulary
        # wants fewer, taller chunks: 256 rows was fastest at V = 8192, 1024 at V = 32768.
        chunk_rows = chunk_rows or min(4096, max(256, weight.size(0) // 32))
        if matmul_dtype is not None and matmul_dtype != h.dtype:
            return ChunkedLinearCrossEntropy._forward_lowp(ctx, h, weight, targets, chunk_rows, matmul_dtype)
        N, V = h.size(0), weight.size(0)
        valid = targets != -1
        n_valid = int(valid.sum())
        scale = 1.0 / max(n_valid, 1)
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_h = torch.empty_like(h) if need_grad else None
        grad_w = torch.empty_like(weight) if need_grad else None
        buf = h.new_empty((min(chunk_rows, N), V))  # the logits of one chunk, reused
        rows = torch.arange(buf.size(0), device=h.device)
        acc = torch.promote_types(h.dtype, torch.float32)
        total = h.new_zeros((), dtype=acc)
        for i in range(0, N, chunk_rows):
            hi, yi, vi = h[i : i + chunk_rows], targets[i : i + chunk_rows], valid[i : i + chunk_rows]
            n = hi.size(0)
            e = torch.mm(hi, weight.t(), out=buf[:n])  # (n, V) logits
            safe_y = yi.clamp_min(0)
            picked = e.gather(1, safe_y[:, None])  # (n, 1) logit of the target
            peak = e.amax(dim=1, keepdim=True)
            e.sub_(peak).exp_()  # exp(logit - max), in place
            denom = e.sum(dim=1, keepdim=True)  # (n, 1)
            nll = peak + denom.log() - picked  # logsumexp - logit_y
            total += (nll.squeeze(1).to(acc) * vi).sum()
            if need_grad:
                w_rows = vi.to(h.dtype) * scale  # mean over valid targets; ignored rows -> 0
                e.mul_(w_rows[:, None] / denom)  # softmax / n_valid
                e[rows[:n], safe_y] -= w_rows  # minus the one-hot
                torch.mm(e, weight, out=grad_h[i : i + n])
                if i == 0:
                    torch.mm(e.t(), hi, out=grad_w)
                else:
                    grad_w.addmm_(e.t(), hi)
        ctx.save_for_backward(grad_h, grad_w)
        return total * scale

    @staticmethod
    def _forward_lowp(ctx, h, weight, targets, chunk_rows: int, dtype: torch.dtype):
        """Under bf16 autocast: the three products in `dtype`, as autocast would run the head,
        softmax and loss in float32 (as `F.cross_entropy(logits.float())` does), the weight
        gradient summed over chunks in float32, gradients returned in the inputs' dtypes."""
        N, V = h.size(0), weight.size(0)
        valid = targets != -1
        scale = 1.0 / max(int(valid.sum()), 1)
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        hl, wl = h.to(dtype), weight.to(dtype)
        grad_h = torch.empty_like(h) if need_grad else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_grad else None
        rows_max = min(chunk_rows, N)
        buf = h.new_empty((rows_max, V), dtype=torch.float32)
        # reused low-precision buffers: logits / softmax gradient, a chunk of grad_h, grad_w's share
        lbuf = h.new_empty((rows_max, V), dtype=dtype)
        hbuf = h.new_empty((rows_max, h.size(1)), dtype=dtype)
        wbuf = torch.empty(weight.shape, dtype=dtype, device=weight.device) if need_grad else None
        rows = torch.arange(rows_max, device=h.device)
        total = h.new_zeros((), dtype=torch.float32)
        for i in range(0, N, chunk_rows):
            hi, yi, vi = hl[i : i + chunk_rows], targets[i : i + chunk_rows], valid[i : i + chunk_rows]
            n = hi.size(0)
            e = buf[:n].copy_(torch.mm(hi, wl.t(), out=lbuf[:n]))  # (n, V) logits, rounded to `dtype` like autocast's
            safe_y = yi.clamp_min(0)
            picked = e.gather(1, safe_y[:, None])
            peak = e.amax(dim=1, keepdim=True)
            e.sub_(peak).exp_()
            denom = e.sum(dim=1, keepdim=True)
            total += ((peak + denom.log() - picked).squeeze(1) * vi).sum()
            if need_grad:
                w_rows = vi.to(e.dtype) * scale
                e.mul_(w_rows[:, None] / denom)
                e[rows[:n], safe_y] -= w_rows
                el = lbuf[:n].copy_(e)
                grad_h[i : i + n] = torch.mm(el, wl, out=hbuf[:n])
                grad_w += torch.mm(el.t(), hi, out=wbuf).float()  # (float32 += bf16 in place takes a ~7x slower path)
        ctx.save_for_backward(grad_h, grad_w.to(weight.dtype) if need_grad else None)
        return total * scale

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        if grad_h is None or bool(grad_out == 1):  # the usual case: no copy
            return grad_h, grad_w, None, None, None
        return grad_h * grad_out, grad_w * grad_out, None, None, None


class KVCache:
    """Keys and values of every layer for generation: (n_layer, B, nh, max_len, hs) each.

    `pos` is the number of positions already filled; the model advances it after a forward
    pass, so one cache follows one sequence batch from prompt to last token.
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int, device=None, dtype=torch.float32):
        shape = (config.n_layer, batch_size, config.n_head, max_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.pos = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) at the current position; return all keys and values so far."""
        end = self.pos + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions needed, {self.max_len} allocated")
        self.k[layer, :, :, self.pos : end] = k
        self.v[layer, :, :, self.pos : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class Attention(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x, cos, sin, kv_cache: KVCache | None = None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, nh, T, hs)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if kv_cache is None:
            y = causal_attention(q, k, v)
        else:
            past = kv_cache.pos
            k, v = kv_cache.update(self.layer, k, v)  # (B, nh, past + T, hs)
            if T == 1:  # one new token attends to everything before it
                y = F.scaled_dot_product_attention(q, k, v)
            else:  # a chunk after a prefix: causal within the chunk, full to the prefix
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.mlp_ratio * config.n_embd, bias=False)
        self.proj = nn.Linear(config.mlp_ratio * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.proj(_ReluSquared.apply(self.fc(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.attn = Attention(config, layer)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, kv_cache=None):
        x = x + self.attn(rms_norm(x), cos, sin, kv_cache)
        x = x + self.mlp(rms_norm(x))
        return x


class GPT(nn.Module):
    """The language model. `forward(idx, targets)` -> (logits, loss); `hidden(idx)` -> states.

    >>> model = GPT(preset_config("tiny", vocab_size=1000))
    >>> logits, loss = model(torch.zeros(2, 16, dtype=torch.long), torch.zeros(2, 16, dtype=torch.long))
    >>> logits.shape   # padded vocabulary: 1000 -> 1024
    torch.Size([2, 16, 1024])
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        V, C = config.padded_vocab_size, config.n_embd
        self.wte = nn.Embedding(V, C)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.lm_head = nn.Linear(C, V, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        # RoPE tables cover twice the training context so generation can run a little past it.
        cos, sin = rotary_tables(config.head_dim, 2 * config.block_size, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.fused_loss = True  # chunked linear + cross-entropy on CPU (see ChunkedLinearCrossEntropy)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2·layers)."""
        std = 0.02
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer))
            else:
                nn.init.normal_(p, mean=0.0, std=std)

    # ---- forward -----------------------------------------------------------------------------
    def hidden(self, idx: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        """Final RMS-normalised hidden states (B, T, C) for token ids idx (B, T)."""
        B, T = idx.shape
        start = kv_cache.pos if kv_cache is not None else 0
        if start + T > self.rope_cos.size(0):
            raise ValueError(f"sequence of {start + T} tokens is longer than this model's limit {self.rope_cos.size(0)}")
        cos, sin = self.rope_cos[start : start + T], self.rope_sin[start : start + T]  # (T, hs/2)
        x = self.wte(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x, cos, sin, kv_cache)
        if kv_cache is not None:
            kv_cache.pos += T
        return rms_norm(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, kv_cache: KVCache | None = None, reduction: str = "mean"):
        """Logits (B, T, V_padded) and, with targets (B, T; -1 = ignore), the cross-entropy loss.

        On CPU, with targets and the mean reduction, the loss goes through
        `ChunkedLinearCrossEntropy` and the logits returned are None (they are never formed
        whole); `fused_loss = False` on the model turns that off.
        """
        x = self.hidden(idx, kv_cache)
        if targets is not None and reduction == "mean" and self.fused_loss and x.device.type == "cpu":
            # under CPU autocast the head's products run in the autocast dtype, as nn.Linear's would
            lowp = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
            with torch.autocast("cpu", enabled=False):
                loss = ChunkedLinearCrossEntropy.apply(x.reshape(-1, x.size(-1)), self.lm_head.weight, targets.reshape(-1), None, lowp)
            return None, loss
        logits = self.lm_head(x)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1, reduction=reduction)
        return logits, loss

    # ---- accounting --------------------------------------------------------------------------
    def num_params(self, embedding: bool = True) -> int:
        """Parameters, counted once; without the input embedding if `embedding` is False."""
        n = sum(p.numel() for p in self.parameters())
        if not embedding and not self.config.tie_embeddings:
            n -= self.wte.weight.numel()
        return n

    def flops_per_token(self, context: int | None = None) -> int:
        """Training FLOPs per token, 6N + 12·L·T·C (N: matrix-product params incl. the head)."""
        c = self.config
        T = context or c.block_size
        n_matmul = sum(p.numel() for n, p in self.named_parameters() if n.startswith("blocks.")) + self.lm_head.weight.numel()
        return 6 * n_matmul + 12 * c.n_layer * T * c.n_embd

    def optimizer(self, lr: float, weight_decay: float = 0.1, betas=(0.9, 0.95), fused: bool | None = None) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices only; fused kernels where the device has them."""
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
        if fused is None:
            fused = params[0].device.type in ("cuda", "cpu")
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, fused=fused)


def save_weights(model: GPT, path, metadata: dict | None = None) -> None:
    """Write the weights as safetensors; a tied head is stored once (as `wte.weight`).

    The file's bytes depend only on the weights (sorted names, no duplicates), so two runs
    that reach the same weights write identical files.
    """
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(path), metadata={"format": "pt", **(metadata or {})})


def load_weights(model: GPT, path, device: str | torch.device = "cpu") -> GPT:
    """Read weights written by `save_weights` into `model` (strict: every name must match)."""
    from safetensors.torch import load_file

    state = load_file(str(path), device=str(device))
    if model.config.tie_embeddings and "lm_head.weight" not in state:
        state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state, strict=True)
    return model
