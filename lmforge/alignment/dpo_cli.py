"""`lmforge align dpo`: parse options, run DPO, print a summary."""

from __future__ import annotations

import click

from lmforge.cli import Finite, LocalPath, run_folder_options, tracker_option, progress_option, threads_option
from lmforge.locks import locks_output


@click.command("dpo")
@click.option("--policy", required=True, type=LocalPath(), help="SFT (or pretrained) run: the starting policy and the frozen reference.")
@click.option("--data", required=True, type=LocalPath(), help="Preferences: HH-RLHF JSONL(.gz), LLaMA-Factory JSON, or {prompt, chosen, rejected} JSONL.")
@click.option("-o", "--out", "out_dir", required=True, type=LocalPath(), help="Run folder: checkpoints, metrics.jsonl.")
@click.option("--steps", default=200, show_default=True, type=click.IntRange(min=1), help="Optimizer steps.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Preference pairs per step.")
@click.option("--beta", default=0.1, show_default=True, type=Finite(min=0, min_open=True), help="KL strength: higher keeps the policy closer to the reference.")
@click.option("--lr", default=5e-5, show_default=True, type=Finite(min=0, min_open=True), help="Peak learning rate (linear warm-up, then constant).")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0))
@click.option("--val-fraction", default=0.1, show_default=True, type=Finite(0, 1, max_open=True), help="Share of pairs held out for evaluation.")
@click.option("--max-len", default=None, type=click.IntRange(min=2), help="Tokens per sequence [the model's context]; the prompt is cut from the left.")
@click.option("--eval-every", default=50, show_default=True, type=click.IntRange(min=0), help="Steps between held-out evaluations (0: at the end only).")
@click.option("--checkpoint-every", default=100, show_default=True, type=click.IntRange(min=0), help="Steps between checkpoints (0: at the end only).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the policy run's].")
@run_folder_options(more_steps_continue=True)
@threads_option
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "bf16", "fp32"]),
              help="auto: bf16 autocast on CUDA and on CPUs with AVX512-BF16 or AMX, float32 elsewhere; a resumed run keeps its precision.")
@tracker_option
@progress_option
@locks_output("out_dir")
def dpo(policy, data, out_dir, steps, batch_size, beta, lr, warmup, val_fraction, max_len, eval_every, checkpoint_every,
        seed, device, tokenizer_dir, resume, overwrite, threads, precision, trackers, progress):
    """Direct Preference Optimisation against a frozen copy of the starting policy.

    Reports the implied rewards beta * (log pi - log ref) of chosen and rejected answers,
    their margin and the share of pairs ranked right, on training and held-out pairs. The
    first loss is log 2 = 0.6931. The output is a policy run that `lmforge sample` reads.

    \b
    Example:
      lmforge align dpo --policy runs/sft --data ../shared/data/align/preference-en-300.json \\
          -o runs/dpo --steps 200 --beta 0.1 --lr 5e-5
    """
    from lmforge.alignment.dpo import DPOConfig, train_dpo
    from lmforge.alignment.reward import AlignmentError, print_summary
    from lmforge.progress import ProgressBar

    try:
        cfg = DPOConfig(policy=policy, data=data, out_dir=out_dir, steps=steps, batch_size=batch_size, beta=beta, lr=lr,
                        warmup=warmup, val_fraction=val_fraction, max_len=max_len, eval_every=eval_every,
                        checkpoint_every=checkpoint_every, seed=seed, device=device, resume=resume, overwrite=overwrite, tokenizer_dir=tokenizer_dir, threads=threads, trackers=trackers, precision=precision)
        with ProgressBar("dpo", steps, info=True, transient=False, lazy=True, disable=not progress) as bar:
            summary = train_dpo(cfg, bar.on_step(("loss", "margin", "accuracy")))
    except AlignmentError as exc:
        raise click.ClickException(str(exc)) from None
    print_summary("lmforge align dpo", summary, [("loss", "train loss"), ("margin", "train margin"), ("accuracy", "train accuracy"),
                                                 ("reward_chosen", "reward chosen"), ("reward_rejected", "reward rejected")])
