"""`lmforge align sft`: parse options, call `lmforge.alignment.sft.sft`, print a summary."""

from __future__ import annotations

import click

from lmforge.cli import Finite, LocalPath, run_folder_options, tracker_option, progress_option, threads_option
from lmforge.locks import locks_output


def _console():
    from rich.console import Console

    return Console(stderr=True)


@click.command("sft")
@click.option("--base", required=True, type=LocalPath(), help="Pretrained run (its newest checkpoint), a checkpoint folder, or a Llama-family Hugging Face model folder.")
@click.option("--data", "data", required=True, multiple=True, type=LocalPath(),
              help="Conversation file: Alpaca JSON, messages JSONL, self-instruct JSONL, ShareGPT JSON (repeatable).")
@click.option("-o", "--out", "out_dir", required=True, type=LocalPath(), help="Run folder: checkpoints, metrics.jsonl, loss.png.")
@click.option("--steps", default=200, show_default=True, type=click.IntRange(min=1), help="Optimizer steps in total (a resumed run counts from 0).")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1), help="Conversations per optimizer step.")
@click.option("--micro-batch", default=None, type=click.IntRange(min=1), help="Conversations per forward pass (gradient accumulation) [batch size].")
@click.option("--lr", default=1e-4, show_default=True, type=Finite(min=0, min_open=True), help="Peak learning rate (warm-up, then cosine).")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0), help="Linear warm-up steps.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed for the data order and the validation split.")
@click.option("--val-fraction", default=0.05, show_default=True, type=Finite(0, 1, max_open=True), help="Share of conversations held out for validation loss.")
@click.option("--max-tokens", default=None, type=click.IntRange(min=2), help="Cut conversations at this many tokens [the model's context + 1].")
@click.option("--format", "fmt", default="auto", show_default=True,
              type=click.Choice(["auto", "alpaca", "messages", "prompt-completion", "self-instruct", "sharegpt"]), help="Record layout of --data.")
@click.option("--eval-every", default=50, show_default=True, type=click.IntRange(min=0), help="Steps between validation passes (0: at the end only).")
@click.option("--checkpoint-every", default=100, show_default=True, type=click.IntRange(min=0), help="Steps between checkpoints (0: at the end only).")
@run_folder_options()
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the one the base run trained with].")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@threads_option
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "bf16", "fp32"]),
              help="auto: bf16 autocast on CUDA and on CPUs with AVX512-BF16 or AMX, float32 elsewhere; a resumed run keeps its precision.")
@tracker_option
@progress_option
@locks_output("out_dir")
def sft(base, data, out_dir, steps, batch_size, micro_batch, lr, warmup, seed, val_fraction, max_tokens, fmt, eval_every,
        checkpoint_every, resume, overwrite, tokenizer_dir, device, threads, precision, trackers, progress):
    """Supervised fine-tuning of a pretrained run on conversations (loss on assistant tokens only).

    The run folder records the settings, base checkpoint and data it was made with: the same
    command again resumes it (or, finished, does nothing); other settings are refused by name
    unless --overwrite. --micro-batch, --device, --threads and --checkpoint-every may differ.

    \b
    Examples:
      lmforge align sft --base runs/tiny --data ../shared/data/align/alpaca-en-999.json -o runs/sft --steps 200
      lmforge align sft --base runs/tiny --data alpaca.json --data chats.jsonl -o runs/sft \\
          --batch-size 32 --micro-batch 8 --lr 5e-4 --val-fraction 0.1
      lmforge align sft --base runs/tiny --data alpaca.json -o runs/sft --steps 200   # again after a crash: resumes
      lmforge chat runs/sft --prompt "Give three tips for staying healthy."
    """
    from lmforge.alignment.sft import SFTConfig, sft as run_sft
    from lmforge.progress import ProgressBar
    from lmforge.train.trainer import TrainingError

    try:
        cfg = SFTConfig(base=base, data=list(data), out_dir=out_dir, steps=steps, batch_size=batch_size, micro_batch=micro_batch,
                        lr=lr, warmup=warmup, seed=seed, val_fraction=val_fraction, max_tokens=max_tokens, fmt=fmt,
                        eval_every=eval_every, checkpoint_every=checkpoint_every, resume=resume, overwrite=overwrite, tokenizer_dir=tokenizer_dir,
                        device=device, threads=threads, trackers=trackers, precision=precision)
        with ProgressBar("sft", steps, info=True, transient=False, disable=not progress) as bar:
            summary = run_sft(cfg, on_step=bar.on_step(_step_info))
    except TrainingError as exc:  # SFTError included
        raise click.ClickException(str(exc)) from None
    _print_summary(summary)


def _step_info(row: dict) -> str:
    val = row.get("val_loss/heldout")
    return f"loss {row['loss']:.4f}" + (f"  val {val:.4f}" if val is not None else "")


def _print_summary(s) -> None:
    from rich.table import Table

    if s.finished_earlier:
        _console().print(f"{s.run_dir}: already finished ({s.steps} steps); nothing to do", soft_wrap=True)
    table = Table(title=f"lmforge align sft: {s.run_dir}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("base", str(s.base))
    table.add_row("steps", f"{s.steps}" + (f" (resumed at {s.resumed_from})" if s.resumed_from is not None else ""))
    c = s.conversations
    table.add_row("conversations", f"{c['train']:,} train, {c['val']:,} val ({s.epochs:.2f} epochs)")
    if c["truncated"] or c["dropped"] or c["skipped"]:
        table.add_row("data issues", f"{c['truncated']} cut at max tokens, {c['dropped']} dropped (no answer left), "
                                     f"{c['skipped']} malformed records skipped")
    if s.first_loss is not None:
        table.add_row("train loss (assistant tokens)", f"{s.first_loss:.4f} -> {s.loss:.4f}")
    if s.val_loss is not None:
        before = f"{s.base_val_loss:.4f} -> " if s.base_val_loss is not None else ""
        table.add_row("val loss (assistant tokens)", f"{before}{s.val_loss:.4f}")
    table.add_row("time", f"{s.seconds:.1f} s")
    if s.checkpoint is not None:
        table.add_row("checkpoint", str(s.checkpoint))
    if s.plot is not None:
        table.add_row("plot", str(s.plot))
    _console().print(table)
