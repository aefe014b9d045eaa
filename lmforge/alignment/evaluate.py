"""Evaluation of alignment runs on data they were not trained on: `lmforge eval ...`.

`evaluate_reward_model(run, data)`: a reward model's pairwise accuracy on any preference file,
beside the baselines a reward model has to beat on the same pairs. Length is the one that
matters: on hh-rlhf's harmless pairs "the shorter answer wins" alone is right on ~57% of pairs,
so a demo-scale model at 0.56-0.58 has learned length, not preference; `length_corr` (score
against response length) says so directly. `align rm` reports the same figures held out (one
function, `reward.pair_metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lmforge.alignment.reward import (
    AlignmentError,
    context_limit,
    format_skipped,
    load_reward_model,
    load_tokenizer,
    pairwise_accuracy,
    read_pairs,
)


@dataclass
class RewardEval:
    run: str
    data: str
    metrics: dict[str, float]
    skipped: dict[str, int] = field(default_factory=dict)
    step: int | None = None

    def to_dict(self) -> dict:
        return {"run": self.run, "data": self.data, "step": self.step, **self.metrics, "skipped": sum(self.skipped.values())}


def evaluate_reward_model(run, data, *, max_len: int | None = None, device: str = "cpu", batch: int = 16,
                          tokenizer_dir: str | None = None) -> RewardEval:
    """Score every pair of `data` with the reward model of `run` (`reward.pair_metrics`)."""
    import torch

    if not Path(run).exists():
        raise AlignmentError(f"{run}: no such run; train a reward model with `lmforge align rm`")
    model, state = load_reward_model(run, device)
    tok = load_tokenizer(state, run, tokenizer_dir)
    max_len = max_len or context_limit(model.gpt)
    pairs, skipped = read_pairs(data, tok, max_len)
    with torch.no_grad():
        metrics = pairwise_accuracy(model, pairs, tok.pad_id, batch)
    return RewardEval(str(run), str(data), metrics, skipped, state.get("step"))


# ---- policies -------------------------------------------------------------------------------
@dataclass
class PolicyEval:
    run: str
    prompts: str
    reward: str
    metrics: dict[str, float]
    step: int | None = None

    def to_dict(self) -> dict:
        return {"run": self.run, "prompts": self.prompts, "reward": self.reward, "step": self.step, **self.metrics}


def _share(flags: list[float]) -> tuple[float, float]:
    """Mean of 0/1 (or [0, 1]) values and its standard error."""
    import math

    n = len(flags)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(flags) / n
    var = sum((f - mean) ** 2 for f in flags) / max(n - 1, 1)
    return mean, math.sqrt(var / n)


def score_completions(completions: list[str], answers: list[str], reward, prompts: list | None = None,
                      rewards: list[float] | None = None) -> dict[str, float]:
    """Reward, format compliance and accuracy among formatted answers of completions, each
    with its standard error: a reward that rises because answers take the right form, not
    because they are right, shows as compliance up and accuracy-among-formatted flat. A
    reward model in the spec (`rm:RUN`, bound already) needs each completion's `prompts`;
    `rewards`, when given, are the completions' scores already computed."""
    from lmforge.alignment.rewards import resolve_reward

    fn = resolve_reward(reward) if isinstance(reward, str) else reward
    formatted_fn = fn.formatted
    if rewards is None:
        if prompts is None and fn.needs_prompt:
            raise ValueError(f"reward {fn.spec!r} scores the conversation: pass the completions' prompts")
        rewards = fn.score_batch(prompts or [None] * len(completions), completions, answers)
    formatted = [1.0 if formatted_fn(c) else 0.0 for c in completions]
    among = [r for r, f in zip(rewards, formatted) if f]
    out = {}
    for name, values in (("reward", rewards), ("formatted", formatted), ("accuracy_formatted", among)):
        out[name], out[f"{name}_se"] = _share(values)
    return out


def evaluate_policy(run, prompts, *, reward: str = "gsm8k", samples: int = 4, temperature: float = 1.0, top_k: int | None = None,
                    max_tokens: int = 64, limit: int | None = None, seed: int = 0, device: str = "cpu",
                    tokenizer_dir: str | None = None) -> PolicyEval:
    """Greedy and sampled (`samples` per prompt at `temperature`) completions of a fixed
    prompt set (the first `limit` of `prompts`), scored by `score_completions`; sampled
    figures also give pass@n (share of prompts with at least one rewarded sample)."""
    import torch

    from lmforge.alignment.chat import load_chat_model, parse_completion, render_prompt
    from lmforge.alignment.rewards import RewardSpecError, resolve_reward
    from lmforge.alignment.rl import read_prompts
    from lmforge.train.sample import generate_batch
    from lmforge.train.trainer import TrainingError

    try:
        scorer = resolve_reward(reward)
    except RewardSpecError as exc:
        raise AlignmentError(f"--reward {exc}") from None
    if samples and not temperature > 0:
        raise AlignmentError(f"--temperature {temperature}: sampled answers need a temperature > 0 (greedy ones are always reported)")
    try:
        model, tok = load_chat_model(run, device, tokenizer_dir, purpose="eval policy")
        scorer.bind(tok, device)  # a reward model (rm:RUN): loaded once, checked against the policy's tokenizer
    except TrainingError as exc:
        raise AlignmentError(str(exc)) from None
    except RewardSpecError as exc:
        raise AlignmentError(f"--reward {exc}") from None
    examples = read_prompts(prompts, reward)[:limit]
    if not examples:
        raise AlignmentError(f"{prompts}: no prompts to evaluate")
    stop = tok.special_id("assistant_end")
    gen = torch.Generator(device=device).manual_seed(seed)
    limit_len = model.rope_cos.size(0)
    ids = [render_prompt(ex.prompt, tok)[-(limit_len - max_tokens):] for ex in examples]
    answers = [ex.answer for ex in examples]
    greedy, sampled, pass_n = [], [], []
    batch = 64  # sequences per generate_batch call
    for i in range(0, len(ids), batch):
        greedy += [parse_completion(c, tok) for c in generate_batch(model, ids[i : i + batch], max_tokens, temperature=0.0,
                                                                    stop_id=stop, vocab_size=tok.vocab_size)]
    if samples:
        per = max(1, batch // samples)  # prompts per call
        for i in range(0, len(ids), per):
            chunk = [p for p in ids[i : i + per] for _ in range(samples)]
            sampled += [parse_completion(c, tok) for c in generate_batch(model, chunk, max_tokens, temperature=temperature, top_k=top_k,
                                                                         generator=gen, stop_id=stop, vocab_size=tok.vocab_size)]
    answers_s = [a for a in answers for _ in range(samples)]
    convs = [ex.prompt for ex in examples]
    convs_s = [c for c in convs for _ in range(samples)]
    metrics = {"prompts_evaluated": len(examples)}
    metrics.update({f"greedy_{k}": v for k, v in score_completions(greedy, answers, scorer, convs).items()})
    if samples:
        scores = scorer.score_batch(convs_s, sampled, answers_s)
        for k in range(len(answers)):
            pass_n.append(1.0 if any(s > 0 for s in scores[k * samples : (k + 1) * samples]) else 0.0)  # a rewarded sample
        metrics.update({f"sampled_{k}": v for k, v in score_completions(sampled, answers_s, scorer, rewards=scores).items()})
        metrics["samples"], metrics["temperature"] = samples, temperature
        metrics[f"pass@{samples}"], metrics[f"pass@{samples}_se"] = _share(pass_n)
    from lmforge.train.trainer import latest_checkpoint, read_state

    ckpt = Path(run) if (Path(run) / "state.json").is_file() else latest_checkpoint(run)
    return PolicyEval(str(run), str(prompts), reward, metrics, read_state(ckpt).get("step") if ckpt else None)


# ---- two policies, judged by a reward model -------------------------------------------------
def win_rate(run_a, run_b, judge, prompts, *, max_tokens: int = 64, limit: int | None = None, device: str = "cpu") -> dict:
    """Greedy answers of two policies to the same prompts, each scored by the reward model
    `judge`: the share of prompts where A's answer scores higher (ties half) with its standard
    error, and each policy's mean score. The three runs must share one tokenizer."""
    import torch

    from lmforge.alignment.chat import load_chat_model, parse_completion, render_prompt
    from lmforge.alignment.data import load_prompts
    from lmforge.alignment.reward import encode_response, score
    from lmforge.train.sample import generate_batch
    from lmforge.train.trainer import TrainingError

    if not Path(prompts).exists():
        raise AlignmentError(f"{prompts}: no such prompts file")
    rm, rm_state = load_reward_model(judge, device)
    try:
        policies = [load_chat_model(run, device, purpose="eval winrate") for run in (run_a, run_b)]
    except TrainingError as exc:
        raise AlignmentError(str(exc)) from None
    tok = policies[0][1]
    for run, (_, t) in zip((run_a, run_b), policies):
        if rm_state.get("tokenizer_fingerprint") and t.fingerprint != rm_state["tokenizer_fingerprint"]:
            raise AlignmentError(f"{run} and the judge {judge} use different tokenizers; judge with a reward model trained on this policy's tokenizer")
    try:
        examples = list(load_prompts(prompts))[:limit]
    except ValueError as exc:
        raise AlignmentError(str(exc)) from None
    stop = tok.special_id("assistant_end")
    max_len = context_limit(rm.gpt)
    scores = []
    for model, t in policies:
        limit_len = model.rope_cos.size(0)
        ids = [render_prompt(ex.prompt, t)[-(limit_len - max_tokens):] for ex in examples]
        answers = []
        for i in range(0, len(ids), 64):
            answers += [parse_completion(c, t) for c in generate_batch(model, ids[i : i + 64], max_tokens, temperature=0.0,
                                                                       stop_id=stop, vocab_size=t.vocab_size)]
        seqs = [encode_response(ex.prompt, a or " ", tok, max_len).ids for ex, a in zip(examples, answers)]
        with torch.no_grad():
            scores.append(score(rm.eval(), seqs, tok.pad_id))
    diff = scores[0] - scores[1]
    wins = ((diff > 0).float() + 0.5 * (diff == 0).float()).tolist()
    rate, se = _share(wins)
    return {"a": str(run_a), "b": str(run_b), "judge": str(judge), "prompts_evaluated": len(examples), "win_rate_a": rate,
            "win_rate_a_se": se, "mean_score_a": float(scores[0].mean()), "mean_score_b": float(scores[1].mean())}
