"""`lmforge demo`."""

from __future__ import annotations

import click

from lmforge.cli import LocalPath
from lmforge.locks import locks_output


@click.command()
@click.option("-o", "--output", "output_dir", default="demo-out", show_default=True, type=LocalPath(file_okay=False),
              help="Folder for every stage's output.")
@click.option("--warc", multiple=True, type=LocalPath(dir_okay=False, urls=True), help="Run on this WARC file (path or URL, repeatable) instead of the built-in sample.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes for the corpus stages.")
@click.option("--languages", default="en", show_default=True, help="Languages the corpus keeps (comma separated; 'all' keeps every one).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--quick", is_flag=True, hidden=True, help="Few pretraining and alignment steps (for the test suite): the stages run, the figures mean little.")
@locks_output("output_dir")
def demo(output_dir: str, warc: tuple[str, ...], workers: int, languages: str, no_progress: bool, quick: bool) -> None:
    """Run every stage on built-in samples (offline): crawl to pretrained GPT, then SFT,
    reward model, DPO, GRPO and a chat answer on small sums. --warc FILE crawls a real file.

    \b
    Example:
      lmforge demo                         # built-in sample -> demo-out/
      lmforge demo --warc CC-MAIN-2024-22-xyz.warc.gz -o demo-cc/ --workers 2
    """
    from rich.console import Console
    from rich.table import Table

    from lmforge.pipelines.demo import QUICK, AlignSteps, run_demo
    from lmforge.pipelines.recipe import RecipeError
    from lmforge.pipelines.runner import PipelineError

    langs = None if languages.strip().lower() == "all" else [x for x in languages.split(",") if x.strip()]
    try:
        report = run_demo(output_dir, warc=list(warc) or None, workers=workers, progress=not no_progress, languages=langs or [],
                          align=QUICK if quick else AlignSteps())
    except (RecipeError, PipelineError) as exc:  # a stage refused its input: say which, and why it was empty
        raise click.ClickException(_stage_error(output_dir, exc, languages)) from None
    table = Table(title=f"lmforge demo → {output_dir}")
    table.add_column("stage")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    for stage, info in report["stages"].items():
        if stage == "corpus process":
            dropped = ", ".join(f"{k} {v}" for k, v in sorted(info["dropped"].items(), key=lambda kv: -kv[1]))
            langs_kept = ", ".join(f"{k} {v}" for k, v in info["languages"].items())
            result = f"{info['records']} records → {info['pages']} pages → {info['kept']} kept ({langs_kept})\ndropped: {dropped}"
        elif stage in ("corpus ingest", "mix build"):  # a line per source, as the LLaMA table reads
            result = "\n".join(f"{k}: {v}" for k, v in info.items() if k != "seconds")
        else:
            result = ", ".join(f"{k}={v}" for k, v in info.items() if k != "seconds")
        table.add_row(stage, result, f"{info.get('seconds', 0):.1f}")
    Console().print(table)
    click.echo(f"report: {output_dir}/report.json")


def _stage_error(output_dir: str, exc: Exception, languages: str) -> str:
    """The stage's own message, and when the crawl stage kept nothing, the likely cause."""
    import json
    from pathlib import Path

    message = str(exc).strip("'\"")
    try:
        kept = json.loads((Path(output_dir) / "corpus" / "stats.json").read_text())["summary"]
    except (OSError, ValueError, KeyError):
        return message
    if kept.get("kept", 0) == 0:
        langs = ", ".join(f"{k} {v}" for k, v in sorted(kept.get("dropped", {}).items(), key=lambda kv: -kv[1])[:4])
        return (f"the corpus stage kept no documents from the crawl ({kept.get('pages', 0)} pages; dropped: {langs or 'none'}), "
                f"so the later stages had nothing to read ({message}); for pages in other languages than "
                f"{languages!r} pass --languages all (or their codes), and see {output_dir}/corpus/stats.json")
    return message
