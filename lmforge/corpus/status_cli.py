"""`lmforge corpus status OUT` (and `lmforge shards status OUT`): progress, failures and, once
done, the stats of a corpus, dedup or shards run."""

from __future__ import annotations

import click

from lmforge.cli import LocalPath


@click.command()
@click.argument("out", type=LocalPath(exists=True, file_okay=False))
def status(out: str) -> None:
    """Where the run in OUT stands (`corpus process|extract|ingest`, `corpus dedup`, `shards
    build --tasks`): tasks done, tasks started but not finished (running or failed: the last
    line of each one's log), stage by stage for dedup and shards, and, when every task is done,
    the summary. For `--executor slurm`, which returns as soon as the jobs are queued.
    Exits 0 when the run is complete, 1 while it is not.

    \b
    Example:
      lmforge corpus process "/shared/cc/*.warc.gz" -o /shared/corpus --executor slurm --slurm-partition cpu --tasks 400
      lmforge corpus status /shared/corpus
      lmforge corpus status /shared/dedup
    """
    from lmforge.corpus.status import StatusError, corpus_status, staged_status

    try:
        s = corpus_status(out)
    except StatusError:
        staged = staged_status(out)
        if staged is None:
            raise StatusError(
                f"{out}: no run here (no .lmforge/process, extract, ingest, dedup-* or shards with executor.json); give the -o "
                "folder of `lmforge corpus process`, `extract`, `ingest SOURCE`, `corpus dedup` or `shards build --tasks`") from None
        print_staged(staged)
        return
    from lmforge.corpus.cli import print_summary

    if s.finished:
        print_summary(s.stats, out, source=s.source)
        command = f"ingest {s.source}" if s.source else s.mode
        click.echo(f"all {s.tasks} tasks of `corpus {command}` done")
        return
    _print_stage(f"corpus {s.mode} in {out}", s, f"{out}/.lmforge/{s.mode}")
    if s.queued is not None and s.failed and not s.queued:
        click.echo("run the same command again to resume (finished tasks are skipped)")
    raise SystemExit(1)


def _print_stage(title: str, s, logs: str, limit: int = 20) -> None:
    """One line of counts for the tasks of a run (or stage), then the unfinished ones."""
    if s.finished:
        click.echo(f"{title}: {s.tasks}/{s.tasks} tasks done")
        return
    if s.queued is None:
        click.echo(f"{title}: {len(s.done)}/{s.tasks} tasks done, {len(s.started)} started and not finished, "
                   f"{s.tasks - len(s.done) - len(s.started)} not started")
        for rank, line in sorted(s.started.items())[:limit]:
            click.echo(f"  task {rank:05d} (running or failed; log {logs}/logs/task_{rank:05d}.log): {line}")
        if len(s.started) > limit:
            click.echo(f"  ... and {len(s.started) - limit} more")
        return
    running = sum(state == "running" for state in s.queued.values())
    click.echo(f"{title} (Slurm job {s.job_id}): {len(s.done)}/{s.tasks} tasks done, {running} running, "
               f"{len(s.queued) - running} queued, {len(s.failed)} failed")
    for rank in s.failed[:limit]:
        line = s.started.get(rank) or s.slurm_output.get(rank, "(no log)")
        click.echo(f"  task {rank} failed (log {logs}/logs/task_{rank:05d}.log, Slurm's output in {logs}/slurm_logs/): {line}")
    if len(s.failed) > limit:
        click.echo(f"  ... and {len(s.failed) - limit} more")


def print_staged(staged) -> None:
    """Stage by stage; exits 1 unless the run is finished (its stats.json or source.json written)."""
    from lmforge.corpus.pipeline import STATE_DIR
    from lmforge.corpus.status import STAGED

    command = "corpus dedup" if staged.kind == "dedup" else "shards build"
    folders = STAGED[staged.kind][0]
    failed = staged.failed_stage
    for name, s in staged.stages.items():
        title = f"{command} in {staged.out}, stage {name}"
        if s is None:
            click.echo(f"{title}: not started")
        elif failed is not None and list(staged.stages).index(name) > list(staged.stages).index(failed) and not s.done:
            click.echo(f"{title}: cancelled ({failed} failed; Slurm cancels the jobs that wait on it)")
        else:
            _print_stage(title, s, f"{staged.out}/{STATE_DIR}/{folders[name]}")
    if staged.finished:
        click.echo(f"all stages of `{command}` done: {staged.output}")
        return
    waiting = any(s is not None and s.queued for s in staged.stages.values())
    if failed is not None and not waiting:
        click.echo("run the same command again to resume (finished tasks are skipped)")
    elif all(s is not None and s.finished for s in staged.stages.values()) and not staged.output.is_file():
        click.echo(f"every task is done but {staged.output.name} is not written: run the same command again to finish")
    raise SystemExit(1)
