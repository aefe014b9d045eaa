"""Muon for the hidden matrices, AdamW for the rest, in one `torch.optim.Optimizer`.

Muon (Keller Jordan, modded-nanogpt; also nanochat's default) replaces each 2-D block
weight's update by the nearest semi-orthogonal matrix to its Nesterov momentum, found with
five Newton–Schulz iterations in bf16; embeddings, the output head and anything not 2-D
keep AdamW. One optimizer object (groups flagged `muon=True`) so `state_dict()` /
`load_state_dict()` — and with them the checkpoint and exact resume — work unchanged.

Cost: per (m, n) matrix with m <= n, 5 x (4·m²·n + 2·m³) FLOPs a step, independent of the
batch; at `small` that is ~28 GFLOP a step in bf16 (~60 ms on a core with AVX512-BF16, ~1.5%
of the preset's 8192-token step; several times that on a CPU without bf16 instructions). Whether it pays is a question of loss at
equal tokens, not tokens/s: `lmforge train --optimizer muon` and compare `metrics.jsonl`.
Measured once (preset `tiny`, 120 steps x 4096 tokens of C4 + Wikipedia from shared/data,
4096-token BPE, seed 0, preset learning rates untuned, 1 thread each): validation loss at
491K tokens 6.10 (C4) / 6.18 (Wikipedia) with Muon against 6.55 / 6.64 with AdamW, which
Muon passed after 164K tokens; tokens/s 8,933 against 9,521 (-6%).
"""

from __future__ import annotations

import torch
from torch.optim.adamw import adamw

NS_COEFFS = (3.4445, -4.7750, 2.0315)  # modded-nanogpt's quintic iteration


def orthogonalize(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Approximately U·Vᵀ of g = U·S·Vᵀ (singular values pushed to ~[0.7, 1.2]), in bf16."""
    a, b, c = NS_COEFFS
    x = g.to(torch.bfloat16)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.t()
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        s = x @ x.t()
        x = a * x + (b * s + c * (s @ s)) @ x
    return (x.t() if tall else x).to(g.dtype)


class MuonAdamW(torch.optim.Optimizer):
    """Groups with `muon=True` (2-D matrices): lr, momentum, weight_decay. Others: AdamW's
    lr, betas, eps, weight_decay. The trainer's schedule multiplies each group's `lr_scale`."""

    def __init__(self, groups: list[dict]):
        defaults = dict(lr=0.02, momentum=0.95, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0, muon=False, lr_scale=1.0)
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if group["muon"]:
                for p in params:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    buf = state["momentum_buffer"]
                    buf.lerp_(p.grad, 1 - group["momentum"])
                    update = orthogonalize(p.grad.lerp(buf, group["momentum"]))  # Nesterov
                    scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update, alpha=-group["lr"] * scale)
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p] = {"step": torch.zeros((), dtype=torch.float32), "exp_avg": torch.zeros_like(p),
                                     "exp_avg_sq": torch.zeros_like(p)}
            st = [self.state[p] for p in params]
            beta1, beta2 = group["betas"]
            adamw(params, [p.grad for p in params], [s["exp_avg"] for s in st], [s["exp_avg_sq"] for s in st], [],
                  [s["step"] for s in st], foreach=False, amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
                  weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
        return None
