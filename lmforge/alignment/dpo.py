"""Direct Preference Optimisation: a policy and a frozen reference, no reward model, no sampling.

For a pair (x, y_w, y_l) the loss is

    -logsigmoid(beta * ((log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))))

(Rafailov et al. 2023), with log pi(y|x) the sum of the response tokens' log-probabilities:
only positions where `chat.render`'s loss mask is 1 count (the assistant's tokens and its
end-of-turn token; never the prompt, never padding). The policy starts as a copy of the
reference, so the first loss is exactly log 2 = 0.6931.

Reported per step (as TRL names them): `reward_chosen` / `reward_rejected`, the implied
rewards beta * (log pi - log ref); `margin`, their difference; `accuracy`, the share of pairs
with a positive margin (a tie counts half). A held-out split gives the same numbers on
pairs the policy never trained on.

The reference's log-probabilities are computed under `no_grad` in every step (one extra
forward pass, ~1/3 of a step's compute); precomputing them once would save that at the cost
of a pass over the data before training starts.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from lmforge.alignment.data import data_digest
from lmforge.alignment.reward import (
    AlignmentError,
    MetricsLog,
    RunSummary,
    batch_order,
    check_device,
    check_precision,
    checkpoint_path,
    context_limit,
    finished_summary,
    format_skipped,
    gpt_tensors,
    load_base,
    load_gpt_tensors,
    load_optimizer,
    load_tensors,
    lr_at,
    pad,
    pad_masks,
    prior_run,
    read_pairs,
    read_state,
    run_precision,
    save_checkpoint,
    split_indices,
    start_run,
    tie_half_accuracy,
)
from lmforge.train.trainer import autocast_context

POLICY_KIND = "policy"


def token_logprobs(model, ids: torch.Tensor, vocab_size: int, temperature: float = 1.0) -> torch.Tensor:
    """log p(ids[:, t] | ids[:, :t]) for t >= 1: (B, T - 1), over the tokenizer's real ids only.

    The padded embedding rows are left out of the softmax, as `generate(vocab_size=...)` leaves
    them out of sampling, so a sampled token's log-probability here is the sampler's own.
    """
    logits = model(ids[:, :-1])[0][..., :vocab_size].float()  # (B, T-1, V)
    if temperature != 1.0:
        logits = logits / temperature
    return torch.gather(F.log_softmax(logits, dim=-1), 2, ids[:, 1:, None]).squeeze(-1)


def sequence_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Sum of the log-probabilities of the tokens where `mask` (B, T) is 1: (B,)."""
    return (token_logprobs(model, ids, vocab_size) * mask[:, 1:]).sum(-1)


def dpo_loss(pi_c, pi_r, ref_c, ref_r, beta: float):
    """(mean loss, implied reward of chosen (B,), of rejected (B,)) for sequence log-probs (B,)."""
    reward_c = beta * (pi_c - ref_c)
    reward_r = beta * (pi_r - ref_r)
    return -F.logsigmoid(reward_c - reward_r).mean(), reward_c.detach(), reward_r.detach()


@dataclass
class DPOConfig:
    """Everything `lmforge align dpo` needs; invalid values fail here, naming the option."""

    policy: str  # SFT or pretrained run: the starting policy and the frozen reference
    data: str
    out_dir: str
    steps: int = 200
    batch_size: int = 8  # pairs per optimizer step
    beta: float = 0.1  # strength of the pull toward the reference (higher: stay closer)
    lr: float = 5e-5
    warmup: int = 10
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    val_fraction: float = 0.1
    max_len: int | None = None
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

    def __post_init__(self):
        if self.steps < 1:
            raise AlignmentError(f"--steps {self.steps}: train for at least one step")
        if self.batch_size < 1 or self.lr <= 0 or self.beta <= 0:
            raise AlignmentError("--batch-size, --lr and --beta must be positive")
        if not 0 <= self.val_fraction < 1:
            raise AlignmentError(f"--val-fraction {self.val_fraction}: choose a value in [0, 1)")
        check_precision(self.precision)
        check_device(self.device)


#: DPOConfig fields that decide what a run computes: a rerun into the same folder must ask the
#: same ones (with the policy checkpoint, the data's sha256, the tokenizer and the resolved
#: precision). Free to differ: steps (the learning rate is constant after warm-up, so more steps
#: continue a run exactly), device, threads, checkpoint_every, keep_checkpoints.
DPO_SETTINGS = ("batch_size", "beta", "lr", "warmup", "weight_decay", "grad_clip", "val_fraction", "max_len", "eval_every", "seed")


def dpo_settings(config: dict, policy, data, tokenizer, precision) -> dict:
    """What `RUN/settings.json` records of a DPO run, keyed by flag."""
    from lmforge.settings import flags

    return {"--policy": policy, "--data": data, **flags(config, DPO_SETTINGS), "--tokenizer": tokenizer, "--precision": precision}


def _batch_tensors(pairs, pad_id: int, device):
    seqs = [c.ids for c, _ in pairs] + [r.ids for _, r in pairs]
    ids, _ = pad(seqs, pad_id, device)
    mask = pad_masks([c.mask for c, _ in pairs] + [r.mask for _, r in pairs], ids.size(1), device)
    return ids, mask


def dpo_step_metrics(policy, reference, pairs, pad_id: int, vocab_size: int, beta: float, device):
    """Loss (with grad through the policy) and the implied rewards for a list of encoded pairs."""
    ids, mask = _batch_tensors(pairs, pad_id, device)
    n = len(pairs)
    with torch.no_grad():
        ref = sequence_logprobs(reference, ids, mask, vocab_size)
    pi = sequence_logprobs(policy, ids, mask, vocab_size)
    return dpo_loss(pi[:n], pi[n:], ref[:n], ref[n:], beta)


@torch.no_grad()
def evaluate_dpo(policy, reference, pairs, pad_id: int, vocab_size: int, beta: float, device, batch: int = 16) -> dict:
    """Held-out loss, accuracy and mean margin."""
    if not pairs:
        return {}
    was = policy.training
    policy.eval()
    losses, margins = [], []
    for i in range(0, len(pairs), batch):
        chunk = pairs[i : i + batch]
        loss, rc, rr = dpo_step_metrics(policy, reference, chunk, pad_id, vocab_size, beta, device)
        losses.append(loss.item() * len(chunk))
        margins.append(rc - rr)
    policy.train(was)
    m = torch.cat(margins)
    return {"loss": sum(losses) / len(pairs), "accuracy": tie_half_accuracy(m), "margin": float(m.mean())}


def policy_state(model, tok, cfg_dict: dict, source: str, source_state: dict, tokenizer_dir, kind: str = POLICY_KIND) -> dict:
    """state.json of a policy checkpoint: readable by `load_model`, traceable to its source."""
    return {"kind": kind, "model_config": model.config.to_dict(), "config": cfg_dict,
            "reference": str(Path(source).resolve()), "reference_step": source_state.get("step"),
            "tokenizer_dir": tokenizer_dir or source_state.get("tokenizer_dir"), "tokenizer_fingerprint": tok.fingerprint}


def train_dpo(cfg: DPOConfig, on_step: Callable[[dict], None] | None = None) -> RunSummary:
    """Train (or resume) a DPO policy from `cfg.policy` on `cfg.data`; write `cfg.out_dir`."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.out_dir)
    prior = prior_run(run_dir, cfg.overwrite, lambda st: dpo_settings(  # policy: recorded as given, not its checkpoint
        st.get("config", {}), None, None, st.get("tokenizer_fingerprint"), st.get("config", {}).get("precision")))
    precision = run_precision(cfg.precision, cfg.device, prior)
    device = torch.device(cfg.device)
    reference, src_state, tok = load_base(cfg.policy, device, cfg.tokenizer_dir, purpose="align dpo --policy")
    reference.eval().requires_grad_(False)
    policy = copy.deepcopy(reference).requires_grad_(True).train()
    max_len = min(cfg.max_len or context_limit(policy), policy.rope_cos.size(0))
    pairs, skipped = read_pairs(cfg.data, tok, max_len)
    train_idx, val_idx = split_indices(len(pairs), cfg.val_fraction, cfg.seed)
    info = {"train pairs": len(train_idx), "held-out pairs": len(val_idx), "skipped pairs": format_skipped(skipped),
            "beta": cfg.beta, "max_len": max_len}
    asked = dpo_settings(asdict(cfg), checkpoint_path(cfg.policy), data_digest(cfg.data), tok.fingerprint, precision)
    ckpt = start_run(run_dir, "dpo", asked, prior, steps=cfg.steps, resume=cfg.resume, overwrite=cfg.overwrite)
    if ckpt is not None and int(read_state(ckpt)["step"]) == cfg.steps:
        return finished_summary(run_dir, ckpt, info)
    val_pairs = [pairs[i] for i in val_idx]
    opt = policy.optimizer(cfg.lr, cfg.weight_decay)
    step = 0
    if ckpt is not None:
        load_gpt_tensors(policy, load_tensors(ckpt, device))
        load_optimizer(opt, ckpt, device)
        step = int(read_state(ckpt)["step"])
    resumed_from = step if ckpt is not None else None
    V = tok.vocab_size
    log = MetricsLog(run_dir, step, cfg.trackers, config=asdict(cfg))
    first, row, last_eval, saved = {}, {}, {}, None
    t_start = time.perf_counter()
    try:
        while step < cfg.steps:
            batch = [pairs[i] for i in batch_order(step, cfg.batch_size, train_idx, cfg.seed)]
            lr = lr_at(step, cfg.lr, cfg.warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast_context(precision, device):
                loss, rc, rr = dpo_step_metrics(policy, reference, batch, tok.pad_id, V, cfg.beta, device)
            if not torch.isfinite(loss):
                raise AlignmentError(f"loss is {loss.item()} at step {step + 1}; the newest checkpoint is the last good one; resume with a lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip).item() if cfg.grad_clip > 0 else float("nan")
            opt.step()
            step += 1
            row = {"step": step, "loss": loss.item(), "accuracy": tie_half_accuracy(rc - rr), "margin": float((rc - rr).mean()),
                   "reward_chosen": float(rc.mean()), "reward_rejected": float(rr.mean()), "lr": lr, "grad_norm": norm}
            if val_pairs and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps):
                with autocast_context(precision, device):
                    last_eval = evaluate_dpo(policy, reference, val_pairs, tok.pad_id, V, cfg.beta, device)
                row.update({f"val_{k}": v for k, v in last_eval.items()})
            first = first or row
            log.write(row)
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == cfg.steps:
                saved = save_checkpoint(run_dir, step, gpt_tensors(policy), opt,
                                        policy_state(policy, tok, {**asdict(cfg), "precision": precision}, cfg.policy, src_state, cfg.tokenizer_dir),
                                        cfg.keep_checkpoints)
            if on_step:
                on_step(row)
    finally:
        log.close()
    return RunSummary(run_dir, step, first, row, last_eval, time.perf_counter() - t_start, saved, resumed_from, info)
