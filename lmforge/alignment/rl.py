"""RL on a policy: GRPO with verifiable rewards, PPO against a reward model.

One step is a rollout and an update. The rollout takes `prompts_per_step` prompts (a seeded
order, so a resumed run repeats an uninterrupted one), samples `group_size` completions of each
in one batch (`generate_batch`: the prompts left-padded into one KV cache, each prefilled once
and its keys and values copied to its G rows), and scores them. The update is `epochs` passes of the clipped
objective over the right-padded prompt + completion batch; only completion tokens count
(the prompt and padding are masked), and every token's log-probability uses the sampling
temperature, so ratios compare like with like.

GRPO (Shao et al. 2024, DeepSeekMath): the reward is a function of the text (GSM8K: 1 if the
`#### n` number matches, see `rewards.py`), advantages are normalised within each group,
A_i = (r_i - mean(r)) / (std(r) + 1e-4), and every token of completion i gets A_i. The loss is
the token-mean of -min(rho A, clip(rho, 1 - eps, 1 + eps) A) + beta * KL, with rho the
ratio to the rollout policy and KL the k3 estimator exp(q - p) - (q - p) - 1 (p policy, q
frozen reference log-probs): non-negative, zero exactly where they agree. No value model.
beta is 0 by default, as in TRL since it stopped following DeepSeekMath's 0.04: DAPO, Dr. GRPO
("Understanding R1-Zero-Like Training") and Open-Reasoner-Zero found the KL term unneeded with
verifiable rewards (the KL to the reference is still computed and logged, to watch the drift).

PPO (Ouyang et al. 2022, InstructGPT): the reward model scores prompt + completion; each
completion token earns -kl_coef * (log pi - log ref), and the last one also the RM score.
A value model (a copy of the reward model: backbone and scalar head, read at every
position) gives V; GAE(gamma, lambda) gives advantages (whitened over the batch) and
returns; the loss is the clipped policy objective plus vf_coef times the clipped value
loss. A group of G completions per prompt is sampled here too (for the batching above).

Checkpoints hold the policy as a GPT (`load_model`, `lmforge sample` and DPO read them);
PPO adds `value.safetensors`. `optimizer.pt` holds every optimizer's state.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from lmforge.alignment.data import data_digest
from lmforge.alignment.dpo import policy_state, token_logprobs
from lmforge.alignment.reward import (
    AlignmentError,
    MetricsLog,
    RunSummary,
    batch_order,
    check_device,
    checkpoint_path,
    finished_summary,
    gpt_tensors,
    load_base,
    load_gpt_tensors,
    load_optimizer_state,
    load_reward_model,
    load_tensors,
    lr_at,
    pad,
    pad_masks,
    prior_run,
    read_state,
    save_checkpoint,
    start_run,
)
from lmforge.alignment.rewards import RewardSpecError, resolve_reward
from lmforge.train.model import GPT
from lmforge.train.sample import generate_batch

log = logging.getLogger(__name__)

VALUE_FILE = "value.safetensors"
METHODS = ("grpo", "ppo")


# ---- the pieces, each testable on its own ---------------------------------------------------
SCALE_REWARDS = ("group", "batch", "none")
LOSS_TYPES = ("dapo", "grpo", "dr_grpo")


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4, scale: str = "group") -> torch.Tensor:
    """GRPO: rewards (n_groups, G) -> (r - group mean) / std; equal rewards -> 0. `scale` (TRL's
    `scale_rewards`): "group" divides by each group's std (+ eps), "batch" by the std of all
    rewards, "none" not at all (Dr. GRPO: dividing by a small group std up-weights prompts that
    are nearly always right or wrong).

    >>> [round(a, 3) for a in group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))[0].tolist()]  # std 0.577
    [0.866, -0.866, -0.866, 0.866]
    """
    mean = rewards.mean(dim=1, keepdim=True)
    centred = rewards - mean
    if scale == "none":
        return centred
    if scale == "batch":
        std = rewards.std() if rewards.numel() > 1 else torch.zeros(())
    else:
        std = rewards.std(dim=1, keepdim=True) if rewards.size(1) > 1 else torch.zeros_like(mean)
    return centred / (std + eps)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1)


def clipped_policy_loss(logp, old_logp, advantages, mask, clip: float, *, clip_high: float | None = None,
                        loss_type: str = "dapo", max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """-min(rho A, clip(rho, 1 - clip, 1 + clip_high) A) per token (clip_high: DAPO's clip-higher,
    default `clip`) reduced as TRL's `loss_type`: "dapo" the mean over every completion token
    of the batch, "grpo" each sequence's token mean, then the mean over sequences (long answers
    weigh less per token), "dr_grpo" the sum over tokens / (sequences x `max_len`) (no length
    bias at all). Also returns the clipped share of tokens."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip, 1 + (clip if clip_high is None else clip_high)) * advantages
    per_token = -torch.minimum(unclipped, clipped) * mask
    if loss_type == "grpo":
        loss = (per_token.sum(1) / mask.sum(1).clamp_min(1)).mean()
    elif loss_type == "dr_grpo":
        loss = per_token.sum() / (mask.size(0) * (max_len or mask.size(1)))
    else:
        loss = per_token.sum() / mask.sum().clamp_min(1)
    clip_frac = masked_mean((clipped < unclipped).float(), mask)
    return loss, clip_frac.detach()


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || ref) estimate exp(q - p) - (q - p) - 1: >= 0, zero where p == q."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (B, T) by generalised advantage estimation over masked positions.

    Completion tokens are one contiguous run per row (right padding), so the value after the
    last one is 0 (the episode ends) and positions outside the mask get 0.
    """
    B, T = rewards.shape
    adv = torch.zeros_like(rewards)
    running = torch.zeros(B, device=rewards.device)
    next_value = torch.zeros(B, device=rewards.device)
    for t in reversed(range(T)):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * m
        adv[:, t] = running
        next_value = values[:, t] * m
    return adv, (adv + values) * mask


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def sample_group(model: GPT, prompt: list[int], n: int, max_new: int, *, temperature: float, top_k: int | None,
                 generator: torch.Generator, stop_id: int, vocab_size: int) -> list[list[int]]:
    """n completions of one prompt, sampled together with one KV cache; each ends at `stop_id`
    (kept) or after `max_new` tokens (`lmforge.train.sample.generate_batch`)."""
    return generate_batch(model, [prompt] * n, max_new, temperature=temperature, top_k=top_k, generator=generator,
                          stop_id=stop_id, vocab_size=vocab_size)


# ---- configuration --------------------------------------------------------------------------
@dataclass
class RLConfig:
    """Everything `lmforge align rl` needs; invalid values fail here, naming the option."""

    method: str  # "grpo" or "ppo"
    policy: str  # SFT run: the starting policy and the frozen KL reference
    prompts: str  # {"question", "answer"} JSONL (GSM8K)
    out_dir: str
    reward: str | None = None  # PPO: a reward-model run from `lmforge align rm`
    reward_fn: str = "gsm8k"  # GRPO: a reward spec (`rewards.resolve_reward`): names, module:function plugins, @weights
    steps: int = 50
    prompts_per_step: int = 4
    group_size: int = 4  # completions sampled per prompt (G)
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_k: int | None = None
    lr: float = 1e-5
    warmup: int = 0
    clip: float = 0.2  # ratio clipping epsilon
    kl_coef: float | None = None  # GRPO: beta on the KL term; PPO: per-token KL penalty in the reward; None: see `kl_default`
    epochs: int = 1  # update passes over each rollout (TRL's num_iterations)
    loss_type: str = "dapo"  # token reduction of the GRPO loss: dapo | grpo | dr_grpo (see clipped_policy_loss)
    scale_rewards: str = "group"  # GRPO advantages divided by the group's std, the batch's, or none
    clip_high: float | None = None  # upper ratio clip (DAPO clip-higher); None: --clip
    mask_truncated: bool = False  # GRPO: completions cut at --max-new-tokens take no part in the loss
    gamma: float = 1.0  # PPO discount
    lam: float = 0.95  # PPO GAE lambda
    vf_coef: float = 0.1  # PPO value-loss weight
    value_clip: float = 0.2  # PPO value clipping around the rollout's values
    grad_clip: float = 1.0
    checkpoint_every: int = 25
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "cpu"
    resume: bool = False  # only continue: refuse to start a run where none was started
    overwrite: bool = False  # start over in a run folder that holds another run
    tokenizer_dir: str | None = None
    threads: int | None = None  # torch CPU threads [torch's default; 1 is best on a busy machine]
    trackers: tuple = ()  # mirrors of metrics.jsonl: "tensorboard", "wandb" (lmforge.train.metrics)

    def __post_init__(self):
        if self.method not in METHODS:
            raise AlignmentError(f"--method {self.method!r}: choose grpo or ppo")
        if self.method == "ppo" and not self.reward:
            raise AlignmentError("--method ppo needs --reward RUN (a reward model from `lmforge align rm`)")
        if self.method == "grpo":
            try:
                resolve_reward(self.reward_fn)
            except RewardSpecError as exc:
                raise AlignmentError(f"--reward-fn {exc}") from None
        if self.steps < 1:
            raise AlignmentError(f"--steps {self.steps}: train for at least one step")
        if min(self.prompts_per_step, self.max_new_tokens, self.epochs) < 1 or self.lr <= 0:
            raise AlignmentError("--prompts-per-step, --max-new-tokens, --epochs and --lr must be positive")
        if self.group_size < (2 if self.method == "grpo" else 1):
            raise AlignmentError(f"--group-size {self.group_size}: GRPO compares completions within a group; use 2 or more")
        if not self.temperature > 0:  # also nan
            raise AlignmentError(f"--temperature {self.temperature}: RL samples several completions per prompt and learns from "
                                 "their differences; greedy or negative temperatures make them identical, so every advantage "
                                 "is 0 and nothing is learned: use a temperature > 0 (default 1.0)")
        if (self.kl_coef is not None and self.kl_coef < 0) or not 0 < self.clip < 1:
            raise AlignmentError("--kl-coef must be >= 0 and --clip in (0, 1)")
        if self.loss_type not in LOSS_TYPES:
            raise AlignmentError(f"--loss-type {self.loss_type!r}: choose one of {', '.join(LOSS_TYPES)}")
        if self.scale_rewards not in SCALE_REWARDS:
            raise AlignmentError(f"--scale-rewards {self.scale_rewards!r}: choose one of {', '.join(SCALE_REWARDS)}")
        if self.clip_high is not None and not self.clip_high > 0:
            raise AlignmentError(f"--clip-high {self.clip_high}: the upper clip must be > 0 (DAPO uses 0.28 with --clip 0.2)")
        check_device(self.device)


#: the KL weight when --kl-coef is not given: GRPO 0 (TRL's beta default; see the module doc),
#: PPO 0.04 (the per-token penalty keeps the policy where the reward model was trained)
KL_DEFAULTS = {"grpo": 0.0, "ppo": 0.04}


def kl_default(method: str, recorded: dict | None) -> float:
    """The KL weight of a run not given --kl-coef: the one it recorded when it continues a run
    (runs made before GRPO's default became 0 resume as they were, with 0.04), else the method's
    default."""
    before = (recorded or {}).get("--kl-coef")
    return float(before) if before is not None else KL_DEFAULTS[method]


#: RLConfig fields that decide what a run computes: a rerun into the same folder must ask the
#: same ones (with the policy and reward checkpoints, the prompts' sha256 and the tokenizer).
#: Free to differ: steps (the learning rate is constant after warm-up, so more steps continue a
#: run exactly), device, threads, checkpoint_every, keep_checkpoints.
RL_SETTINGS = ("method", "reward_fn", "prompts_per_step", "group_size", "max_new_tokens", "temperature", "top_k", "lr", "warmup",
               "clip", "kl_coef", "epochs", "gamma", "lam", "vf_coef", "value_clip", "grad_clip", "seed")


def rl_settings(config: dict, policy, reward, prompts, tokenizer) -> dict:
    """What `RUN/settings.json` records of an RL run, keyed by flag."""
    from lmforge.settings import flags

    # the GRPO options added later are recorded only when they differ from the behaviour before
    # them, so runs written before they existed resume as they are
    later = {k: v for k, v in flags(config, LATER_RL_SETTINGS).items() if v != LATER_RL_DEFAULTS[k]}
    return {"--policy": policy, "--reward": reward, "--prompts": prompts, **flags(config, RL_SETTINGS), **later, "--tokenizer": tokenizer}


LATER_RL_SETTINGS = ("loss_type", "scale_rewards", "clip_high", "mask_truncated")
LATER_RL_DEFAULTS = {"--loss-type": "dapo", "--scale-rewards": "group", "--clip-high": None, "--mask-truncated": False}


# ---- the trainer ----------------------------------------------------------------------------
@dataclass
class Rollout:
    ids: torch.Tensor  # (N, T) prompt + completion, right-padded
    mask: torch.Tensor  # (N, T - 1) 1 where the target token is a completion token
    rewards: torch.Tensor  # (N,) the sequence reward (verifiable or reward model)
    completion_lens: list[int]
    ended: float  # share of completions that emitted <|assistant_end|>


class RLTrainer:
    """Policy, frozen reference, (PPO) reward and value models; `step(prompts)` does one step."""

    def __init__(self, cfg: RLConfig, policy: GPT, tok, reward_model=None):
        self.cfg, self.tok, self.device = cfg, tok, next(policy.parameters()).device
        self.kl_coef = cfg.kl_coef if cfg.kl_coef is not None else KL_DEFAULTS[cfg.method]
        self.policy = policy.train()
        self.reference = copy.deepcopy(policy).eval().requires_grad_(False)
        self.optimizer = policy.optimizer(cfg.lr, weight_decay=0.0)
        self.reward_model = self.value_model = self.value_optimizer = None
        if cfg.method == "ppo":
            if reward_model is None:
                raise AlignmentError("PPO needs a reward model")
            self.reward_model = reward_model.eval().requires_grad_(False)
            self.value_model = copy.deepcopy(reward_model).train().requires_grad_(True)
            self.value_optimizer = torch.optim.AdamW(self.value_model.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.reward = None  # GRPO: failures counted in reward.errors; a reward model (rm:RUN) loaded once, here
        if cfg.method == "grpo":
            try:
                self.reward = resolve_reward(cfg.reward_fn).bind(tok, self.device)
            except RewardSpecError as exc:
                raise AlignmentError(f"--reward-fn {exc}") from None
        self.step_count = 0
        self.limit = policy.config.block_size
        if self.limit - cfg.max_new_tokens < 8:
            raise AlignmentError(f"--max-new-tokens {cfg.max_new_tokens} leaves under 8 prompt tokens in the model's "
                                 f"{self.limit}-token context; lower it")

    # -- rollout
    def prompt_ids(self, conversation: list[dict]) -> list[int]:
        from lmforge.alignment.chat import render_prompt

        ids = list(render_prompt(conversation, self.tok))
        room = self.limit - self.cfg.max_new_tokens
        return ids if len(ids) <= room else ids[:1] + ids[len(ids) - room + 1:]  # BOS + the latest tokens

    @torch.no_grad()
    def rollout(self, examples: list) -> Rollout:
        from lmforge.alignment.chat import parse_completion

        cfg, tok = self.cfg, self.tok
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed * 1_000_003 + self.step_count)
        seqs, masks, lens, texts = [], [], [], []
        end = tok.assistant_end_id
        prompts = [self.prompt_ids(ex.prompt) for ex in examples]
        # every prompt's group in one batch: one forward pass per new token for all of them
        flat = generate_batch(self.policy, [p for p in prompts for _ in range(cfg.group_size)], cfg.max_new_tokens,
                              temperature=cfg.temperature, top_k=cfg.top_k, generator=gen, stop_id=end, vocab_size=tok.vocab_size)
        for k, (ex, prompt) in enumerate(zip(examples, prompts)):
            comps = flat[k * cfg.group_size : (k + 1) * cfg.group_size]
            for c in comps:
                seqs.append(prompt + c)
                cut = cfg.mask_truncated and cfg.method == "grpo" and (not c or c[-1] != end)  # no end-of-turn: truncated
                masks.append([0] * len(prompt) + [0 if cut else 1] * len(c))
                lens.append(len(c))
                texts.append(parse_completion(c, tok))
        ids, lengths = pad(seqs, tok.pad_id, self.device)
        mask = pad_masks(masks, ids.size(1), self.device)[:, 1:]
        if cfg.method == "ppo":
            r = self.reward_model(ids, lengths)
        else:  # every completion at once: a reward model (rm:RUN) scores them in batches
            G = cfg.group_size
            r = torch.tensor(self.reward.score_batch([ex.prompt for ex in examples for _ in range(G)], texts,
                                                     [ex.answer for ex in examples for _ in range(G)]), device=self.device)
        ended = sum(1 for s in seqs if s[-1] == end) / len(seqs)
        return Rollout(ids, mask, r.float(), lens, ended)

    # -- update
    def step(self, examples: list) -> dict:
        cfg = self.cfg
        lr = lr_at(self.step_count, cfg.lr, cfg.warmup)
        for opt in filter(None, (self.optimizer, self.value_optimizer)):
            for g in opt.param_groups:
                g["lr"] = lr
        errors_before = sum(self.reward.errors.values()) if self.reward is not None else 0
        ro = self.rollout(examples)
        row_extra = {}
        if self.reward is not None:
            row_extra["reward_errors"] = sum(self.reward.errors.values()) - errors_before  # records a reward failed on (scored 0)
            flat = ro.rewards.view(-1, cfg.group_size)
            same = float((flat.max(1).values == flat.min(1).values).float().mean())  # groups whose completions all tie
            row_extra["tied_groups"] = same
            if same == 1.0:
                log.warning("step %d: every group's completions earned the same reward, so every advantage is 0 and this step "
                            "learns nothing; more samples per prompt (-G), a higher --temperature or a reward that "
                            "separates answers helps", self.step_count + 1)
        V, T = self.tok.vocab_size, cfg.temperature if cfg.temperature > 0 else 1.0
        with torch.no_grad():
            old_logp = token_logprobs(self.policy, ro.ids, V, T)
            ref_logp = token_logprobs(self.reference, ro.ids, V, T)
            if cfg.method == "grpo":
                adv = group_advantages(ro.rewards.view(-1, cfg.group_size), scale=cfg.scale_rewards).view(-1, 1).expand_as(old_logp) * ro.mask
                if row_extra["tied_groups"] < 1.0 and not bool(adv.any()):  # rewards differ, yet no token carries an advantage
                    log.warning("step %d: every completion whose reward differs from its group's was cut at --max-new-tokens "
                                "and --mask-truncated leaves it out, so every advantage is 0 and this step learns nothing; "
                                "raise --max-new-tokens", self.step_count + 1)
            else:
                old_values = self.value_model.values(ro.ids)[:, :-1].float()  # value of the state before each target
                token_rewards = -self.kl_coef * (old_logp - ref_logp) * ro.mask
                last = ro.mask.cumsum(1).argmax(1)  # index of each row's last completion token
                token_rewards[torch.arange(len(last)), last] += ro.rewards
                adv, returns = gae(token_rewards, old_values, ro.mask, cfg.gamma, cfg.lam)
                adv = whiten(adv, ro.mask)
        for _ in range(cfg.epochs):
            logp = token_logprobs(self.policy, ro.ids, V, T)
            pg_loss, clip_frac = clipped_policy_loss(logp, old_logp, adv, ro.mask, cfg.clip, clip_high=cfg.clip_high,
                                                     loss_type=cfg.loss_type if cfg.method == "grpo" else "dapo",
                                                     max_len=cfg.max_new_tokens)
            kl = masked_mean(kl_k3(logp, ref_logp), ro.mask)
            loss = pg_loss + (self.kl_coef * kl if cfg.method == "grpo" else 0.0)
            if cfg.method == "ppo":
                v = self.value_model.values(ro.ids)[:, :-1].float()
                v_clipped = old_values + (v - old_values).clamp(-cfg.value_clip, cfg.value_clip)
                v_loss = 0.5 * masked_mean(torch.maximum((v - returns) ** 2, (v_clipped - returns) ** 2), ro.mask)
                loss = loss + cfg.vf_coef * v_loss
                row_extra["value_loss"] = v_loss.item()
            if not torch.isfinite(loss):
                raise AlignmentError(f"loss is {loss.item()} at step {self.step_count + 1}; the newest checkpoint is the "
                                     "last good one; resume with a lower --lr or a higher --kl-coef")
            for opt in filter(None, (self.optimizer, self.value_optimizer)):
                opt.zero_grad(set_to_none=True)
            loss.backward()
            params = list(self.policy.parameters()) + (list(self.value_model.parameters()) if self.value_model else [])
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip).item() if cfg.grad_clip > 0 else float("nan")
            for opt in filter(None, (self.optimizer, self.value_optimizer)):
                opt.step()
        self.step_count += 1
        return {"step": self.step_count, "reward": float(ro.rewards.mean()), "reward_std": float(ro.rewards.std()) if len(ro.rewards) > 1 else 0.0,
                "loss": loss.item(), "policy_loss": pg_loss.item(), "kl": kl.item(), "clip_frac": clip_frac.item(),
                "completion_len": sum(ro.completion_lens) / len(ro.completion_lens), "ended": ro.ended, "lr": lr,
                "grad_norm": norm, **row_extra}

    # -- checkpoints
    def save(self, run_dir, state: dict, keep: int) -> Path:
        opt = {"policy": self.optimizer.state_dict()}
        extra = None
        if self.value_model is not None:
            opt["value"] = self.value_optimizer.state_dict()
            extra = {VALUE_FILE: self.value_model.tensors()}
        return save_checkpoint(run_dir, self.step_count, gpt_tensors(self.policy), opt, state, keep, extra)

    def load(self, ckpt: Path) -> None:
        load_gpt_tensors(self.policy, load_tensors(ckpt, self.device))
        opt = load_optimizer_state(ckpt, self.device)
        self.optimizer.load_state_dict(opt["policy"])
        if self.value_model is not None:
            self.value_model.load_tensors(load_tensors(ckpt, self.device, VALUE_FILE))
            self.value_optimizer.load_state_dict(opt["value"])
        self.step_count = int(read_state(ckpt)["step"])


def read_prompts(path, reward_fn: str | None = None) -> list:
    """The prompts of `path`; with a verifiable `reward_fn`, those whose reference answer it
    cannot check (a GSM8K answer without `#### <number>`) are skipped here, with a warning
    naming their lines, not met as a crash in the middle of the run."""
    from lmforge.alignment.data import load_prompts

    if not Path(path).exists():
        raise AlignmentError(f"{path}: no such prompts file")
    try:
        return list(load_prompts(path, answer_ok=resolve_reward(reward_fn).reference_ok if reward_fn else None))
    except ValueError as exc:
        raise AlignmentError(str(exc)) from None


def train_rl(cfg: RLConfig, on_step: Callable[[dict], None] | None = None) -> RunSummary:
    """Run (or resume) GRPO or PPO from `cfg.policy` on `cfg.prompts`; write `cfg.out_dir`."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.out_dir)
    prior = prior_run(run_dir, cfg.overwrite, lambda st: rl_settings(  # policy and reward: recorded as given
        st.get("config", {}), None, None, None, st.get("tokenizer_fingerprint")))
    if cfg.kl_coef is None:
        cfg = replace(cfg, kl_coef=kl_default(cfg.method, prior[0] or prior[1]))
    device = torch.device(cfg.device)
    policy, src_state, tok = load_base(cfg.policy, device, cfg.tokenizer_dir, purpose="align rl --policy")
    reward_model = None
    if cfg.method == "ppo":
        reward_model, rm_state = load_reward_model(cfg.reward, device)
        if rm_state.get("tokenizer_fingerprint") != tok.fingerprint:
            raise AlignmentError(f"{cfg.reward}: the reward model uses another tokenizer than {cfg.policy}; train it from the same base")
    examples = read_prompts(cfg.prompts, cfg.reward_fn if cfg.method == "grpo" else None)
    info = {"method": cfg.method, "prompts": len(examples), "samples per step": cfg.prompts_per_step * cfg.group_size,
            "reward": cfg.reward if cfg.method == "ppo" else cfg.reward_fn}
    asked = rl_settings(asdict(cfg), checkpoint_path(cfg.policy), checkpoint_path(cfg.reward) if cfg.method == "ppo" else None,
                        data_digest(cfg.prompts), tok.fingerprint)
    ckpt = start_run(run_dir, "rl", asked, prior, steps=cfg.steps, resume=cfg.resume, overwrite=cfg.overwrite)
    if ckpt is not None and int(read_state(ckpt)["step"]) == cfg.steps:
        return finished_summary(run_dir, ckpt, info)
    torch.manual_seed(cfg.seed)
    trainer = RLTrainer(cfg, policy, tok, reward_model)
    if ckpt is not None:
        trainer.load(ckpt)
    resumed_from = trainer.step_count if ckpt is not None else None
    log = MetricsLog(run_dir, trainer.step_count, cfg.trackers, config=asdict(cfg))
    order = list(range(len(examples)))
    first, row, saved = {}, {}, None
    t_start = time.perf_counter()
    try:
        while trainer.step_count < cfg.steps:
            batch = [examples[i] for i in batch_order(trainer.step_count, cfg.prompts_per_step, order, cfg.seed)]
            row = trainer.step(batch)
            first = first or row
            log.write(row)
            step = trainer.step_count
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == cfg.steps:
                state = policy_state(trainer.policy, tok, asdict(cfg), cfg.policy, src_state, cfg.tokenizer_dir, kind="policy")
                saved = trainer.save(run_dir, state, cfg.keep_checkpoints)
            if on_step:
                on_step(row)
    finally:
        log.close()
    return RunSummary(run_dir, trainer.step_count, first, row, {}, time.perf_counter() - t_start, saved, resumed_from, info)
