"""`lmforge eval ...`: score alignment runs on data they were not trained on."""

from __future__ import annotations

import json

import click

from lmforge.cli import LocalPath


@click.group("eval")
def eval_group() -> None:
    """Evaluate alignment runs on held-out data.

    \b
    lmforge eval rm runs/rm --data ../shared/data/align/preference-en-300.json
    """


@eval_group.command("rm")
@click.argument("run", type=LocalPath())
@click.option("--data", required=True, type=LocalPath(), help="Preference pairs: HH-RLHF JSONL(.gz), LLaMA-Factory JSON, or {prompt, chosen, rejected} JSONL.")
@click.option("--max-len", default=None, type=click.IntRange(min=2), help="Tokens per sequence [the model's context]; the prompt is cut from the left.")
@click.option("--batch", default=16, show_default=True, type=click.IntRange(min=1), help="Sequences per forward pass.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the run's].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line instead of the table.")
def rm(run, data, max_len, batch, device, tokenizer_dir, as_json):
    """Pairwise accuracy of a reward model, beside the length baselines on the same pairs.

    Reports accuracy (ties count half) with its standard error, the mean margin, the
    Bradley-Terry loss, "longer wins" and "shorter wins" (what length alone scores) and the
    correlation of the score with response length. A model no better than the better length
    baseline has learned length, not preference.

    \b
    Example:
      lmforge eval rm runs/rm --data hh-rlhf-harmless-test.jsonl.gz
      lmforge eval rm runs/rm --data pairs.jsonl --json
    """
    from lmforge.alignment.evaluate import evaluate_reward_model
    from lmforge.alignment.reward import AlignmentError, format_skipped

    try:
        result = evaluate_reward_model(run, data, max_len=max_len, device=device, batch=batch, tokenizer_dir=tokenizer_dir)
    except AlignmentError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    from rich.console import Console
    from rich.table import Table

    m = result.metrics
    baseline = max(m["longer_wins"], m["shorter_wins"])
    table = Table(title=f"lmforge eval rm: {run} (step {result.step}) on {data}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("pairs", f"{m['pairs']}" + (f" ({format_skipped(result.skipped)} skipped)" if result.skipped else ""))
    table.add_row("accuracy", f"{m['accuracy']:.4f} ± {m['accuracy_se']:.4f}")
    table.add_row("longer wins", f"{m['longer_wins']:.4f}")
    table.add_row("shorter wins", f"{m['shorter_wins']:.4f}")
    table.add_row("accuracy - better length baseline", f"{m['accuracy'] - baseline:+.4f}")
    table.add_row("mean margin", f"{m['margin']:.4f}")
    table.add_row("loss", f"{m['loss']:.4f}")
    table.add_row("score/length correlation", f"{m['length_corr']:+.3f}")
    Console().print(table)
