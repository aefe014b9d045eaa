"""Why GRPO does not sharpen the demo's sums: sampling-free figures on `lmforge demo`'s policies.

`benchmarks/grpo_demo.py` scores policies by sampling, whose noise (±0.02 a figure) hides what
a 30-step run moves. This script measures without sampling, on the demo's GRPO prompts
(`align-data/prompts.jsonl`) and held-out questions:

  * `--runs RUN ...`: each run's teacher-forced log-probability of every reference answer
    ("4 + 7 = 11\\n#### 11" + <|assistant_end|>), by the tokens' role: `content` (operands,
    symbols, sum digits and the copied answer digits; exp of its sum is P(right content |
    the canonical form)), `newline` (the "\\n" after the sum: the choice of the `####` form) and
    each role's mean probability;
  * `--gradients K`: K batches of GRPO gradients at the first run's policy (the demo's 8 x 8
    samples, `--reward`, no update), projected on the directions that raise the content's and
    the newline's log-probability (their teacher-forced gradients on the GRPO prompts): how
    much of a batch's gradient is signal, and how far averaging k batches (k x the samples per
    step) cleans it; then the change of the content log-probability after ONE sign step (what
    Adam's first steps are) along one batch's gradient, the K-batch mean and a random sign
    vector, at three learning rates.

Measured on the demo's SFT run and its 30-step GRPO run (lr 3e-5, `gsm8k`): see the "Why"
section of `benchmarks/grpo_demo.py`. Prints the figures, then one JSON line (last).

Usage:
  nice -n 10 python benchmarks/grpo_diagnose.py      # demo-out/sft against demo-out/rl (a demo is run there first if none is)
  nice -n 10 python benchmarks/grpo_diagnose.py --demo demo-out --runs demo-out/sft demo-out/rl
  nice -n 10 python benchmarks/grpo_diagnose.py --demo demo-out --runs demo-out/sft --gradients 16 --reward number
"""

from __future__ import annotations

import argparse
import json
import math
import statistics as st
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONTENT = ("operand", "sym", "sum", "answer")


def roles(answer: str, ids: list[int], tok) -> list[str]:
    """The role of each token of the demo's answer form "a + b = s\\n#### s" (+ the end token)."""
    eq = answer.split("\n####")[0]
    lhs = eq.split("=")[0]
    out, pos = [], 0
    for t in ids:
        piece = "" if t == tok.assistant_end_id else tok.decode([t])
        last = pos + len(piece) - 1  # the piece's last character decides
        pos += len(piece)
        digit = piece.strip().isdigit()
        if not piece:
            out.append("end")
        elif last < len(lhs):
            out.append("operand" if digit else "sym")
        elif last < len(eq):
            out.append("sum" if digit else "sym")
        elif last == len(eq):
            out.append("newline")
        elif last < len(eq) + 5:
            out.append("hash")
        else:
            out.append("answer" if digit else "sym")
    return out


def reference_batch(examples, tok):
    """(ids (B, T), content mask, newline mask) over the target positions of token_logprobs."""
    import torch

    from lmforge.alignment.chat import render_prompt
    from lmforge.alignment.reward import pad

    seqs, spans = [], []
    for ex in examples:
        p, c = render_prompt(ex.prompt, tok), tok.encode(ex.answer) + [tok.assistant_end_id]
        seqs.append(p + c)
        spans.append((len(p), roles(ex.answer, c, tok)))
    ids, _ = pad(seqs, tok.pad_id)
    masks = {name: torch.zeros(ids.size(0), ids.size(1) - 1) for name in ("content", "newline")}
    role_at = []
    for i, (start, rs) in enumerate(spans):
        role_at.append([(start - 1 + j, r) for j, r in enumerate(rs)])
        for pos, r in role_at[-1]:
            if r in CONTENT or r == "newline":
                masks["content" if r in CONTENT else "newline"][i, pos] = 1
    return ids, masks["content"], masks["newline"], role_at


def teacher_forced(model, examples, tok) -> dict:
    """P(right content | canonical form) (mean over questions), its mean log, and each role's mean p."""
    import torch

    from lmforge.alignment.dpo import token_logprobs

    ids, content, _, role_at = reference_batch(examples, tok)
    with torch.no_grad():
        lp = token_logprobs(model.eval(), ids, tok.vocab_size)
    per_q = (lp * content).sum(1).tolist()
    by: dict[str, list[float]] = {}
    for i, row in enumerate(role_at):
        for pos, r in row:
            by.setdefault(r, []).append(math.exp(lp[i, pos].item()))
    return {"p_content": st.mean(math.exp(x) for x in per_q), "logp_content": st.mean(per_q),
            **{f"p_{r}": st.mean(v) for r, v in sorted(by.items())}}


def gradients(sft: str, prompts: str, reward: str, k: int, seed: int) -> dict:
    import torch

    from lmforge.alignment.dpo import token_logprobs
    from lmforge.alignment.reward import batch_order, load_base
    from lmforge.alignment.rl import RLConfig, RLTrainer, clipped_policy_loss, group_advantages, read_prompts
    from lmforge.pipelines.demo import GRPO

    policy, _, tok = load_base(sft)
    params = list(policy.parameters())
    examples = read_prompts(prompts, "gsm8k")
    ids, content, newline, _ = reference_batch(examples, tok)

    def grad_of(loss) -> torch.Tensor:
        policy.zero_grad(set_to_none=False)
        loss.backward()
        return torch.cat([p.grad.reshape(-1) for p in params]).clone()

    def content_logp() -> float:
        with torch.no_grad():
            return float((token_logprobs(policy, ids, tok.vocab_size) * content).sum() / len(examples))

    d_content = grad_of((token_logprobs(policy, ids, tok.vocab_size) * content).sum() / len(examples))
    d_newline = grad_of((token_logprobs(policy, ids, tok.vocab_size) * newline).sum() / len(examples))
    cfg = RLConfig(method="grpo", policy=sft, prompts=prompts, out_dir="-", seed=seed, **{**GRPO, "reward_fn": reward})
    trainer = RLTrainer(cfg, policy, tok)
    G, gs = cfg.group_size, []
    for t in range(k):  # the batches a run would see, at the starting policy (no update)
        ro = trainer.rollout([examples[i] for i in batch_order(t, cfg.prompts_per_step, list(range(len(examples))), seed)])
        trainer.step_count += 1
        logp = token_logprobs(policy, ro.ids, tok.vocab_size, cfg.temperature)
        adv = group_advantages(ro.rewards.view(-1, G), scale=cfg.scale_rewards).view(-1, 1).expand_as(logp) * ro.mask
        gs.append(-grad_of(clipped_policy_loss(logp, logp.detach(), adv, ro.mask, cfg.clip)[0]))  # ascent direction
    g = torch.stack(gs)
    cos = lambda a, b: float(torch.nn.functional.cosine_similarity(a, b, dim=0))  # noqa: E731
    out = {"reward": reward, "batches": k, "samples_per_batch": cfg.prompts_per_step * G,
           "batch_grad_norm": float(g.norm(dim=1).mean()), "mean_grad_norm": float(g.mean(0).norm()),
           "noise_only_mean_grad_norm": float(g.norm(dim=1).mean()) / math.sqrt(k), "averaged": {}}
    size = 1
    while size <= k:
        chunks = [g[i : i + size].mean(0) for i in range(0, k - size + 1, size)]
        out["averaged"][size] = {"cos_content": st.mean(cos(c, d_content) for c in chunks),
                                 "cos_newline": st.mean(cos(c, d_newline) for c in chunks),
                                 "sign_step_gain_content": st.mean(float(torch.sign(c) @ d_content) for c in chunks)}
        size *= 2
    base, theta = content_logp(), torch.nn.utils.parameters_to_vector(params).clone()
    directions = {"one batch": torch.sign(g[0]), f"mean of {k}": torch.sign(g.mean(0)),
                  "random": torch.sign(torch.randn(theta.shape, generator=torch.Generator().manual_seed(seed)))}
    out["sign_step"] = {}
    for lr in (3e-5, 1e-4, 3e-4):
        for name, d in directions.items():
            torch.nn.utils.vector_to_parameters(theta + lr * d, params)
            out["sign_step"][f"{name} @ {lr:g}"] = content_logp() - base
        torch.nn.utils.vector_to_parameters(theta, params)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--demo", default="demo-out", help="a `lmforge demo` output folder (its align-data/ is read); one is "
                                                      "made there first if it holds no finished demo [demo-out]")
    p.add_argument("--runs", nargs="+", help="policy runs to measure; the first is the baseline [the demo's sft and rl]")
    p.add_argument("--gradients", type=int, default=0, metavar="K", help="K batches of GRPO gradients at the first run")
    p.add_argument("--reward", default="gsm8k", help="reward spec of --gradients [gsm8k]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    from lmforge.alignment.reward import load_base
    from lmforge.alignment.rl import read_prompts

    torch.set_num_threads(args.threads)
    from grpo_demo import demo_folder  # this folder is on sys.path when the script runs

    demo = demo_folder(args.demo)
    args.runs = args.runs or [str(demo / "sft"), str(demo / "rl")]
    data = demo / "align-data"
    sets = {name: read_prompts(data / f"{name}.jsonl", "gsm8k") for name in ("prompts", "heldout")}
    result: dict = {"runs": {}}
    for run in args.runs:
        model, _, tok = load_base(run)
        result["runs"][run] = {name: teacher_forced(model, exs, tok) for name, exs in sets.items()}
        for name, f in result["runs"][run].items():
            print(f"{run}  {name:8s} P(content right) {f['p_content']:.4f}  log {f['logp_content']:+.4f}  "
                  + "  ".join(f"{k[2:]} {v:.3f}" for k, v in f.items() if k not in ("p_content", "logp_content")))
    if args.gradients:
        g = result["gradients"] = gradients(args.runs[0], str(data / "prompts.jsonl"), args.reward, args.gradients, args.seed)
        print(f"GRPO gradients ({g['reward']}, {g['batches']} batches of {g['samples_per_batch']} samples): |batch| "
              f"{g['batch_grad_norm']:.3f}, |mean| {g['mean_grad_norm']:.3f} (noise alone: {g['noise_only_mean_grad_norm']:.3f})")
        for size, f in g["averaged"].items():
            print(f"  mean of {size:2d} batches: cos(content) {f['cos_content']:+.3f}  cos(newline) {f['cos_newline']:+.3f}  "
                  f"content gain per unit sign step {f['sign_step_gain_content']:+.1f}")
        for name, v in g["sign_step"].items():
            print(f"  one sign step along {name}: content log-prob {v:+.4f}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
