"""CPU speed kernels for the GPT of `model.py`: the same functions, faster on a CPU.

`model.py` is the readable definition in plain PyTorch; on a CUDA device `torch.compile`
fuses its element-wise functions and SDPA runs FlashAttention, so nothing here is used there.
On a CPU eager PyTorch pays for every temporary tensor and every step of autograd's graph
(fresh pages are faulted in on each allocation), so `GPT.hidden` swaps in these versions
(`CPU_OPS`) when its input is on the CPU:

- `Rotary`, `ReluSquared`, `RMSNorm`: hand-written backwards in one or two passes instead of
  autograd's chain of small kernels;
- `BlockCausalAttention`: causal attention as batched matrix products over query blocks
  (SDPA's CPU flash kernel is ~1.5x slower at these sizes);
- `ChunkedLinearCrossEntropy`: the output head and the loss in row chunks, gradients formed in
  the forward pass, so the (tokens, vocabulary) logits never exist whole.

Each one equals its plain counterpart to float rounding (tests/test_model.py compares every
kernel and the whole model's loss and gradients on both paths). Together they make the CPU
trainer ~1.6x transformers' GPT-2 of the same shape (benchmarks/train.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


class Rotary(torch.autograd.Function):
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
    """`model.apply_rotary`, with `Rotary`'s one-pass backward. x: (B, nh, T, hs)."""
    return Rotary.apply(x, cos, sin)


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    """`model.relu_squared`, with `ReluSquared`'s two-pass backward."""
    return ReluSquared.apply(x)


class ReluSquared(torch.autograd.Function):
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


class RMSNorm(torch.autograd.Function):
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


class BlockCausalAttention(torch.autograd.Function):
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
    bf16 (see `BlockCausalAttention`), for training and evaluation alike, so that a frozen
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
            return BlockCausalAttention.apply(q, k, v, BLOCK_ATTENTION_SIZE)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    """`model.rms_norm` (parameter-free, equals `F.rms_norm(x, (C,))`) with `RMSNorm`'s backward."""
    return RMSNorm.apply(x)


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


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `h @ weight.T` against `targets` (-1: ignored) without forming the
    logits; under CPU autocast the head's products run in the autocast dtype, as nn.Linear's would."""
    lowp = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
    with torch.autocast("cpu", enabled=False):
        return ChunkedLinearCrossEntropy.apply(h.reshape(-1, h.size(-1)), weight, targets.reshape(-1), None, lowp)


def _cpu_ops():
    from lmforge.train.model import Ops

    return Ops(rms_norm=rms_norm, rotary=apply_rotary, relu_squared=relu_squared, attention=causal_attention,
               linear_cross_entropy=linear_cross_entropy)


CPU_OPS = _cpu_ops()
