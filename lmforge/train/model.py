"""A compact GPT in one file: RoPE, RMSNorm, causal SDPA, ReLU² MLP, optional tied embeddings.

The whole model is a config dataclass and four modules (`Attention`, `MLP`, `Block`, `GPT`)
plus the KV cache for generation (its own file, `kv_cache.py`). Choices, and why:

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
- Plain PyTorch throughout (`F.rms_norm`, SDPA, element-wise ReLU²): on CUDA `torch.compile`
  fuses the element-wise work and SDPA runs FlashAttention. On a CPU, where eager PyTorch
  pays for every temporary, `GPT.ops` swaps in `cpu_kernels.CPU_OPS`: the same functions
  with hand-written backwards and a loss that never forms the logits (equal to these to
  float rounding; tests/test_model.py checks the whole model's loss and gradients).
- `mlp="swiglu"`, `intermediate_size` and `norm_eps` hold Llama-family models imported from Hugging
  Face (`lmforge.train.hf_import`; their RMSNorm gains are folded into the next matrix).

FLOPs per token for MFU follow the PaLM formula nanoGPT uses: 6N + 12·layers·context·width,
with N the parameters in matrix products (the output head included, the input embedding
lookup not); see `GPT.flops_per_token`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmforge.train.kv_cache import KVCache  # generation's cache (its own file: this one stays the model)
from lmforge.train.presets import PRESETS  # name -> shape (torch-free, for the CLI's --help)

VOCAB_MULTIPLE = 64
_IMPORT_FIELDS = ("mlp", "intermediate_size", "norm_eps")  # set by Llama-family imports only


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
    mlp: str = "relu2"  # or "swiglu": silu(gate) * up, fc = [gate; up] (Llama, from lmforge.train.hf_import)
    intermediate_size: int | None = None  # MLP hidden width; None: mlp_ratio * n_embd
    norm_eps: float | None = None  # RMSNorm epsilon; None: the dtype's machine epsilon

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; pick a head count that divides it")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError(f"head size {self.n_embd // self.n_head} must be even for RoPE; change n_head or n_embd")
        if self.vocab_size < 1 or self.block_size < 1 or self.n_layer < 1:
            raise ValueError("vocab_size, block_size and n_layer must be positive")
        if self.mlp not in ("relu2", "swiglu"):
            raise ValueError(f"mlp={self.mlp!r}: choose relu2 or swiglu")

    @property
    def padded_vocab_size(self) -> int:
        return -(-self.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:  # the import-only fields only when set: lmforge's own model_config is unchanged
        return {k: v for k, v in asdict(self).items() if k not in _IMPORT_FIELDS or v != getattr(GPTConfig, k)}

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


# ---- the model's functions, in plain PyTorch -------------------------------------------------
def rms_norm(x: torch.Tensor, eps: float | None = None) -> torch.Tensor:
    """Parameter-free RMSNorm over the last dimension, eps = the dtype's machine epsilon by default."""
    return F.rms_norm(x, (x.size(-1),), eps=eps)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x1[i], x2[i]) of the two halves of the head dimension. x: (B, nh, T, hs)."""
    x1, x2 = x.chunk(2, dim=-1)  # (B, nh, T, hs/2) each
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # (T, hs/2), broadcast over B, nh
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x).square()


def swiglu(x: torch.Tensor) -> torch.Tensor:
    gate, up = x.chunk(2, dim=-1)  # (B, T, 2H) -> (B, T, H) each
    return F.silu(gate) * up


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs) -> (B, nh, T, hs). On CUDA in bf16 SDPA runs FlashAttention."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


@dataclass(frozen=True)
class Ops:
    """The functions the model calls between its matrix products. `PLAIN_OPS` are the ones
    above; `cpu_kernels.CPU_OPS` compute the same with hand-written backwards, faster on a
    CPU. `linear_cross_entropy(h, W, y)`, when set, is the loss of `h @ W.T` without logits."""

    rms_norm: Callable
    rotary: Callable
    relu_squared: Callable
    attention: Callable
    linear_cross_entropy: Callable | None = None


PLAIN_OPS = Ops(rms_norm, apply_rotary, relu_squared, causal_attention)


class Attention(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x, cos, sin, ops: Ops = PLAIN_OPS, kv_cache: KVCache | None = None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, nh, T, hs)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        q, k = ops.rotary(q, cos, sin), ops.rotary(k, cos, sin)
        if kv_cache is None:
            y = ops.attention(q, k, v)
        else:
            y = kv_cache.attend(self.layer, q, k, v)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        H, self.act = config.intermediate_size or config.mlp_ratio * config.n_embd, swiglu if config.mlp == "swiglu" else None
        self.fc = nn.Linear(config.n_embd, (2 if self.act else 1) * H, bias=False)
        self.proj = nn.Linear(H, config.n_embd, bias=False)

    def forward(self, x, ops: Ops = PLAIN_OPS):
        return self.proj((self.act or ops.relu_squared)(self.fc(x)))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.attn = Attention(config, layer)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, ops: Ops = PLAIN_OPS, kv_cache=None):
        x = x + self.attn(ops.rms_norm(x), cos, sin, ops, kv_cache)
        x = x + self.mlp(ops.rms_norm(x), ops)
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
        self.kernels = "auto"  # "auto": cpu_kernels.CPU_OPS for inputs on a CPU; "plain": PLAIN_OPS everywhere
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
    def ops(self, device: torch.device) -> Ops:
        """The functions for inputs on `device`: the CPU kernels on a CPU (unless `kernels` is
        "plain"), the plain ones elsewhere, where `torch.compile` fuses them."""
        if self.config.norm_eps is not None:  # an imported model's RMSNorm epsilon
            return replace(PLAIN_OPS, rms_norm=lambda x: rms_norm(x, self.config.norm_eps))
        if device.type == "cpu" and self.kernels == "auto":
            from lmforge.train.cpu_kernels import CPU_OPS

            return CPU_OPS
        return PLAIN_OPS

    def hidden(self, idx: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        """Final RMS-normalised hidden states (B, T, C) for token ids idx (B, T)."""
        B, T = idx.shape
        start = kv_cache.pos if kv_cache is not None else 0
        if start + T > self.rope_cos.size(0):
            raise ValueError(f"sequence of {start + T} tokens is longer than this model's limit {self.rope_cos.size(0)}")
        cos, sin = self.rope_cos[start : start + T], self.rope_sin[start : start + T]  # (T, hs/2)
        ops = self.ops(idx.device)
        x = self.wte(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x, cos, sin, ops, kv_cache)
        if kv_cache is not None:
            kv_cache.advance(T)
        return ops.rms_norm(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, kv_cache: KVCache | None = None, reduction: str = "mean"):
        """Logits (B, T, V_padded) and, with targets (B, T; -1 = ignore), the cross-entropy loss.

        Where the ops have a fused `linear_cross_entropy` (the CPU kernels), a mean loss is
        computed without forming the logits, and the logits returned are None.
        """
        x = self.hidden(idx, kv_cache)  # (B, T, C)
        fused = self.ops(idx.device).linear_cross_entropy
        if targets is not None and reduction == "mean" and fused is not None:
            return None, fused(x, self.lm_head.weight, targets)
        logits = self.lm_head(x)  # (B, T, V)
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


def save_weights(model: GPT, path, metadata: dict | None = None, state: dict | None = None) -> None:
    """Write the weights (or `state`, e.g. gathered from FSDP shards) as safetensors; a tied
    head is stored once (as `wte.weight`). The file's bytes depend only on the weights (sorted
    names, no duplicates), so two runs that reach the same weights write identical files."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in (model.state_dict() if state is None else state).items()}
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
