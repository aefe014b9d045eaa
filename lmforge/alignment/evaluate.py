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
