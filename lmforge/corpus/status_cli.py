"""`lmforge corpus status OUT`: progress, failures and, once done, the stats of a corpus run."""

from __future__ import annotations

import click

from lmforge.cli import LocalPath


@click.command()
@click.argument("out", type=LocalPath(exists=True, file_okay=False))
def status(out: str) -> None:
    """Where the corpus run in OUT stands: tasks done, tasks started but not finished (running or
    failed: the last line of each one's log), and, when every task is done, the summary table
    and OUT/stats.json. For `--executor slurm`, which returns as soon as the jobs are queued.
    Exits 0 when the run is complete, 1 while it is not.

    \b
    Example:
      lmforge corpus process "/shared/cc/*.warc.gz" -o /shared/corpus --executor slurm --slurm-partition cpu --tasks 400
      lmforge corpus status /shared/corpus
    """
    from lmforge.corpus.cli import print_summary
    from lmforge.corpus.status import corpus_status

    s = corpus_status(out)
    if s.finished:
        print_summary(s.stats, out, source=s.source)
        command = f"ingest {s.source}" if s.source else s.mode
        click.echo(f"all {s.tasks} tasks of `corpus {command}` done")
        return
    logs = f"{out}/.lmforge/{s.mode}"
    if s.queued is None:
        click.echo(f"corpus {s.mode} in {out}: {len(s.done)}/{s.tasks} tasks done, {len(s.started)} started and not finished, "
                   f"{s.tasks - len(s.done) - len(s.started)} not started")
        for rank, line in sorted(s.started.items())[:20]:
            click.echo(f"  task {rank:05d} (running or failed; log {logs}/logs/task_{rank:05d}.log): {line}")
        if len(s.started) > 20:
            click.echo(f"  ... and {len(s.started) - 20} more")
        raise SystemExit(1)
    running = sum(state == "running" for state in s.queued.values())
    click.echo(f"corpus {s.mode} in {out} (Slurm job {s.job_id}): {len(s.done)}/{s.tasks} tasks done, {running} running, "
               f"{len(s.queued) - running} queued, {len(s.failed)} failed")
    for rank in s.failed[:20]:
        line = s.started.get(rank) or s.slurm_output.get(rank, "(no log)")
        click.echo(f"  task {rank} failed (log {logs}/logs/task_{rank:05d}.log, Slurm's output in {logs}/slurm_logs/): {line}")
    if len(s.failed) > 20:
        click.echo(f"  ... and {len(s.failed) - 20} more")
    if s.failed and not s.queued:
        click.echo("run the same command again to resume (finished tasks are skipped)")
    raise SystemExit(1)
