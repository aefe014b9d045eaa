"""`lmforge corpus ingest SOURCE INPUT... -o OUT`: one subcommand per source, loaded lazily
from the registry (`lmforge.corpus.ingest.SOURCES`); each source's module defines its own."""

from __future__ import annotations

import functools

import click

from lmforge.cli import LazyGroup, LocalPath
from lmforge.corpus.cli import execute, output_options
from lmforge.corpus.ingest import SOURCES


@click.group(
    cls=LazyGroup,
    lazy={name: f"{module}:command" for name, (module, _) in SOURCES.items()},
    summaries={name: summary for name, (_, summary) in SOURCES.items()},
)
def ingest() -> None:
    """Native dumps of the other LLaMA sources -> documents, as `corpus process` writes them.

    Every source writes OUT/documents/*.jsonl.zst and OUT/stats.json (documents in, kept,
    dropped per reason), resumes when run again, and runs on datatrove's executors.

    \b
    Example:
      lmforge corpus ingest code repos/ sdists/*.tar.gz -o code/
      lmforge corpus ingest arxiv arxiv-src/ -o arxiv/ --workers 2 --tasks 4
    """


def ingest_options(func):
    """INPUT... and the options every `corpus ingest SOURCE` shares (`output_options`)."""

    @click.argument("inputs", nargs=-1, required=True, type=LocalPath())
    @output_options
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def run_source(name: str, kwargs: dict) -> None:
    """Build source `name`'s Config from its `dataclass_options` flags and run the ingest."""
    from lmforge.corpus.ingest import source_module
    from lmforge.corpus.options import build_dataclass

    cfg_values = {k: v for k, v in kwargs.items() if k.startswith("cfg__")}
    run_kwargs = {k: v for k, v in kwargs.items() if not k.startswith("cfg__")}
    try:
        config = build_dataclass(source_module(name).Config, cfg_values)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    execute("ingest", run_kwargs, source=name, source_config=config)
