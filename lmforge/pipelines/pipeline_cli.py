"""`lmforge pipeline run | check | show`: a recipe (TOML) that chains every stage."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lmforge.cli import LocalPath


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _load(recipe: str, output: str | None):
    from lmforge.pipelines.recipe import RecipeError, load_recipe

    try:
        return load_recipe(recipe, output=output)
    except RecipeError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("pipeline")
def pipeline() -> None:
    """Recipes: one TOML file that runs crawl -> corpus -> tokenizer -> shards -> mix -> train
    -> sft -> rm -> dpo -> rl into one folder (see lmforge/pipelines/recipe.py for the format).

    \b
    Examples:
      lmforge pipeline check recipes/tiny-shared-data.toml
      lmforge pipeline run recipes/tiny-shared-data.toml -o runs/tiny
      lmforge pipeline run recipes/tiny-shared-data.toml -o runs/tiny --until mix
      lmforge pipeline show runs/tiny
    """


def _slurm_wait(value: str | None) -> str | None:
    """--slurm-wait checked as the recipe's `slurm_wait` is (Slurm's time format)."""
    if value is None:
        return None
    from lmforge.corpus.execution import parse_duration

    try:
        parse_duration(value, "--slurm-wait")
    except ValueError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1], param_hint="--slurm-wait") from None
    return value


@pipeline.command("run")
@click.argument("recipe", type=LocalPath())
@click.option("-o", "--output", type=LocalPath(), default=None, help="Output folder [the recipe's [pipeline].output].")
@click.option("--until", default=None, help="Stop after this stage (corpus, dedup, tokenizer, shards, mix, train, sft, rm, dpo, rl).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
@click.option("--slurm-wait", default=None, metavar="HH:MM:SS", callback=lambda ctx, param, value: _slurm_wait(value),
              help="With [execution] executor = \"slurm\": how long to wait for a stage's jobs before stopping (they keep "
                   "running; the same command again waits for them) [the recipe's slurm_wait, else 48:00:00].")
def run(recipe, output, until, progress, slurm_wait):
    """Run (or resume) every stage of RECIPE; finished stages are skipped.

    With `executor = "slurm"` in [execution] the corpus, dedup, ingest and shards stages are
    submitted as job arrays and waited for: a failed or cancelled task stops the run at once
    (exit 1, naming the task and its log); after --slurm-wait it stops, and the jobs keep running.

    \b
    Example:
      lmforge pipeline run recipes/tiny-shared-data.toml -o runs/tiny
      lmforge pipeline run cluster.toml -o /shared/runs/web --slurm-wait 12:00:00
    """
    from lmforge.pipelines.recipe import RecipeError
    from lmforge.pipelines.runner import PipelineError, run_pipeline

    from lmforge.locks import hold

    rcp = _load(recipe, output)
    if slurm_wait is not None and rcp.execution is not None:
        import dataclasses

        rcp.execution = dataclasses.replace(rcp.execution, slurm_wait=slurm_wait)
    console = _console()
    try:
        # Slurm tasks of an earlier run (its wait ran out) may be writing their temporary files
        with hold(rcp.output, click.ClickException, clean=rcp.executor().executor != "slurm"):
            record = run_pipeline(rcp, until=until, progress=progress, log=lambda msg: console.print(msg, style="dim"))
    except (RecipeError, PipelineError) as exc:
        raise click.ClickException(str(exc)) from None
    _print_record(record, console)


@pipeline.command("check")
@click.argument("recipe", type=LocalPath())
@click.option("-o", "--output", type=LocalPath(), default=None, help="Output folder [the recipe's [pipeline].output].")
def check(recipe, output):
    """Validate RECIPE and print the stages it would run, without running them.

    \b
    Example:
      lmforge pipeline check recipes/tiny-shared-data.toml
    """
    from rich.markup import escape
    from rich.table import Table

    from lmforge.pipelines.runner import read_record

    rcp = _load(recipe, output)
    record = read_record(rcp.output) or {}
    table = Table(title=f"lmforge pipeline: {rcp.path} -> {rcp.output}")
    table.add_column("stage")
    table.add_column("state")
    table.add_column("settings")
    for stage in rcp.present():
        done = record.get("stages", {}).get(stage, {})
        state = done.get("status", "to run")
        if done.get("settings") not in (None, rcp.stage_settings(stage)):
            state = "changed since it ran"
        changed = rcp.changed_settings(stage)
        text = ", ".join(f"{k}={_short(v)}" for k, v in changed.items()) or "defaults"
        table.add_row(stage, state, escape(text))
    console = _console()
    console.print(table)
    from lmforge.pipelines.runner import _execution_record

    console.print(escape(f"corpus, dedup, ingest and shards stages run on: {_describe_execution(_execution_record(rcp.executor()))}"))
    from lmforge.pipelines.recipe import missing_inputs

    missing = missing_inputs(rcp)
    for _, message in missing:
        console.print(f"missing input: {escape(message)}", style="bold red")
    if missing:  # `pipeline run` would refuse to start: so does the check
        raise click.ClickException(f"{rcp.path}: {len(missing)} input{'s' if len(missing) > 1 else ''} missing (listed above); "
                                   "fix the paths in the recipe, then check again")


@pipeline.command("show")
@click.argument("output", type=LocalPath())
def show(output):
    """Show what ran in OUTPUT (its pipeline.json): stages, figures, and the model's lineage.

    \b
    Example:
      lmforge pipeline show runs/tiny
    """
    from lmforge.pipelines.runner import PipelineError, read_record

    try:
        record = read_record(output)
    except PipelineError as exc:
        raise click.ClickException(str(exc)) from None
    if record is None:
        raise click.ClickException(f"{Path(output) / 'pipeline.json'}: no such file; give the output folder of `lmforge pipeline run`")
    _print_record(record, _console())


def _short(value) -> str:
    """A setting in a few characters: paths by file name, long lists counted."""
    if isinstance(value, list):
        return f"[{', '.join(_short(v) for v in value)}]" if len(value) <= 3 else f"[{len(value)} items]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and "/" in value:
        return Path(value).name
    return json.dumps(value) if isinstance(value, str) else str(value)


def _describe_execution(execution: dict) -> str:
    """`slurm, 64 tasks (64 at once), slurm_partition=cpu`: the [execution] a pipeline has or had."""
    rest = ", ".join(f"{k}={v}" for k, v in execution.items() if k not in ("executor", "tasks", "workers"))
    return (f"{execution.get('executor', 'local')}, {execution.get('tasks', 1)} tasks ({execution.get('workers', 1)} at once)"
            + (f", {rest}" if rest else ""))


def _print_record(record: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"lmforge pipeline: {record.get('output')}")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("figures")
    for stage, entry in record.get("stages", {}).items():
        figures = entry.get("figures") or {}
        text = ", ".join(f"{k} {str(v)[:23] + '...' if isinstance(v, str) and v.startswith('sha256:') else v}"
                         for k, v in figures.items() if not isinstance(v, dict))
        if entry.get("error"):
            text = entry["error"]
        table.add_row(stage, entry.get("status", "?"), f"{entry.get('seconds', 0):.1f}", escape(text[:160]))
    console.print(table)
    if record.get("execution"):
        console.print(escape(f"corpus, dedup, ingest and shards stages ran on: {_describe_execution(record['execution'])}"))
    lineage = record.get("lineage") or {}
    if lineage.get("model"):
        console.print(f"model: {lineage['model']['checkpoint']}")
        if lineage.get("manifest"):
            console.print(f"  manifest {lineage['manifest'].get('manifest')} ({lineage['manifest'].get('sha256', '')[:23]})")
        if lineage.get("tokenizer"):
            console.print(f"  tokenizer {lineage['tokenizer'].get('dir')} ({str(lineage['tokenizer'].get('fingerprint'))[:23]})")
        for key in ("corpus_stats", "dedup_stats"):
            if lineage.get(key):
                console.print(f"  {key.replace('_', ' ')} {lineage[key]}")
