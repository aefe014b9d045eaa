"""`lmforge eval ...`: score alignment runs on data they were not trained on."""

from __future__ import annotations

import json

import click

from lmforge.cli import LocalPath, RewardSpec, threads_option


@click.group("eval")
def eval_group() -> None:
    """Evaluate alignment runs on held-out data.

    \b
    lmforge eval rm runs/rm --data ../shared/data/align/preference-en-300.json
    lmforge eval policy runs/rl --prompts gsm8k-test.jsonl --limit 200 --samples 8
    lmforge eval winrate runs/ppo runs/sft --judge runs/rm --prompts prompts.jsonl
    """


def _evaluate(function, *args, threads: int | None = None, **kwargs):
    """`function(*args, **kwargs)` on `threads` CPU threads, its AlignmentError (a user's mistake) as one line."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from lmforge.alignment.reward import AlignmentError

    try:
        return function(*args, **kwargs)
    except AlignmentError as exc:
        raise click.ClickException(str(exc)) from None


@eval_group.command("rm")
@click.argument("run", type=LocalPath())
@click.option("--data", required=True, type=LocalPath(), help="Preference pairs: HH-RLHF JSONL(.gz), LLaMA-Factory JSON, or {prompt, chosen, rejected} JSONL.")
@click.option("--max-len", default=None, type=click.IntRange(min=2), help="Tokens per sequence [the model's context]; the prompt is cut from the left.")
@click.option("--batch", default=16, show_default=True, type=click.IntRange(min=1), help="Sequences per forward pass.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the run's].")
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line instead of the table.")
def rm(run, data, max_len, batch, device, tokenizer_dir, threads, as_json):
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
    from lmforge.alignment.reward import format_skipped

    result = _evaluate(evaluate_reward_model, run, data, max_len=max_len, device=device, batch=batch, tokenizer_dir=tokenizer_dir,
                       threads=threads)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    m = result.metrics
    baseline = max(m["longer_wins"], m["shorter_wins"])
    _print_table(f"lmforge eval rm: {run} (step {result.step}) on {data}", [
        ("pairs", f"{m['pairs']}" + (f" ({format_skipped(result.skipped)} skipped)" if result.skipped else "")),
        ("accuracy", f"{m['accuracy']:.4f} ± {m['accuracy_se']:.4f}"),
        ("longer wins", f"{m['longer_wins']:.4f}"),
        ("shorter wins", f"{m['shorter_wins']:.4f}"),
        ("accuracy - better length baseline", f"{m['accuracy'] - baseline:+.4f}"),
        ("mean margin", f"{m['margin']:.4f}"),
        ("loss", f"{m['loss']:.4f}"),
        ("score/length correlation", f"{m['length_corr']:+.3f}"),
    ])


def _print_table(title: str, rows: list[tuple[str, str]]) -> None:
    """The summary table of an eval command: (what, value) rows."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in rows:
        table.add_row(what, value)
    Console().print(table)


@eval_group.command("policy")
@click.argument("run", type=LocalPath())
@click.option("--prompts", required=True, type=LocalPath(), help='Prompts with reference answers: {"question", "answer"} JSONL (GSM8K).')
@click.option("--reward", default="gsm8k", show_default=True, type=RewardSpec(), help="Reward spec, as align rl --reward-fn: names (gsm8k, format, number), rm:RUN (a reward model), package.module:function plugins, @weights.")
@click.option("--samples", default=4, show_default=True, type=click.IntRange(min=0), help="Sampled answers per prompt (0: greedy only).")
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Sampling temperature.")
@click.option("--top-k", default=None, type=click.IntRange(min=1), help="Sample among the k most likely tokens [all].")
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1), help="Longest answer, in tokens.")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Evaluate the first N prompts only [all].")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the run's].")
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line instead of the table.")
def policy(run, prompts, reward, samples, temperature, top_k, max_tokens, limit, seed, device, tokenizer_dir, threads, as_json):
    """Greedy and sampled reward of a policy on a fixed prompt set.

    Each figure comes with its standard error, and the reward is split in two: format
    compliance (the answer has the form the reward scores) and accuracy among formatted
    answers, so a policy that only learned the format shows as such.

    \b
    Example:
      lmforge eval policy runs/rl --prompts gsm8k-test.jsonl --limit 200 --samples 8
      lmforge eval policy runs/sft --prompts gsm8k-test.jsonl --samples 0 --json   # greedy only
    """
    from lmforge.alignment.evaluate import evaluate_policy

    result = _evaluate(evaluate_policy, run, prompts, reward=reward, samples=samples, temperature=temperature, top_k=top_k,
                       max_tokens=max_tokens, limit=limit, seed=seed, device=device, tokenizer_dir=tokenizer_dir, threads=threads)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    from rich.console import Console
    from rich.table import Table

    m = result.metrics
    table = Table(title=f"lmforge eval policy: {run} (step {result.step}), {m['prompts_evaluated']} prompts, reward {reward}")
    table.add_column("what")
    for kind in ("greedy", "sampled"):
        if f"{kind}_reward" in m:
            table.add_column(kind if kind == "greedy" else f"sampled (n={m['samples']}, T={m['temperature']:g})", justify="right")
    kinds = [k for k in ("greedy", "sampled") if f"{k}_reward" in m]
    for key, label in (("reward", "reward"), ("formatted", "formatted answers"), ("accuracy_formatted", "accuracy among formatted")):
        table.add_row(label, *(f"{m[f'{k}_{key}']:.3f} ± {m[f'{k}_{key}_se']:.3f}" for k in kinds))
    if samples:
        table.add_row(f"pass@{samples}", "", f"{m[f'pass@{samples}']:.3f} ± {m[f'pass@{samples}_se']:.3f}")
    Console().print(table)


@eval_group.command("winrate")
@click.argument("run_a", type=LocalPath())
@click.argument("run_b", type=LocalPath())
@click.option("--judge", required=True, type=LocalPath(), help="Reward-model run (`lmforge align rm`) that scores both answers.")
@click.option("--prompts", required=True, type=LocalPath(), help='Prompts: {"question", ...} JSONL.')
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1), help="Longest answer, in tokens.")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="The first N prompts only [all].")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line instead of the table.")
def winrate(run_a, run_b, judge, prompts, max_tokens, limit, device, threads, as_json):
    """Win rate of policy A over policy B, their greedy answers judged by a reward model.

    \b
    Example:
      lmforge eval winrate runs/ppo runs/sft --judge runs/rm --prompts prompts.jsonl --limit 200
    """
    from lmforge.alignment.evaluate import win_rate

    m = _evaluate(win_rate, run_a, run_b, judge, prompts, max_tokens=max_tokens, limit=limit, device=device, threads=threads)
    if as_json:
        click.echo(json.dumps(m))
        return
    _print_table(f"lmforge eval winrate: {run_a} vs {run_b}, judged by {judge}", [
        ("prompts", str(m["prompts_evaluated"])),
        ("A wins (ties half)", f"{m['win_rate_a']:.3f} ± {m['win_rate_a_se']:.3f}"),
        ("mean score A", f"{m['mean_score_a']:.4f}"),
        ("mean score B", f"{m['mean_score_b']:.4f}"),
    ])
