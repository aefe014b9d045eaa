"""Where a corpus run stands, read from its folder: for runs submitted to Slurm, which return at once.

`corpus_status(out)` reads what datatrove's executors leave in `OUT/.lmforge/<mode>/`: the task
count (`executor.json`), one completion marker per finished task (`completions/NNNNN`), the
per-task counts (`stats/NNNNN.json`) and logs (`logs/task_NNNNN.log`). A task with a log but
no completion either is still running or failed; its log's last line says which. When every
task is done it writes `OUT/stats.json` as a local run does (unless a finished one is there),
with `seconds` left out (a submission does not know the wall time; `task_seconds`, the
tasks' own time summed, is there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.corpus.pipeline import STATE_DIR, collect_stats, unfinished_tasks, write_json_atomic
from lmforge.errors import UserError

MODES = ("process", "extract", "ingest")


class StatusError(UserError):
    """The folder holds no corpus run."""


@dataclass
class RunStatus:
    out: Path
    mode: str
    tasks: int
    done: list[int] = field(default_factory=list)
    started: dict[int, str] = field(default_factory=dict)  # task -> last line of its log (running or failed)
    stats: dict | None = None  # merged counts, once every task is done
    source: str | None = None  # `corpus ingest SOURCE`'s source
    #: Slurm runs, when squeue answers: the unfinished tasks still queued or running (task ->
    #: Slurm state), and the job id; a started task not in the queue has failed (or was cancelled)
    queued: dict[int, str] | None = None
    job_id: str | None = None
    #: failed tasks that wrote no log of their own (died before Python ran: no environment, no
    #: memory) -> the last line of Slurm's output for them (`slurm_logs/JOB_INDEX.out`)
    slurm_output: dict[int, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[int]:
        """Tasks known to have failed: not done and no longer in Slurm's queue (empty when
        that is not known: a local or Ray run, or no squeue here)."""
        if self.queued is None:
            return []
        return [rank for rank in range(self.tasks) if rank not in self.done and rank not in self.queued]

    @property
    def finished(self) -> bool:
        return len(self.done) == self.tasks


def corpus_status(out: str | Path, write: bool = True) -> RunStatus:
    """The state of the corpus run in `out`; writes `out/stats.json` when all tasks are done
    (and `write`)."""
    out = Path(out)
    found = [m for m in MODES if (out / STATE_DIR / m / "executor.json").is_file()]
    if not found:
        raise StatusError(
            f"{out}: no corpus run here (no {STATE_DIR}/process, extract or ingest with executor.json); "
            "give the -o folder of `lmforge corpus process`, `extract` or `ingest SOURCE`")
    mode = found[0]
    logging_dir = out / STATE_DIR / mode
    try:
        tasks = int(json.loads((logging_dir / "executor.json").read_text())["world_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StatusError(f"{logging_dir / 'executor.json'}: unreadable ({exc}); rerun the command to rewrite it") from None
    status = RunStatus(out, mode, tasks)
    if mode == "ingest":
        try:
            status.source = json.loads((out / STATE_DIR / "config.json").read_text()).get("source")
        except (OSError, ValueError, AttributeError):
            status.source = "?"
    left = unfinished_tasks(logging_dir, tasks)
    status.done = [rank for rank in range(tasks) if rank not in left]
    status.started = {rank: line for rank, line in left.items() if line != "(no log)"}
    if left:
        status.job_id, status.queued = slurm_queue(logging_dir)
        for rank in status.failed:
            if rank not in status.started:
                status.slurm_output[rank] = _slurm_output(logging_dir, status.job_id, rank)
    if status.finished:
        try:  # a run that finished here already wrote it, with its wall time: keep that one
            stats = json.loads((out / "stats.json").read_text())
            if stats.get("tasks_done") != tasks:
                stats = None
        except (OSError, ValueError):
            stats = None
        if stats is None:
            stats = collect_stats(logging_dir, tasks=tasks)
            stats["files"] = stats["summary"].get("files")  # as a local run's (its reader counts them)
            stats["task_seconds"] = round(sum(step.get("seconds", 0.0) for step in stats.get("steps", [])), 3)
            if write:
                write_json_atomic(out / "stats.json", stats)
        status.stats = stats
    return status


def _slurm_output(logging_dir: Path, job: str | None, rank: int) -> str:
    """The last line of Slurm's output file for `rank` of `job` (its array index is the rank's
    place in `slurm_job.json`'s list)."""
    from lmforge.corpus.execution import SLURM_JOB_FILE

    try:
        index = json.loads((logging_dir / SLURM_JOB_FILE).read_text())["ranks"].index(rank)
        lines = [line for line in (logging_dir / "slurm_logs" / f"{job}_{index}.out").read_text(errors="replace").splitlines()
                 if line.strip()]
    except (OSError, ValueError, KeyError, TypeError):
        return "(no log: it never started, or was cancelled before it did)"
    # srun's closing "task 0: Exited with exit code 2" says less than the error before it
    said = [line for line in lines if not line.startswith("srun: error:")] or lines
    return (said[-1][-200:] + f" (Slurm's output: slurm_logs/{job}_{index}.out)") if said else "(empty Slurm output)"


def slurm_queue(logging_dir: Path) -> tuple[str | None, dict[int, str] | None]:
    """(job id, task -> Slurm state of its array element) for the Slurm job recorded in
    `logging_dir` (`SlurmExecutor` writes it); (job id or None, None) when there is none or
    squeue does not answer (no Slurm here)."""
    import shutil
    import subprocess

    from lmforge.corpus.execution import SLURM_JOB_FILE

    try:
        record = json.loads((logging_dir / SLURM_JOB_FILE).read_text())
        job, ranks = str(record["job_id"]), list(record["ranks"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    if shutil.which("squeue") is None:
        return job, None
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%K %T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return job, None
    if out.returncode != 0:  # a job Slurm has forgotten ("Invalid job id"): nothing of it is queued
        if "Invalid job id" not in out.stderr:
            return job, None
        return job, {}
    queued = {}
    for line in out.stdout.splitlines():
        index, _, state = line.strip().partition(" ")
        if index.isdigit() and int(index) < len(ranks):
            queued[int(ranks[int(index)])] = state.lower()
    return job, queued
