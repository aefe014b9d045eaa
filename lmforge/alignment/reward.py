"""Reward model: a GPT with a scalar head read at the last real token, trained Bradley–Terry.

`RewardModel(gpt)` puts `Linear(n_embd, 1)` on `GPT.hidden()`; the score of a sequence is the
head's output at its last non-pad position (sequences are right-padded, and the model is
causal, so padding never changes a score). Training minimises `-logsigmoid(r_chosen -
r_rejected)` over preference pairs (InstructGPT's loss with K = 2) and reports pairwise
accuracy, the share of held-out pairs whose chosen answer scores higher, on a split made
from the seed before training. Chance is 0.5.

This module also holds what the three preference stages (reward model, DPO, RL) share:

- `load_base(run)`: a pretrained or SFT checkpoint (`lmforge.train.trainer.load_model`) and
  its tokenizer, with errors as `AlignmentError` naming the fix.
- `encode_pair()`: prompt + response tokens with the response mask from `chat.render`,
  truncated to the model's context: the prompt from the left (its BOS kept), the response
  from the right, so chosen and rejected keep the same prompt tokens.
- `save_checkpoint()`: `RUN/checkpoints/step_N/{model.safetensors, optimizer.pt,
  state.json}` written under a temporary name and renamed, as `lmforge train` does. Policy
  checkpoints (DPO, RL) keep the GPT's own tensor names, so `load_model`, `lmforge sample`
  and the next stage read them as they read a pretraining run; a reward model adds
  `reward_head.weight` / `reward_head.bias`.
- `batch_order()`: the examples of step s are a function of (seed, s) alone, so a resumed run
  sees exactly the batches an uninterrupted run would.
- `prior_run()` / `start_run()`: the run folder's `settings.json` (`lmforge.settings`): the
  same command again resumes (or, finished, does nothing); other settings are refused by name.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmforge.alignment.data import data_digest
from lmforge.errors import UserError
from lmforge.train.metrics import MetricsLog
from lmforge.train.model import GPT, GPTConfig
from lmforge.train.trainer import (
    CHECKPOINTS,
    METRICS,
    MODEL_FILE,
    OPTIMIZER_FILE,
    REWARD_MODEL_KIND,
    STATE_FILE,
    TrainingError,
    _fsync_dir,
    autocast_context,
    checkpoint_dirs,
    checkpoint_of,
    latest_checkpoint,
    load_model,
    newest_good_checkpoint,
    read_metrics,
    read_state,
    resolve_precision,
    resumed_precision,
    seal_checkpoint,
    truncate_metrics,
    verify_checkpoint,
)

REWARD_KIND = REWARD_MODEL_KIND
#: where the reward head reads the backbone (`RewardModel`, `align rm --pool`)
POOLS = ("last", "mean")


class AlignmentError(UserError):
    """A preference or RL run that cannot start or go on; the message says what to do."""


# ---- loading a base run --------------------------------------------------------------------
def load_tokenizer(state: dict, run, tokenizer_dir: str | None = None):
    """The tokenizer a checkpoint was trained with (or `tokenizer_dir`), fingerprint checked."""
    from lmforge.tokenize import Tokenizer, TokenizerError

    tok_dir = tokenizer_dir or state.get("tokenizer_dir")
    if not tok_dir:
        raise AlignmentError(f"{run}: the checkpoint names no tokenizer; pass --tokenizer DIR")
    try:
        tok = Tokenizer.load(tok_dir)
    except (TokenizerError, OSError) as exc:
        raise AlignmentError(f"{tok_dir}: cannot load the tokenizer: {exc}") from None
    if state.get("tokenizer_fingerprint") and tok.fingerprint != state["tokenizer_fingerprint"]:
        raise AlignmentError(f"{tok_dir}: not the tokenizer {run} was trained with (fingerprint differs)")
    return tok


def load_base(run, device="cpu", tokenizer_dir: str | None = None, purpose: str = "this stage"):
    """(GPT, state.json, Tokenizer) of the newest checkpoint of `run` (or a step_N folder); a
    reward-model run is refused by name (`purpose`: the flag that needed a language model)."""
    if not Path(run).exists():
        raise AlignmentError(f"{run}: no such run; train one with `lmforge train` or `lmforge align sft`")
    try:
        model, state = load_model(run, device, purpose=purpose)
    except TrainingError as exc:
        raise AlignmentError(str(exc)) from None
    except AlignmentError:
        raise
    except Exception as exc:  # a damaged or foreign weights file
        raise AlignmentError(f"{run}: cannot load its weights as a GPT ({type(exc).__name__}: {exc})") from None
    return model, state, load_tokenizer(state, run, tokenizer_dir)


def context_limit(model: GPT) -> int:
    """Longest sequence the preference stages feed a model: its training context."""
    return model.config.block_size


# ---- tokenising pairs ----------------------------------------------------------------------
@dataclass
class Encoded:
    """One prompt + response: ids (prompt then response) and the 0/1 loss mask over them."""

    ids: list[int]
    mask: list[int]


def encode_response(prompt: list[dict], response: str, tok, max_len: int, max_prompt: int | None = None) -> Encoded:
    """`render(prompt + [assistant: response])`, truncated to `max_len` tokens (see module doc)."""
    from lmforge.alignment.chat import render, render_prompt

    conv = list(prompt) + [{"role": "assistant", "content": response}]
    ids, mask = render(conv, tok)
    ids, mask = list(ids), list(mask)
    head = list(render_prompt(list(prompt), tok))
    if ids[: len(head)] != head:
        raise AlignmentError("chat.render and chat.render_prompt disagree on the prompt's tokens")
    max_prompt = max_prompt if max_prompt is not None else max_len // 2
    p_ids, p_mask = ids[: len(head)], mask[: len(head)]
    r_ids, r_mask = ids[len(head):], mask[len(head):]
    if len(p_ids) > max_prompt:  # keep BOS and the end of the prompt (the latest turns)
        p_ids = p_ids[:1] + p_ids[len(p_ids) - max_prompt + 1:]
        p_mask = p_mask[:1] + p_mask[len(p_mask) - max_prompt + 1:]
    room = max_len - len(p_ids)
    r_ids, r_mask = r_ids[:room], r_mask[:room]
    if not any(r_mask):
        raise AlignmentError("no response tokens left after truncation")
    return Encoded(p_ids + r_ids, p_mask + r_mask)


def encode_pair(pair, tok, max_len: int, max_prompt: int | None = None) -> tuple[Encoded, Encoded]:
    """(chosen, rejected) of a `PreferencePair`, both truncated the same way."""
    return (encode_response(pair.prompt, pair.chosen, tok, max_len, max_prompt),
            encode_response(pair.prompt, pair.rejected, tok, max_len, max_prompt))


def encode_pairs(pairs: Iterable, tok, max_len: int, max_prompt: int | None = None) -> tuple[list[tuple[Encoded, Encoded]], dict[str, int]]:
    """Encode every pair; pairs that cannot be encoded are counted by reason and skipped."""
    from lmforge.alignment.chat import ChatFormatError

    out, skipped = [], {}
    for pair in pairs:
        try:
            c, r = encode_pair(pair, tok, max_len, max_prompt)
        except (ChatFormatError, AlignmentError) as exc:
            reason = str(exc).split(":")[0][:60]
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        if c.ids == r.ids:
            skipped["chosen equals rejected"] = skipped.get("chosen equals rejected", 0) + 1
            continue
        out.append((c, r))
    return out, skipped


def read_pairs(path, tok, max_len: int, max_prompt: int | None = None):
    """Load and encode a preference file; a missing or empty file is an `AlignmentError`."""
    from lmforge.alignment.chat import ChatFormatError
    from lmforge.alignment.data import load_preferences

    if not Path(path).exists():
        raise AlignmentError(f"{path}: no such preference file")
    try:
        pairs, skipped = encode_pairs(load_preferences(path), tok, max_len, max_prompt)
    except (ValueError, ChatFormatError, OSError) as exc:
        raise AlignmentError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    if not pairs:
        raise AlignmentError(f"{path}: no usable preference pairs (skipped: {skipped or 'none found'})")
    return pairs, skipped


def format_skipped(skipped: dict[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in skipped.items()) if skipped else "0"


def pad(seqs: list[list[int]], pad_id: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to (B, T); also the lengths (B,). Causal attention never looks at the pads."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids.to(device), torch.tensor([len(s) for s in seqs], device=device)


def pad_masks(masks: list[list[int]], T: int, device="cpu") -> torch.Tensor:
    out = torch.zeros(len(masks), T)
    for i, m in enumerate(masks):
        out[i, : len(m)] = torch.tensor(m, dtype=torch.float32)
    return out.to(device)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) indices: a seeded shuffle, the last `val_fraction` held out (>= 1)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = min(n - 1, max(1, round(n * val_fraction))) if val_fraction > 0 and n > 1 else 0
    return order[: n - n_val], order[n - n_val:]


def batch_order(step: int, batch: int, items: list[int], seed: int) -> list[int]:
    """Indices for optimizer step `step` (0-based): epochs of seeded shuffles, no state kept."""
    n = len(items)
    out = []
    for k in range(step * batch, (step + 1) * batch):
        epoch, pos = divmod(k, n)
        order = list(items)
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        out.append(order[pos])
    return out


def lr_at(step: int, lr: float, warmup: int) -> float:
    """Linear warm-up to `lr`, then constant (fine-tuning runs are short)."""
    return lr * min(1.0, (step + 1) / max(1, warmup))


# ---- checkpoints ---------------------------------------------------------------------------
def gpt_tensors(model: GPT, prefix: str = "") -> dict[str, torch.Tensor]:
    """A GPT's state dict as `save_weights` writes it (a tied head stored once)."""
    state = {prefix + k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop(prefix + "lm_head.weight", None)
    return state


def save_checkpoint(run_dir, step: int, tensors: dict[str, torch.Tensor], optimizer, state: dict, keep: int = 2,
                    extra_weights: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """Write RUN/checkpoints/step_N atomically (temporary folder, fsync, rename); prune old ones.

    `optimizer` is an optimizer or a dict of tensors and numbers (several optimizers' states);
    `extra_weights` maps more safetensors file names to their tensors (PPO's value model).
    """
    from safetensors.torch import save_file

    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / MODEL_FILE), metadata={"format": "pt"})
    for name, extra in (extra_weights or {}).items():
        save_file({k: v.detach().cpu().contiguous() for k, v in extra.items()}, str(tmp / name), metadata={"format": "pt"})
    torch.save(optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer, tmp / OPTIMIZER_FILE)
    seal_checkpoint(tmp, {"format": "lmforge-checkpoint", "version": 1, "step": step, **state})
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    for old in checkpoint_dirs(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def prior_run(run_dir, overwrite: bool, legacy: Callable[[dict], dict]) -> tuple[dict | None, dict | None, Path | None]:
    """What -o holds before a preference or RL run starts: (its recorded settings, the settings
    of a run from before settings.json as `legacy(state)` reads them from its newest checkpoint,
    that checkpoint); all None with --overwrite, which starts over whatever is there."""
    from lmforge.settings import read_settings

    if overwrite:
        return None, None, None
    ckpt = latest_checkpoint(run_dir)
    recorded = (read_settings(run_dir) or {}).get("settings") or None
    old = None
    if recorded is None and ckpt is not None:
        old = {k: v for k, v in legacy(read_state(ckpt)).items() if v is not None}
    return recorded, old, ckpt


def run_precision(precision: str, device: str, prior: tuple) -> str:
    """The precision a run computes in: "auto" resolves on this machine for a new run, and keeps
    the one a run started with when it continues one."""
    recorded, old, ckpt = prior
    before = (recorded or old or {}).get("--precision")
    if before is None and ckpt is None:
        return resolve_precision(precision, device)
    return resumed_precision(precision, device, before)


def start_run(run_dir, stage: str, asked: dict, prior: tuple, *, steps: int, resume: bool = False,
              overwrite: bool = False) -> Path | None:
    """Check -o against the settings asked (refused by name when they differ, recorded when the
    run starts; see `lmforge.settings.start_run_folder`); return the checkpoint to resume from,
    or None for a new run. A run already past `steps` is refused: these stages' learning rate is
    constant after warm-up, so more --steps continue a run exactly, fewer cannot be had."""
    from lmforge.settings import start_run_folder

    _recorded, old, ckpt = prior
    start_run_folder(run_dir, stage, asked, error=AlignmentError, resume=resume, overwrite=overwrite, legacy=old,
                     has_checkpoint=ckpt is not None)
    try:  # the newest checkpoint whose files pass their sha256 (a damaged newer one is reported on stderr)
        ckpt = newest_good_checkpoint(run_dir)
    except TrainingError as exc:
        raise AlignmentError(str(exc)) from None
    done = int(read_state(ckpt).get("step", 0)) if ckpt is not None else 0
    if done > steps:
        raise AlignmentError(f"{run_dir} is already at step {done}, past --steps {steps}; ask --steps {done} or more to "
                             "continue it, or pass --overwrite to start over")
    return ckpt


def finished_summary(run_dir: Path, ckpt: Path, info: dict) -> "RunSummary":
    """A rerun of a finished run: nothing to train; the summary is read back from the metrics."""
    step = int(read_state(ckpt)["step"])
    truncate_metrics(Path(run_dir) / METRICS, step)
    rows = read_metrics(Path(run_dir) / METRICS)
    last = rows[-1] if rows else {}
    evals = {k[len("val_"):]: v for k, v in last.items() if k.startswith("val_")}
    return RunSummary(Path(run_dir), step, rows[0] if rows else {}, last, evals, 0.0, ckpt, None, info, finished_earlier=True)


def checkpoint_path(run) -> str:
    """The checkpoint folder a run (its newest) or a step_N folder names, as an absolute path:
    what a preference or RL run records as where it started from."""
    ckpt = checkpoint_of(run)
    return str(Path(ckpt if ckpt is not None else run).resolve())


def load_optimizer(optimizer, ckpt: Path, device) -> None:
    optimizer.load_state_dict(load_optimizer_state(ckpt, device))


def load_optimizer_state(ckpt: Path, device) -> dict:
    """optimizer.pt of a checkpoint (tensors and numbers only); a bad file is AlignmentError."""
    try:
        return torch.load(ckpt / OPTIMIZER_FILE, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise AlignmentError(f"{ckpt}: {OPTIMIZER_FILE} cannot be loaded ({type(exc).__name__}); delete this checkpoint to resume from the one before") from None


def load_tensors(ckpt: Path, device="cpu", name: str = MODEL_FILE) -> dict[str, torch.Tensor]:
    """A safetensors file of a checkpoint; a bad file is AlignmentError naming it."""
    from safetensors.torch import load_file

    try:
        return load_file(str(ckpt / name), device=str(device))
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise AlignmentError(f"{ckpt}: {name} cannot be loaded ({type(exc).__name__}); delete this checkpoint to resume from the one before") from None


def load_gpt_tensors(model: GPT, tensors: dict[str, torch.Tensor], prefix: str = "") -> None:
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if model.config.tie_embeddings and "lm_head.weight" not in state:
        state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state, strict=True)


# ---- the reward model ----------------------------------------------------------------------
class RewardModel(nn.Module):
    """A GPT backbone and a scalar head: `forward(ids, lengths)` -> one score per row (B,).

    `pool` says where the head reads the backbone: "last" (the last real token, InstructGPT's
    choice) or "mean" (the mean hidden state over the final assistant turn: from its last
    `response_start_id` token, `<|assistant_start|>`, to the last real token; the whole
    sequence when it has none). Both need only ids and lengths, so every caller (PPO, `rm:RUN`,
    `eval winrate`) scores either kind the same way.
    """

    def __init__(self, gpt: GPT, pool: str = "last", response_start_id: int | None = None):
        super().__init__()
        if pool not in POOLS:
            raise AlignmentError(f"--pool {pool!r}: choose {' or '.join(POOLS)}")
        if pool == "mean" and response_start_id is None:
            raise AlignmentError("--pool mean needs the tokenizer's <|assistant_start|> id")
        self.gpt = gpt
        self.pool, self.response_start_id = pool, response_start_id
        self.reward_head = nn.Linear(gpt.config.n_embd, 1)
        # zero head: every score starts at 0, so the first loss is exactly log 2 and the first
        # update moves the head toward h_chosen - h_rejected before the backbone gets gradients
        nn.init.zeros_(self.reward_head.weight)
        nn.init.zeros_(self.reward_head.bias)

    @property
    def config(self) -> GPTConfig:
        return self.gpt.config

    def values(self, ids: torch.Tensor) -> torch.Tensor:
        """The head at every position (B, T): PPO's value function uses this form."""
        return self.reward_head(self.gpt.hidden(ids)).squeeze(-1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.gpt.hidden(ids)  # (B, T, C)
        if self.pool == "mean":
            pos = torch.arange(ids.size(1), device=ids.device)[None, :]
            real = pos < lengths[:, None]
            start = torch.where((ids == self.response_start_id) & real, pos, 0).amax(dim=1)  # 0: none, the whole row
            w = ((pos >= start[:, None]) & real).to(h.dtype)
            pooled = (h * w[:, :, None]).sum(1) / w.sum(1, keepdim=True)
            return self.reward_head(pooled).squeeze(-1).float()
        last = h[torch.arange(ids.size(0), device=ids.device), lengths - 1]  # (B, C) at the last real token
        return self.reward_head(last).squeeze(-1).float()

    def tensors(self) -> dict[str, torch.Tensor]:
        out = gpt_tensors(self.gpt, "gpt.")
        out["reward_head.weight"] = self.reward_head.weight.detach()
        out["reward_head.bias"] = self.reward_head.bias.detach()
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        load_gpt_tensors(self.gpt, tensors, "gpt.")
        self.reward_head.weight.data.copy_(tensors["reward_head.weight"])
        self.reward_head.bias.data.copy_(tensors["reward_head.bias"])


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Mean of `-logsigmoid(r_chosen - r_rejected)`: log 2 when the scores are equal."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def load_reward_model(run, device="cpu") -> tuple[RewardModel, dict]:
    """The reward model of a run written by `lmforge align rm` (its newest checkpoint)."""
    ckpt = Path(run)
    if not (ckpt / STATE_FILE).is_file():
        ckpt = latest_checkpoint(run)
        if ckpt is None:
            raise AlignmentError(f"{run}: no reward-model checkpoint here; train one with `lmforge align rm`")
    try:
        state = verify_checkpoint(ckpt, files=(MODEL_FILE,))
    except TrainingError as exc:
        raise AlignmentError(f"{exc}; retrain it with `lmforge align rm`, or pass an older checkpoint (RUN/checkpoints/step_N)") from None
    if state.get("kind") != REWARD_KIND:
        raise AlignmentError(f"{run}: not a reward model (state.json kind is {state.get('kind')!r}); train one with `lmforge align rm`")
    model = RewardModel(GPT(GPTConfig.from_dict(state["model_config"])), **reward_pooling(state)).to(device)
    model.load_tensors(load_tensors(ckpt, device))
    return model, state


def reward_pooling(state: dict) -> dict:
    """`RewardModel` keyword arguments a checkpoint's state.json records (a run from before
    `--pool` read the last token)."""
    return {"pool": (state.get("config") or {}).get("pool") or "last", "response_start_id": state.get("response_start_id")}


def tie_half_accuracy(margins: torch.Tensor) -> float:
    """Share of positive margins, a tie counting half (equal scores are a coin flip)."""
    m = margins.detach()
    return float(((m > 0).float() + 0.5 * (m == 0).float()).mean())


@torch.no_grad()
def score(model: RewardModel, seqs: list[list[int]], pad_id: int, batch: int = 16) -> torch.Tensor:
    """Scores of token sequences (N,), evaluated `batch` at a time."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(seqs), batch):
        ids, lengths = pad(seqs[i : i + batch], pad_id, device)
        out.append(model(ids, lengths))
    return torch.cat(out) if out else torch.zeros(0)


def pair_metrics(chosen: torch.Tensor, rejected: torch.Tensor, len_chosen: list[int], len_rejected: list[int]) -> dict[str, float]:
    """What a pairwise evaluation reports, from the scores and response lengths (tokens) of
    chosen and rejected: accuracy (ties half) with its standard error, mean margin, the
    Bradley-Terry loss, and beside them the length baselines on the same pairs (`longer_wins`:
    accuracy of "the longer response is chosen", `shorter_wins` its mirror) and the Pearson
    correlation of score with response length over all responses (`length_corr`). A reward
    model that merely learned length has accuracy near the better baseline and |length_corr|
    near 1 (hh-rlhf's harmless pairs: shorter wins ~0.57)."""
    d = chosen.float() - rejected.float()
    lc = torch.tensor(len_chosen, dtype=torch.float64)
    lr = torch.tensor(len_rejected, dtype=torch.float64)
    acc = tie_half_accuracy(d)
    longer = tie_half_accuracy(lc - lr)
    scores = torch.cat([chosen, rejected]).double()
    lengths = torch.cat([lc, lr])
    if scores.std() > 0 and lengths.std() > 0:
        corr = float(torch.corrcoef(torch.stack([scores, lengths]))[0, 1])
    else:
        corr = float("nan")
    n = len(len_chosen)
    return {"accuracy": acc, "accuracy_se": math.sqrt(max(acc * (1 - acc), 0.0) / max(n, 1)), "margin": float(d.mean()),
            "loss": float(bradley_terry_loss(chosen.float(), rejected.float())), "longer_wins": longer,
            "shorter_wins": 1.0 - longer, "length_corr": corr, "pairs": n}


@torch.no_grad()
def pairwise_accuracy(model: RewardModel, pairs: list[tuple[Encoded, Encoded]], pad_id: int, batch: int = 16) -> dict[str, float]:
    """`pair_metrics` of a reward model on encoded pairs (what `align rm` reports held out and
    `lmforge eval rm` reports on any file)."""
    if not pairs:
        return {}
    was = model.training
    model.eval()
    rc = score(model, [c.ids for c, _ in pairs], pad_id, batch)
    rr = score(model, [r.ids for _, r in pairs], pad_id, batch)
    model.train(was)
    return pair_metrics(rc, rr, [sum(c.mask) for c, _ in pairs], [sum(r.mask) for _, r in pairs])


@dataclass
class RewardConfig:
    """Everything `lmforge align rm` needs; invalid values fail here, naming the option."""

    base: str
    data: str
    out_dir: str
    steps: int = 200
    batch_size: int = 8  # pairs per optimizer step
    lr: float = 1e-4
    warmup: int = 10
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    val_fraction: float = 0.1  # share of pairs held out for pairwise accuracy
    max_len: int | None = None  # tokens per sequence [the base model's context]
    eval_every: int = 50
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "cpu"
    resume: bool = False  # only continue: refuse to start a run where none was started
    overwrite: bool = False  # start over in a run folder that holds another run
    tokenizer_dir: str | None = None
    precision: str = "auto"  # as `lmforge train`: bf16 autocast on CUDA and on CPUs with native bf16, else fp32
    threads: int | None = None  # torch CPU threads [torch's default; 1 is best on a busy machine]
    trackers: tuple = ()  # mirrors of metrics.jsonl: "tensorboard", "wandb" (lmforge.train.metrics)
    pool: str = "last"  # where the head reads the backbone: "last" token or "mean" of the response (RewardModel)

    def __post_init__(self):
        if self.steps < 1:
            raise AlignmentError(f"--steps {self.steps}: train for at least one step")
        if self.batch_size < 1 or self.lr <= 0:
            raise AlignmentError("--batch-size and --lr must be positive")
        if self.pool not in POOLS:
            raise AlignmentError(f"--pool {self.pool!r}: choose {' or '.join(POOLS)}")
        if not 0 <= self.val_fraction < 1:
            raise AlignmentError(f"--val-fraction {self.val_fraction}: choose a value in [0, 1)")
        check_precision(self.precision)
        check_device(self.device)


#: RewardConfig fields that decide what a run computes: a rerun into the same folder must ask
#: the same ones (with the base checkpoint, the data's sha256, the tokenizer and the resolved
#: precision). Free to differ: steps (the learning rate is constant after warm-up, so more steps
#: continue a run exactly), device, threads, checkpoint_every, keep_checkpoints.
RM_SETTINGS = ("batch_size", "lr", "warmup", "weight_decay", "grad_clip", "val_fraction", "max_len", "eval_every", "seed")


def rm_settings(config: dict, base, data, tokenizer, precision) -> dict:
    """What `RUN/settings.json` records of a reward-model run, keyed by flag."""
    from lmforge.settings import flags

    # options added later are recorded only when they differ from the behaviour before them,
    # so runs written before they existed resume as they are
    later = {k: v for k, v in flags({"pool": "last", **config}, LATER_RM_SETTINGS).items() if v != LATER_RM_DEFAULTS[k]}
    return {"--base": base, "--data": data, **flags(config, RM_SETTINGS), **later, "--tokenizer": tokenizer, "--precision": precision}


LATER_RM_SETTINGS = ("pool",)
LATER_RM_DEFAULTS = {"--pool": "last"}


def check_precision(precision: str) -> None:
    if precision not in ("auto", "bf16", "fp32"):
        raise AlignmentError(f"--precision {precision!r}: choose auto, bf16 or fp32")


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda"):
        raise AlignmentError(f"--device {device!r}: choose cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise AlignmentError("--device cuda: no CUDA device is visible to torch; use --device cpu")


@dataclass
class RunSummary:
    """What a preference or RL run reports at its end (the CLI prints it as a table)."""

    run_dir: Path
    steps: int
    first: dict = field(default_factory=dict)  # the first step's metrics row
    last: dict = field(default_factory=dict)  # the last step's metrics row
    eval: dict = field(default_factory=dict)  # the final held-out evaluation
    seconds: float = 0.0
    checkpoint: Path | None = None
    resumed_from: int | None = None
    info: dict = field(default_factory=dict)  # data counts and the like
    finished_earlier: bool = False  # a rerun of a finished run: nothing was trained


def train_reward_model(cfg: RewardConfig, on_step: Callable[[dict], None] | None = None) -> RunSummary:
    """Train (or resume) a reward model from `cfg.base` on `cfg.data`; write `cfg.out_dir`."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.out_dir)
    prior = prior_run(run_dir, cfg.overwrite, lambda st: rm_settings(  # base: recorded as given, not its checkpoint
        st.get("config", {}), None, None, st.get("tokenizer_fingerprint"), st.get("config", {}).get("precision")))
    precision = run_precision(cfg.precision, cfg.device, prior)
    device = torch.device(cfg.device)
    gpt, base_state, tok = load_base(cfg.base, device, cfg.tokenizer_dir, purpose="align rm --base")
    max_len = min(cfg.max_len or context_limit(gpt), gpt.rope_cos.size(0))
    pairs, skipped = read_pairs(cfg.data, tok, max_len)
    train_idx, val_idx = split_indices(len(pairs), cfg.val_fraction, cfg.seed)
    info = {"train pairs": len(train_idx), "held-out pairs": len(val_idx), "skipped pairs": format_skipped(skipped), "max_len": max_len}
    asked = rm_settings(asdict(cfg), checkpoint_path(cfg.base), data_digest(cfg.data), tok.fingerprint, precision)
    ckpt = start_run(run_dir, "rm", asked, prior, steps=cfg.steps, resume=cfg.resume, overwrite=cfg.overwrite)
    if ckpt is not None and int(read_state(ckpt)["step"]) == cfg.steps:
        return finished_summary(run_dir, ckpt, info)
    torch.manual_seed(cfg.seed)
    start_id = tok.special_id("assistant_start")
    model = RewardModel(gpt, cfg.pool, start_id).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    step = 0
    if ckpt is not None:
        state = read_state(ckpt)
        model.load_tensors(load_tensors(ckpt, device))
        load_optimizer(opt, ckpt, device)
        step = int(state["step"])
    resumed_from = step if ckpt is not None else None
    val_pairs = [pairs[i] for i in val_idx]
    run_state = lambda: {  # noqa: E731
        "kind": REWARD_KIND, "model_config": gpt.config.to_dict(), "config": {**asdict(cfg), "precision": precision},
        "base": str(Path(cfg.base).resolve()), "base_step": base_state.get("step"),
        "tokenizer_dir": base_state.get("tokenizer_dir") if not cfg.tokenizer_dir else cfg.tokenizer_dir,
        "tokenizer_fingerprint": tok.fingerprint, "pairs": {"train": len(train_idx), "val": len(val_idx)},
        **({"response_start_id": start_id} if cfg.pool != "last" else {}),
    }
    log = MetricsLog(run_dir, step, cfg.trackers, config=asdict(cfg))
    first, row, last_eval, saved = {}, {}, {}, None
    t_start = time.perf_counter()
    model.train()
    try:
        while step < cfg.steps:
            batch = [pairs[i] for i in batch_order(step, cfg.batch_size, train_idx, cfg.seed)]
            ids, lengths = pad([c.ids for c, _ in batch] + [r.ids for _, r in batch], tok.pad_id, device)
            lr = lr_at(step, cfg.lr, cfg.warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast_context(precision, device):
                scores = model(ids, lengths).float()
            rc, rr = scores[: len(batch)], scores[len(batch):]
            loss = bradley_terry_loss(rc, rr)
            if not torch.isfinite(loss):
                raise AlignmentError(f"loss is {loss.item()} at step {step + 1}; the newest checkpoint is the last good one; resume with a lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item() if cfg.grad_clip > 0 else float("nan")
            opt.step()
            step += 1
            d = (rc - rr).detach()
            row = {"step": step, "loss": loss.item(), "accuracy": tie_half_accuracy(d), "margin": float(d.mean()),
                   "reward_chosen": float(rc.detach().mean()), "reward_rejected": float(rr.detach().mean()), "lr": lr, "grad_norm": norm}
            if val_pairs and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps):
                with autocast_context(precision, device):
                    last_eval = pairwise_accuracy(model, val_pairs, tok.pad_id)
                row.update({f"val_{k}": v for k, v in last_eval.items()})
            first = first or row
            log.write(row)
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == cfg.steps:
                saved = save_checkpoint(run_dir, step, model.tensors(), opt, run_state(), cfg.keep_checkpoints)
            if on_step:
                on_step(row)
    finally:
        log.close()
    return RunSummary(run_dir, step, first, row, last_eval, time.perf_counter() - t_start, saved, resumed_from, info)


# ---- what the three commands share: the end-of-run table ----------------
def print_summary(title: str, s: RunSummary, keys: list[tuple[str, str]]) -> None:
    """The end-of-run table: each (metrics key, label) as 'first -> last', then eval and files."""
    from rich.console import Console
    from rich.table import Table

    if s.finished_earlier:
        Console(stderr=True).print(f"{s.run_dir}: already finished ({s.steps} steps); nothing to do", soft_wrap=True)
    table = Table(title=f"{title}: {s.run_dir}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("steps", f"{s.steps}" + (f" (resumed at {s.resumed_from})" if s.resumed_from is not None else ""))
    for name, value in s.info.items():
        table.add_row(name, str(value))
    for key, label in keys:
        if key in s.last:
            before = f"{s.first[key]:.4f} -> " if key in s.first and s.first is not s.last else ""
            table.add_row(label, f"{before}{s.last[key]:.4f}")
    for key, value in s.eval.items():
        table.add_row(f"held-out {key}", f"{value:.4f}" if isinstance(value, float) else str(value))
    table.add_row("time", f"{s.seconds:.1f} s")
    if s.checkpoint is not None:
        table.add_row("checkpoint", str(s.checkpoint))
    table.add_row("metrics", str(Path(s.run_dir) / METRICS))
    Console(stderr=True).print(table)
