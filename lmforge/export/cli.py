"""`lmforge export ...`: runs out to other ecosystems."""

from __future__ import annotations

import click

from lmforge.cli import LocalPath
from lmforge.locks import locks_output


@click.group("export")
def export() -> None:
    """Export runs for other tools.

    \b
    lmforge export hf runs/sft -o hf/sft     # transformers, lm-eval, vLLM
    """


@export.command("hf")
@click.argument("run", type=LocalPath())
@click.option("-o", "--out", "out_dir", required=True, type=LocalPath(), help="Folder to write the Hugging Face model into.")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "bfloat16", "float16"]),
              help="Data type of the exported weights.")
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the run's].")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty -o folder.")
@locks_output("out_dir")
def hf(run, out_dir, dtype, tokenizer_dir, overwrite):
    """Write RUN (its newest checkpoint, or a step_N folder) as a Hugging Face model folder.

    config.json + model.safetensors + generation_config.json (transformers' Arcee
    architecture: no custom code, no trust_remote_code) and the complete tokenizer: BOS added
    on encode, the chat template, <|assistant_end|> as EOS for chat models. A reward model
    (`lmforge align rm`) becomes a one-label sequence-classification model.

    \b
    Example:
      lmforge export hf runs/sft -o hf/sft
      python -c "from transformers import pipeline; print(pipeline('text-generation', 'hf/sft')('Hi'))"
      lm_eval --model hf --model_args pretrained=hf/sft,add_bos_token=True --tasks hellaswag
    """
    from lmforge.export.hf import export_hf

    s = export_hf(run, out_dir, tokenizer_dir=tokenizer_dir, dtype=dtype, overwrite=overwrite)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lmforge export hf: {s.run} -> {s.out_dir}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in [
        ("checkpoint", f"{s.checkpoint.name} (step {s.step})"),
        ("kind", s.kind),
        ("architecture", s.architecture),
        ("parameters", f"{s.parameters:,}"),
        ("vocabulary", f"{s.vocab_size:,} (lmforge's padded {s.padded_vocab_size:,}: the padding rows dropped)"),
        ("dtype", s.dtype),
        *([("stops at (eos)", s.eos)] if s.kind != "reward model" else []),
        *([("score offset", f"lmforge's score = HF's + {s.reward_bias:g} (the head bias HF lacks; margins equal)")]
          if s.reward_bias else []),
        *((name, f"{size:,} bytes") for name, size in s.files.items()),
    ]:
        table.add_row(what, value)
    Console().print(table)
