"""`lmforge train` and `lmforge sample`: parse options, call the library, print a summary."""

from __future__ import annotations

import os

import click

from lmforge.cli import Finite, LocalPath, progress_option, tracker_option, threads_option
from lmforge.locks import locks_output

from lmforge.train.presets import PRESETS


def _console():
    from rich.console import Console

    return Console(stderr=True)


@click.command("train")
@click.option("--manifest", "-m", required=True, type=LocalPath(urls=True),
              help="Mixture manifest (mix.json) from `lmforge mix build`; an s3:// URL is fetched with its shards to the local staging cache.")
@click.option("--preset", "-p", default=None, type=click.Choice(list(PRESETS)),
              help="Model shape [tiny; with --init-from: the source's shape, and a preset naming another is refused].")
@click.option("--init-from", "init_from", default=None, type=LocalPath(exists=True), metavar="RUN_OR_HF_DIR",
              help="Start from these weights: an lmforge run (its newest checkpoint) or checkpoint folder, or a Hugging Face "
                   "Llama-family folder; the model config comes from it, the optimizer and schedule start at step 0.")
@click.option("--steps", default=200, show_default=True, type=click.IntRange(min=1), help="Optimizer steps in total (a resumed run counts from 0).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed for weights and data order.")
@click.option("-o", "--out", "out_dir", required=True, type=LocalPath(), help="Run folder: checkpoints, metrics.jsonl, loss.png.")
@click.option("--batch-tokens", type=click.IntRange(min=1), default=None, help="Global batch in tokens, over all processes [preset default].")
@click.option("--micro-batch", type=click.IntRange(min=1), default=None, help="Sequences per forward pass per process [preset default].")
@click.option("--lr", type=Finite(min=0, min_open=True), default=None, help="Peak learning rate [preset default].")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0), help="Linear warm-up steps.")
@click.option("--schedule", default="cosine", show_default=True, type=click.Choice(["cosine", "wsd"]), help="Decay after warm-up.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the model [on with --device cuda, off on CPU].")
@click.option("--optimizer", default="adamw", show_default=True, type=click.Choice(["adamw", "muon"]),
              help="muon: Muon (lr --muon-lr) for the block matrices, AdamW (--lr) for embeddings and head.")
@click.option("--muon-lr", default=0.02, show_default=True, type=Finite(min=0, min_open=True), help="Muon's peak learning rate.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "bf16", "fp32"]),
              help="auto: bf16 autocast on CUDA and on CPUs with AVX512-BF16 or AMX, float32 elsewhere; a resumed run keeps its precision.")
@click.option("--checkpoint-every", default=100, show_default=True, type=click.IntRange(min=0), help="Steps between checkpoints (0: at the end only).")
@click.option("--eval-every", default=50, show_default=True, type=click.IntRange(min=0), help="Steps between validation passes (0: at the end only).")
@click.option("--eval-tokens", default=8192, show_default=True, type=click.IntRange(min=1), help="Validation tokens per source per pass.")
@click.option("--resume", is_flag=True,
              help="Only continue: refuse to start a new run if -o holds none. Without it, a rerun of the same command "
                   "resumes anyway (after a crash, from the newest checkpoint, exactly).")
@click.option("--overwrite", is_flag=True, help="Start over: delete the run in -o (its checkpoints, metrics and settings), "
                                                "e.g. to train it again with other settings.")
@threads_option
@click.option("--fsdp", is_flag=True,
              help="Under torchrun: shard weights, gradients and AdamW state over the processes (FSDP2) instead of "
                   "copying them (DDP), for models that do not fit one device; a run resumes the way it started.")
@click.option("--log-every", type=click.IntRange(min=1), default=None,
              help="Steps between reads of the loss from the device [1 on CPU; 10 on CUDA, where each read waits for the GPU].")
@progress_option
@tracker_option
@locks_output("out_dir")
def train(manifest, preset, init_from, steps, seed, out_dir, batch_tokens, micro_batch, lr, warmup, schedule, device, compile_,
          optimizer, muon_lr, precision, checkpoint_every, eval_every, eval_tokens, resume, overwrite, threads, fsdp, log_every, progress,
          trackers):
    """Pretrain a GPT on a mixture manifest; resumable, and data parallel under torchrun.

    The run folder records the settings that decide what it computes: the same command again
    resumes it (after a crash: from the newest checkpoint, to exactly the uninterrupted run's
    output) or, when it is finished, does nothing; other settings are refused by name unless
    --overwrite. --micro-batch, --device, --compile, --threads, --log-every and --checkpoint-every may differ.

    On CUDA: bf16 autocast, torch.compile, fused AdamW, FlashAttention (SDPA), TF32, pinned
    asynchronous loading, and no wait for the GPU inside a step (the loss is read every
    --log-every steps and before each checkpoint); metrics.jsonl carries MFU against the GPU's
    datasheet bf16 peak.

    \b
    Examples:
      lmforge train -m mix/mix.json -p tiny --steps 300 -o runs/tiny
      lmforge train -m mix/mix.json -p tiny --steps 300 -o runs/tiny   # again after a crash: resumes
      lmforge train -m mix/mix.json -p tiny --steps 600 -o runs/tiny --overwrite   # start over
      torchrun --nproc_per_node 8 --no-python lmforge train -m mix/mix.json -p d12 \\
          --device cuda --steps 5000 -o runs/d12
      torchrun --nproc_per_node 8 --no-python lmforge train -m mix/mix.json -p d24 \\
          --device cuda --fsdp --steps 5000 -o runs/d24
      lmforge train -m mix2/mix.json --init-from runs/tiny --steps 300 -o runs/tiny-more   # continued pretraining
      lmforge train -m mix/mix.json --init-from hf/my-llama --steps 300 -o runs/llama
      lmforge train -m s3://bucket/mix.json -p tiny --steps 300 -o runs/tiny   # fetched to the staging cache
    """
    from lmforge.progress import ProgressBar
    from lmforge.train.data import DataError
    from lmforge.train.trainer import TrainConfig, TrainingError, train as run_training

    rank0 = int(os.environ.get("RANK", "0")) == 0
    if "://" in manifest:  # the manifest and its shards, downloaded once and checked against its sha256s
        from lmforge.tokenize.mix import fetch_manifest

        manifest = str(fetch_manifest(manifest))
    try:
        cfg = TrainConfig(
            manifest=manifest, out_dir=out_dir, preset=preset, init_from=init_from, steps=steps, seed=seed, batch_tokens=batch_tokens,
            micro_batch=micro_batch, lr=lr, warmup=warmup, schedule=schedule, device=device, compile=compile_,
            optimizer=optimizer, muon_lr=muon_lr, precision=precision, checkpoint_every=checkpoint_every, eval_every=eval_every, eval_tokens=eval_tokens, resume=resume, overwrite=overwrite, threads=threads,
            log_every=log_every, fsdp=fsdp, trackers=trackers,
        )
        shown = rank0 and progress  # the bar: rank 0 only
        with ProgressBar("train", cfg.steps, info=True, transient=False, disable=not shown) as bar:
            summary = run_training(cfg, on_step=bar.on_step(_step_info) if shown else None)
    except (TrainingError, DataError) as exc:
        raise click.ClickException(str(exc)) from None
    if rank0:
        _print_summary(summary)


def _step_info(row: dict) -> str:
    return f"loss {row['loss']:.4f}  {row['tokens_per_s']:,.0f} tok/s"


def _print_summary(s) -> None:
    from rich.table import Table

    console = _console()
    if s.finished_earlier:
        console.print(f"{s.run_dir}: already finished ({s.steps} steps); nothing to do", soft_wrap=True)
    table = Table(title=f"lmforge train: {s.run_dir}", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("steps", f"{s.steps}" + (f" (resumed at {s.resumed_from})" if s.resumed_from is not None else ""))
    table.add_row("tokens", f"{s.tokens:,}")
    table.add_row("parameters", f"{s.params:,}")
    if s.init_from:
        table.add_row("started from", str(s.init_from))
    table.add_row("processes", str(s.world_size))
    table.add_row("precision", "bf16 autocast" if s.precision == "bf16" else "float32")
    if s.first_loss is not None:
        table.add_row("train loss", f"{s.first_loss:.4f} -> {s.loss:.4f}")
    for name, v in sorted(s.val.items()):
        bpb = f", {v['bpb']:.4f} bits/byte" if v.get("bpb") is not None else ""
        table.add_row(f"val {name}", f"{v['loss']:.4f}{bpb}")
    table.add_row("tokens/s", f"{s.tokens_per_s:,.0f}")
    if s.mfu is not None:
        table.add_row("MFU", f"{100 * s.mfu:.1f}%" + (f" of {s.mfu_peak}" if s.mfu_peak else ""))
    table.add_row("time", f"{s.seconds:.1f} s")
    if s.checkpoint is not None:
        table.add_row("checkpoint", str(s.checkpoint))
    if s.plot is not None:
        table.add_row("plot", str(s.plot))
    console.print(table)


@click.command("sample")
@click.argument("run", type=LocalPath())
@click.option("--prompt", default="", help="Text to continue (BOS is put before it).")
@click.option("--max-tokens", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.8, show_default=True, type=Finite(min=0), help="0 for greedy decoding.")
@click.option("--top-k", default=50, show_default=True, type=click.IntRange(min=0), help="Sample among the k likeliest tokens (0: all).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the one the run trained with].")
def sample(run, prompt, max_tokens, temperature, top_k, seed, device, tokenizer_dir):
    """Generate text from the newest checkpoint of a run, with a KV cache.

    \b
    Example:
      lmforge sample runs/tiny --prompt "The history of" --max-tokens 60 --temperature 0.8
    """
    from lmforge.tokenize import TokenizerError
    from lmforge.train.sample import sample_text
    from lmforge.train.trainer import TrainingError

    try:
        text = sample_text(run, prompt, max_tokens, temperature=temperature, top_k=top_k or None, seed=seed,
                           device=device, tokenizer_dir=tokenizer_dir)
    except (TrainingError, TokenizerError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(prompt + text)


@click.group()
def _main():
    """lmforge train / sample (standalone entry: python -m lmforge.train.cli)."""


_main.add_command(train)
_main.add_command(sample)

if __name__ == "__main__":  # pragma: no cover
    _main()
