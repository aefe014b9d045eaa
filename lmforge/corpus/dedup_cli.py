"""`lmforge corpus dedup`: parse options, call `run_dedup`, print the summary table."""

from __future__ import annotations

import click

from lmforge.cli import Finite, LocalPath
from lmforge.corpus.cli import slurm_options, slurm_settings
from lmforge.locks import locks_output


@click.command("dedup")
@click.argument("inputs", nargs=-1, required=True, type=LocalPath(urls=True))
@click.option("-o", "--output", "output", required=True, type=LocalPath(file_okay=False, urls="write"),
              help="Output folder, or an object-store URL (s3://bucket/dedup: written in a local staging folder, then uploaded).")
@click.option("--threshold", default=0.8, show_default=True, type=Finite(0, 1, min_open=True), help="Jaccard similarity of shingle sets from which documents are duplicates.")
@click.option("--ngram", default=5, show_default=True, type=click.IntRange(min=1), help="Shingle length in words (each CJK/Thai character counts as a word).")
@click.option("--num-perm", default=112, show_default=True, type=click.IntRange(min=1), help="MinHash permutations.")
@click.option("--bands", type=click.IntRange(min=1), default=None, help="LSH bands (default: derived from --threshold, see --explain).")
@click.option("--rows", type=click.IntRange(min=1), default=None, help="LSH rows per band (default: derived from --threshold).")
@click.option("--verify", "verify", type=click.Choice(["exact", "estimate", "none"]), default="exact", show_default=True,
              help="How an LSH candidate pair is checked before it joins a cluster: exact Jaccard of the two shingle sets, the estimate from the full signature, or not at all (LSH alone).")
@click.option("--verify-candidates", "verify", flag_value="estimate", help="Alias of --verify estimate.")
@click.option("--no-verify-candidates", "verify", flag_value="none", help="Alias of --verify none.")
@click.option("--verify-threshold", type=Finite(0, 1), default=None, help="Jaccard (exact or estimated) a candidate pair needs [default: --threshold].")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(min=0), help="Permutation seed (datasketch's `seed`).")
@click.option("--hash", "hash_", type=click.Choice(["poly", "sha1"]), default="poly", show_default=True, help="Shingle hash: vectorised polynomial, or datasketch's default sha1 (slower).")
@click.option("--exact", is_flag=True, help="Also remove exact duplicates (hash of lower-cased, whitespace-collapsed text).")
@click.option("--near/--no-near", default=True, show_default=True, help="Near-duplicate removal with MinHash LSH (--exact --no-near: exact only).")
@click.option("--bucket-shards", default=64, show_default=True, type=click.IntRange(min=1), help="Shards of the bucket files (memory of a bucket task ~ 1/shards).")
@click.option("--text-key", default="text", show_default=True, help="JSON field or Parquet/Arrow column holding the text.")
@click.option("--explain", is_flag=True, help="Print the LSH parameters and the probability curve, then exit.")
@click.option("--executor", type=click.Choice(["local", "slurm", "ray"]), default="local", show_default=True)
@click.option("--tasks", default=1, show_default=True, type=click.IntRange(min=1), help="Tasks per stage (files and bucket shards are spread over them).")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Tasks running at once [local: 1; slurm, ray: every task].")
@slurm_options
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@locks_output("output", clean=lambda kw: kw["executor"] != "slurm", skip=lambda kw: kw["explain"])
def dedup(inputs, output, threshold, ngram, num_perm, bands, rows, verify, verify_threshold, seed, hash_, exact, near, bucket_shards, text_key, explain, executor, tasks, workers, no_progress, **slurm):
    """Remove near-duplicate (and with --exact, exact duplicate) documents.

    INPUTS are document folders, files or globs (`DIR/documents/**/*.jsonl.zst`, `.jsonl`,
    `.txt`, `.parquet`, `.arrow`) or `datasets.save_to_disk` folders, local or URLs
    (`s3://bucket/corpus`: fetched into a local staging folder first). OUTPUT gets documents/
    (the kept documents), clusters/ (survivor and removed members of every cluster) and
    stats.json. The earliest document of a cluster in
    input order (sorted file path, then line) is kept. A rerun into the same folder resumes.
    With --executor slurm the stages are submitted at once as a chain of dependent job
    arrays (each starts when the one before succeeded) and the command returns.

    \b
    Example:
      lmforge corpus dedup corpus/ -o dedup/ --exact --tasks 8 --workers 8
      lmforge corpus dedup corpus/ -o dedup/ --threshold 0.7 --explain
      lmforge corpus dedup corpus/ -o dedup/ --executor slurm --slurm-partition cpu --tasks 64
      lmforge corpus dedup s3://bucket/corpus -o s3://bucket/dedup --executor ray --tasks 16
    """
    from lmforge.corpus.dedup import DedupConfig, DedupError, run_dedup
    from lmforge.corpus.execution import ExecutorConfig
    from lmforge.documents import DocumentFileError

    try:
        config = DedupConfig(
            threshold=threshold, ngram=ngram, num_perm=num_perm, bands=bands, rows=rows, seed=seed, hash=hash_,
            verify=verify, verify_threshold=verify_threshold, near=near, exact=exact, bucket_shards=bucket_shards, text_key=text_key,
            progress=not no_progress,
        )
        ex = ExecutorConfig(executor=executor, tasks=tasks, workers=workers, **slurm_settings(slurm))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if explain:
        _print_explain(config)
        return
    from lmforge.corpus.cli import staged

    try:
        with staged(output, executor) as local:
            stats = run_dedup(list(inputs), local, config, ex)
    except (DedupError, DocumentFileError) as exc:  # an OSError (a full disk) is lmforge.cli's to name
        raise click.ClickException(str(exc)) from None
    if stats.get("submitted"):
        jobs = ", ".join(f"{stage} {job}" for stage, job in stats["jobs"].items())
        click.echo(f"submitted to Slurm as dependent jobs (-1: already complete): {jobs}; the last writes {stats['stats']}")
        return
    _print_summary(stats, output)


def _print_explain(config) -> None:
    from rich.console import Console
    from rich.table import Table

    from lmforge.corpus.minhash import explain_lsh

    lsh = config.lsh
    table = Table(title=f"LSH {lsh.bands} bands x {lsh.rows} rows ({lsh.num_perm} of {config.num_perm} permutations), S-curve midpoint ~{lsh.threshold():.2f}")
    table.add_column("Jaccard", justify="right")
    table.add_column("P(candidate)", justify="right")
    table.add_column("meaning")
    for s, p in explain_lsh(lsh, config.threshold):
        if s >= config.threshold:
            meaning = f"duplicate: missed with probability {1 - p:.2g}"
        else:
            meaning = f"not a duplicate: candidate{'' if config.verify == 'none' else ' (then verified)'} with probability {p:.2g}"
        table.add_row(f"{s:.2f}", f"{p:.5f}", meaning)
    console = Console()
    console.print(table)
    if config.verify != "none":
        how = "exact Jaccard of their shingle sets" if config.verify == "exact" else "estimated Jaccard"
        console.print(f"candidates are kept when their {how} is >= {config.verify_threshold}")
    else:
        console.print("candidates are not verified (--no-verify-candidates): every pair that shares a band is a duplicate")


def _print_summary(stats: dict, output: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dedup -> {output}")
    table.add_column("")
    table.add_column("documents", justify="right")
    table.add_row("documents in", f"{stats['documents_in']:,}")
    for reason, n in sorted(stats["skipped"].items()):
        table.add_row(f"skipped ({reason})", f"{n:,}")
    table.add_row("exact duplicates removed", f"{stats['exact_duplicates_removed']:,}")
    table.add_row("clusters", f"{stats['clusters']:,}")
    table.add_row("candidate pairs (LSH)", f"{stats['candidate_pairs']:,}")
    vt = f"{stats['verify_threshold']:g}"
    table.add_row(f"pairs with estimated Jaccard >= {vt}", f"{stats['estimate_pairs']:,}")
    if stats.get("exact_pairs") is not None:
        table.add_row(f"pairs with exact Jaccard >= {vt}", f"{stats['exact_pairs']:,}")
    table.add_row(f"verified pairs ({stats['verify']})", f"{stats['verified_pairs']:,}" if stats["verify"] != "none" else "not verified")
    table.add_row("near-duplicates removed", f"{stats['near_duplicates_removed']:,}")
    table.add_row("kept", f"{stats['kept']:,}")
    table.add_row("docs/s", f"{stats['docs_per_s'] or 0:,.0f}")
    Console().print(table)
