"""`lmforge corpus process`: the full FineWeb-style pipeline, every threshold a flag."""

from __future__ import annotations

import click

from lmforge.corpus.cli import execute, run_options
from lmforge.corpus.filters import FilterConfig
from lmforge.corpus.options import build_dataclass, dataclass_options


@click.command()
@run_options
@click.option("--dedup", is_flag=True, help="Remove near-duplicates (MinHash) from the kept documents as a last stage (OUT/dedup/).")
@dataclass_options(FilterConfig, exclude=("language",))
def process(dedup: bool, **kwargs) -> None:
    """Extract, identify the language, filter by quality (and dedup): the FineWeb recipe.

    \b
    URL blocklist -> main text -> language ID (--languages en, --min-language-score 0.65)
    -> Gopher repetition -> Gopher quality -> C4 (no terminal-punctuation rule) -> FineWeb
    quality -> OUT/documents/. Every drop is counted by reason in OUT/stats.json; a
    threshold set to 'none' is switched off. C4's own recipe adds its terminal-punctuation
    rule and its bad-words page filter (LDNOOBW lists, shipped): --c4-filter-no-terminal-punct
    --c4-badwords.

    \b
    Example:
      lmforge corpus process ../shared/data/warc/*.warc.gz -o corpus/ --workers 2 --keep-rejected
      lmforge corpus process crawl/ -o corpus-de/ --languages de --gopher-quality-min-stop-words none
      lmforge corpus process ../shared/data/warc/*.warc.gz -o corpus/ --format parquet   # FineWeb-shaped
      lmforge corpus process crawl/ -o c4/ --c4-filter-no-terminal-punct --c4-badwords   # C4's rules
      lmforge corpus process "s3://bucket/crawl/*.warc.gz" -o s3://bucket/corpus --executor ray --tasks 64
    """
    cfg_values = {k: v for k, v in kwargs.items() if k.startswith("cfg__")}
    run_kwargs = {k: v for k, v in kwargs.items() if not k.startswith("cfg__")}
    try:
        filters = build_dataclass(FilterConfig, cfg_values)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    execute("process", run_kwargs, filters=filters, dedup=dedup)
