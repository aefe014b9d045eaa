"""`lmforge align rl`: parse options, run GRPO or PPO, print a summary."""

from __future__ import annotations

import click

from lmforge.cli import Finite, LocalPath, RewardSpec, run_folder_options, tracker_option, progress_option, threads_option
from lmforge.locks import locks_output


@click.command("rl")
@click.option("--method", default="grpo", show_default=True, type=click.Choice(["grpo", "ppo"]),
              help="grpo: verifiable rewards, group-normalised advantages. ppo: reward model, value head, GAE.")
@click.option("--policy", required=True, type=LocalPath(), help="SFT run: the starting policy and the frozen KL reference.")
@click.option("--prompts", required=True, type=LocalPath(), help='Prompts as {"question", "answer"} JSONL (GSM8K).')
@click.option("-o", "--out", "out_dir", required=True, type=LocalPath(), help="Run folder: checkpoints, metrics.jsonl.")
@click.option("--reward", default=None, type=LocalPath(), help="PPO: reward-model run from `lmforge align rm`.")
@click.option("--reward-fn", default="gsm8k", show_default=True, type=RewardSpec(),
              help="GRPO: reward(s), comma-separated, each a name (gsm8k: the `#### n` number matches; format: the answer has that form; number: the `#### n` or else the last number matches; gsm8k,number pays a right sum without `####` half), "
                   "rm:RUN (the score of a reward-model run from `align rm` on the prompt + completion, scored in batches), or a plugin "
                   "package.module:function(completion, reference) -> float, with an optional @weight, e.g. gsm8k,format@0.1.")
@click.option("--steps", default=50, show_default=True, type=click.IntRange(min=1), help="Rollout + update steps.")
@click.option("--prompts-per-step", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--group-size", "-G", default=4, show_default=True, type=click.IntRange(min=1), help="Completions sampled per prompt.")
@click.option("--max-new-tokens", default=64, show_default=True, type=click.IntRange(min=1), help="Longest completion.")
@click.option("--temperature", default=1.0, show_default=True, type=Finite(min=0), help="Sampling temperature; must be > 0 (completions of a prompt must differ to be compared).")
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(min=0), help="Sample among the k likeliest tokens (0: all).")
@click.option("--lr", default=1e-5, show_default=True, type=Finite(min=0, min_open=True))
@click.option("--clip", "--epsilon", "clip", default=0.2, show_default=True, type=Finite(min=0, min_open=True), help="Ratio clipping epsilon.")
@click.option("--kl-coef", "--beta", "kl_coef", default=None, type=Finite(min=0),
              help="GRPO: KL weight (beta) in the loss [0, as TRL: DAPO, Dr. GRPO and Open-Reasoner-Zero found the KL term "
                   "unneeded with verifiable rewards; the KL is still logged]; PPO: per-token KL penalty in the reward [0.04]. "
                   "A continued run keeps the value it recorded (runs from before the GRPO default became 0: 0.04).")
@click.option("--epochs", "--num-iterations", "epochs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Update passes over each rollout (TRL's num_iterations); > 1 makes the ratio clipping (--clip, --clip-high) bite.")
@click.option("--loss-type", default="dapo", show_default=True, type=click.Choice(["dapo", "grpo", "dr_grpo"]),
              help="GRPO loss reduction: dapo, the mean over all completion tokens (TRL's default); grpo, per-sequence means "
                   "averaged (short answers weigh more per token); dr_grpo, the token sum over sequences x --max-new-tokens.")
@click.option("--scale-rewards", default="group", show_default=True, type=click.Choice(["group", "batch", "none"]),
              help="GRPO advantages divided by the group's reward std, the batch's, or not at all (Dr. GRPO).")
@click.option("--clip-high", "--epsilon-high", "clip_high", default=None, type=Finite(min=0, min_open=True), help="Upper ratio clip (DAPO's clip-higher, e.g. 0.28) [--clip].")
@click.option("--mask-truncated", is_flag=True, help="GRPO: completions cut at --max-new-tokens (no end-of-turn) take no part in the loss.")
@click.option("--gamma", default=1.0, show_default=True, type=Finite(0, 1), help="PPO discount.")
@click.option("--lam", default=0.95, show_default=True, type=Finite(0, 1), help="PPO GAE lambda.")
@click.option("--vf-coef", default=0.1, show_default=True, type=Finite(min=0), help="PPO value-loss weight.")
@click.option("--checkpoint-every", default=25, show_default=True, type=click.IntRange(min=0), help="Steps between checkpoints (0: at the end only).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed for prompt order and sampling.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the policy run's].")
@run_folder_options(more_steps_continue=True)
@threads_option
@tracker_option
@progress_option
@locks_output("out_dir")
def rl(method, policy, prompts, out_dir, reward, reward_fn, steps, prompts_per_step, group_size, max_new_tokens, temperature,
       top_k, lr, clip, kl_coef, epochs, loss_type, scale_rewards, clip_high, mask_truncated, gamma, lam, vf_coef, checkpoint_every,
       seed, device, tokenizer_dir, resume, overwrite, threads, trackers, progress):
    """Reinforcement learning on a policy: GRPO with verifiable rewards, or PPO against a reward model.

    Each step samples --group-size completions for each of --prompts-per-step prompts with
    the KV cache, scores them, and takes a clipped policy-gradient step (PPO: with a KL
    penalty to the frozen starting policy; GRPO: only with --kl-coef, the KL is logged either
    way). Metrics: mean reward, KL, clipped share, completion length.

    \b
    Examples:
      lmforge align rl --method grpo --policy runs/sft \\
          --prompts ../shared/data/align/gsm8k-train-7473.jsonl -o runs/grpo --steps 50 -G 8
      lmforge align rl --method ppo --policy runs/sft --reward runs/rm \\
          --prompts ../shared/data/align/gsm8k-train-7473.jsonl -o runs/ppo --steps 50
      lmforge align rl --method grpo --policy runs/sft --reward-fn rm:runs/rm,format@0.1 \\
          --prompts prompts.jsonl -o runs/grpo-rm --num-iterations 2 --epsilon-high 0.28
    """
    from lmforge.alignment.reward import AlignmentError, print_summary
    from lmforge.alignment.rl import RLConfig, train_rl
    from lmforge.progress import ProgressBar

    try:
        cfg = RLConfig(method=method, policy=policy, prompts=prompts, out_dir=out_dir, reward=reward, reward_fn=reward_fn,
                       steps=steps, prompts_per_step=prompts_per_step, group_size=group_size, max_new_tokens=max_new_tokens,
                       temperature=temperature, top_k=top_k or None, lr=lr, clip=clip, kl_coef=kl_coef, epochs=epochs,
                       loss_type=loss_type, scale_rewards=scale_rewards, clip_high=clip_high, mask_truncated=mask_truncated,
                       gamma=gamma, lam=lam, vf_coef=vf_coef, checkpoint_every=checkpoint_every, seed=seed, device=device,
                       resume=resume, overwrite=overwrite, tokenizer_dir=tokenizer_dir, threads=threads, trackers=trackers)
        with ProgressBar(method, steps, info=True, transient=False, lazy=True, disable=not progress) as bar:
            summary = train_rl(cfg, bar.on_step(("reward", "kl", "completion_len")))
    except AlignmentError as exc:
        raise click.ClickException(str(exc)) from None
    print_summary(f"lmforge align rl ({method})", summary,
                  [("reward", "mean reward"), ("kl", "KL to reference"), ("clip_frac", "clipped share"),
                   ("completion_len", "completion tokens"), ("ended", "ended with end-of-turn"), ("value_loss", "value loss")])
