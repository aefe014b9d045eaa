"""The KV cache of generation: every layer's keys and values, written in place as tokens come.

`GPT.hidden(idx, kv_cache=...)` runs a prefill (the prompts, T positions) or a decode step
(one new token per row) against it; `Attention` calls `KVCache.attend`, which stores the new
keys and values and returns the attention over every real cached position. Left-padded
prompts, and several samples sharing one prompt's keys (`share`), are handled here so that
model.py stays the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from lmforge.train.model import GPTConfig


class KVCache:
    """Keys and values of every layer for generation: (n_layer, B, nh, max_len, hs) each.

    `pos` is the number of positions each sequence has so far (the next token's RoPE position);
    the model advances it after a forward pass, so one cache follows one sequence batch from
    prompt to last token. Prompts of different lengths go in left-padded: `valid` (B, max_len)
    marks the real positions, and no query attends to a pad (RoPE scores depend on relative
    positions only, so a row's shift changes nothing).

    Several samples of one prompt share its keys and values: after the prompts' prefill,
    `share(G)` turns each cached prompt into a group of G rows (rows g*G .. g*G+G-1 of the next
    forward pass). The prompt's positions stay stored once; the rows' new positions go after
    them, interleaved (position t of row r of a group at `prompt_len + t*G + r`), and a mask lets
    each row see the prompt and its own tokens only. Attention then runs one (G, hs) x (hs, L)
    product per group and head instead of G products of one query each, and reads the prompt's
    keys once per group instead of once per row (at `small`, 8 prompts x 8 samples on one CPU
    core, attention over the cache fell from ~14 ms to ~7 ms a step, averaged over 32 new tokens).
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int, device=None, dtype=torch.float32,
                 valid: torch.Tensor | None = None):
        shape = (config.n_layer, batch_size, config.n_head, max_len, config.head_dim)
        self.k = torch.empty(shape, device=device, dtype=dtype)  # a position is read only once written
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.pos = 0
        self.filled = 0  # positions of the cache written (pos, or prompt + G * new tokens once shared)
        self.group = 1  # rows per cached sequence (see `share`)
        self.prompt_len = 0  # positions of the shared prompts (set by `share`)
        self.valid = valid  # (B, max_len) bool, or None: every position is real
        self._mask = None

    def share(self, group: int) -> None:
        """From now on each cached sequence is the prompt of `group` rows (see the class docstring)."""
        if self.group != 1 or self.filled == 0:
            raise ValueError("share() is called once, after the prompts' prefill")
        self.group, self.prompt_len, self._mask = group, self.filled, None

    def unshare(self) -> None:
        """Back to one cached sequence per row: each row gets a copy of its prompt's positions and
        its own new ones in order (`generate_batch` calls this once the new positions make the
        shared layout's attention dearer than the per-row one; see `sample.SHARED_NEW_POSITIONS`)."""
        if self.group == 1:
            return
        nl, P, nh, _, hs = self.k.shape
        G, L0, n = self.group, self.prompt_len, self.pos - self.prompt_len
        max_len = L0 + (self.max_len - L0) // G
        valid = None
        if self.valid is not None:
            valid = torch.ones(P * G, max_len, dtype=torch.bool, device=self.k.device)
            valid[:, :L0] = self.valid[:, :L0].repeat_interleave(G, dim=0)
        k, v = (torch.empty(nl, P * G, nh, max_len, hs, device=self.k.device, dtype=self.k.dtype) for _ in range(2))
        for new, old in ((k, self.k), (v, self.v)):
            new[:, :, :, :L0] = old[:, :, :, :L0].repeat_interleave(G, dim=1)
            rows = old[:, :, :, L0 : L0 + n * G].reshape(nl, P, nh, n, G, hs).permute(0, 1, 4, 2, 3, 5)  # (nl, P, G, nh, n, hs)
            new[:, :, :, L0 : L0 + n] = rows.reshape(nl, P * G, nh, n, hs)
        self.k, self.v, self.valid, self.max_len = k, v, valid, max_len
        self.group, self.filled, self._mask = 1, L0 + n, None

    def advance(self, T: int) -> None:
        """Count T new positions of every row as written (the model calls this after a forward pass)."""
        self.pos += T
        self.filled += T * self.group

    def mask(self, past: int, T: int, device) -> torch.Tensor | None:
        """Boolean attention mask of T new queries over past + T keys: causal within the new
        chunk, all of the prefix, never a pad (a pad query sees itself, so no row is empty)."""
        if self.valid is None and T == 1:
            return None
        if self._mask is not None and self._mask[0] == (past, T):  # built once per forward, used by every layer
            return self._mask[1]
        mask = torch.ones(T, past + T, dtype=torch.bool, device=device).tril(diagonal=past)  # (T, past + T)
        if self.valid is not None:
            own = torch.arange(past + T, device=device)[None, :] == torch.arange(past, past + T, device=device)[:, None]
            mask = mask & (self.valid[:, None, None, : past + T] | own)  # (B, 1, T, past + T)
        self._mask = ((past, T), mask)
        return mask

    def _group_mask(self, end: int, device) -> torch.Tensor:
        """(P, 1, G, end) bool for shared prompts: the prompt's real positions, then among the new
        positions only the query row's own (row r of a group owns every G-th one from `prompt_len + r`)."""
        if self._mask is not None and self._mask[0] == end:  # built once per forward, used by every layer
            return self._mask[1]
        P, G, L0 = self.k.size(1), self.group, self.prompt_len
        prompt = self.valid[:, :L0] if self.valid is not None else torch.ones(P, L0, dtype=torch.bool, device=device)
        own = torch.arange(end - L0, device=device)[None, :] % G == torch.arange(G, device=device)[:, None]  # (G, end - L0)
        mask = torch.cat([prompt[:, None, :].expand(P, G, L0), own.expand(P, G, end - L0)], dim=-1)[:, None]
        self._mask = (end, mask)
        return mask

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Store the new k, v (B, nh, T, hs) and return the attention of q (B, nh, T, hs) over
        every real position so far (B, nh, T, hs)."""
        B, nh, T, hs = q.shape
        if self.group == 1:
            past = self.filled
            k, v = self.update(layer, k, v)  # (B, nh, past + T, hs)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask(past, T, q.device))
        if T != 1:
            raise ValueError("rows that share a prompt take one token per forward pass")
        P, G = B // self.group, self.group
        start, end = self.filled, self.filled + G
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions needed, {self.max_len} allocated")
        self.k[layer, :, :, start:end] = k.reshape(P, G, nh, hs).transpose(1, 2)  # a group's rows side by side
        self.v[layer, :, :, start:end] = v.reshape(P, G, nh, hs).transpose(1, 2)
        y = F.scaled_dot_product_attention(q.reshape(P, G, nh, hs).transpose(1, 2), self.k[layer, :, :, :end],
                                           self.v[layer, :, :, :end], attn_mask=self._group_mask(end, q.device))  # (P, nh, G, hs)
        return y.transpose(1, 2).reshape(B, nh, 1, hs)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) at the current position; return all keys and values so far."""
        start = self.filled
        end = start + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions needed, {self.max_len} allocated")
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]
