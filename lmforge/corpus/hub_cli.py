"""`lmforge corpus parquet` and `lmforge corpus card`: a corpus folder in the Hub's shapes.

The work is in `lmforge.corpus.hub`; these parse flags, call it and print a summary table.
"""

from __future__ import annotations

from pathlib import Path

import click

from lmforge.cli import LocalPath
from lmforge.locks import locks_output


@click.command("parquet")
@click.argument("corpus", type=LocalPath(exists=True, file_okay=False))
@click.option("-o", "--output", "output", required=True, type=LocalPath(file_okay=False),
              help="Output folder: Parquet files go to OUTPUT/data/.")
@click.option("--rows-per-group", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Rows per Parquet row group (a group also closes at ~100 MB of text): what a streaming reader holds at once.")
@click.option("--file-rows", type=click.IntRange(min=1), default=500_000, show_default=True,
              help="Rows per Parquet file (~0.5 GB compressed at web-page sizes).")
@click.option("--overwrite", is_flag=True, help="Delete OUTPUT/data from an earlier export and start again.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@locks_output("output")
def parquet(corpus, output, rows_per_group, file_rows, overwrite, no_progress) -> None:
    """Write a corpus folder's documents as FineWeb-shaped Parquet (zstd).

    CORPUS is a folder written by `corpus process`, `extract` or `dedup`. Columns: text, id,
    dump, url, date, file_path, language, language_score, token_count (null where the
    documents do not say). Files are named OUTPUT/data/000_00000.parquet (input file, part) as
    FineWeb's are; each is written under a temporary name and renamed, and a rerun of the same
    command skips the input files already exported.

    \b
    Example:
      lmforge corpus parquet corpus/ -o corpus/
      lmforge corpus parquet dedup/ -o hub/ --rows-per-group 5000
      python -c "import datasets; print(datasets.load_dataset('parquet', data_files='hub/data/*.parquet'))"
    """
    from lmforge.corpus.hub import ParquetConfig, write_parquet

    try:
        config = ParquetConfig(rows_per_group=rows_per_group, file_rows=file_rows)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if no_progress:
        stats = write_parquet(corpus, output, config, overwrite=overwrite)
    else:
        from lmforge.progress import ProgressBar

        with ProgressBar("parquet", elapsed=True, stderr=False) as bar:
            stats = write_parquet(corpus, output, config, overwrite=overwrite,
                                  on_file=lambda done, total: bar.update(completed=done, total=total))
    _print_parquet_summary(stats, output)


def _print_parquet_summary(stats, output: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"parquet → {output}/data", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("document files read", f"{stats.inputs:,}")
    if stats.inputs_skipped:
        table.add_row("  already exported (skipped)", f"{stats.inputs_skipped:,}")
    for reason, n in sorted(stats.errors.items()):
        table.add_row(f"  skipped: {reason.replace('_', ' ')}", f"{n:,}")
    table.add_row("documents (rows)", f"{stats.documents:,}")
    table.add_row("Parquet files", f"{stats.files:,}")
    table.add_row("row groups", f"{stats.row_groups:,}")
    table.add_row("text (UTF-8 bytes)", f"{stats.text_bytes:,}")
    table.add_row("Parquet bytes (zstd)", f"{stats.parquet_bytes:,}")
    Console().print(table)


@click.command("card")
@click.argument("corpus", type=LocalPath(exists=True, file_okay=False))
@click.option("-o", "--output", "output", type=LocalPath(dir_okay=False), default=None,
              help="Card file [default: CORPUS/README.md].")
@click.option("--parquet", "parquet_dir", type=LocalPath(file_okay=False), default=None,
              help="The -o folder of `corpus parquet` (or its data/), for the card's `configs` [default: data/ beside the card].")
@click.option("--license", "license_", default="other", show_default=True, help="The `license:` of the card (a Hub licence id).")
@locks_output("output", file=True)
def card(corpus, output, parquet_dir, license_) -> None:
    """Write a Hugging Face dataset card (README.md with YAML front matter) for a corpus folder.

    The front matter lists the languages, the size category, `task_categories:
    [text-generation]` and `configs` pointing at the Parquet files (when `corpus parquet`
    wrote them); the body gives the settings the run recorded, the counts of stats.json per
    step and drop reason, languages, documents and bytes.

    \b
    Example:
      lmforge corpus parquet corpus/ -o corpus/ && lmforge corpus card corpus/
      lmforge corpus card dedup/ -o hub/README.md --parquet hub --license odc-by
    """
    from lmforge.corpus.hub import write_card

    output = output or str(Path(corpus) / "README.md")
    if parquet_dir is not None and not any(Path(parquet_dir).glob("*.parquet")) and not any(Path(parquet_dir).glob("data/*.parquet")):
        raise click.ClickException(f"--parquet {parquet_dir}: no *.parquet files there nor in its data/; run `lmforge corpus parquet` first")
    parquet_dir = parquet_dir or str(Path(output).parent / "data")
    facts = write_card(corpus, output, license=license_, parquet_dir=parquet_dir)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"card → {output}", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("documents", f"{facts.documents:,}")
    table.add_row("text (UTF-8 bytes)", f"{facts.text_bytes:,}")
    table.add_row("languages", ", ".join(sorted(facts.languages, key=lambda k: -facts.languages[k])[:8]) or "none labelled")
    table.add_row("settings recorded", ", ".join(facts.settings) or "none")
    table.add_row("Parquet files in configs", f"{len(facts.parquet_files):,}")
    table.add_row("license", license_)
    Console().print(table)
