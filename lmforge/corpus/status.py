"""Where a corpus run stands, read from its folder: for runs submitted to Slurm, which return at once.

`corpus_status(out)` reads what datatrove's executors leave in `OUT/.lmforge/<mode>/`: the task
count (`executor.json`), one completion marker per finished task (`completions/NNNNN`), the
per-task counts (`stats/NNNNN.json`) and logs (`logs/task_NNNNN.log`). A task with a log but
no completion either is still running or failed; its log's last line says which. When every
task is done it writes `OUT/stats.json` as a local run does (unless a finished one is there),
with `seconds` left out (a submission does not know the wall time; `task_seconds`, the
tasks' own time summed, is there).

`staged_status(out)` does the same for the runs made of several stages (`STAGED`): `corpus
dedup` (signatures -> buckets -> clusters -> filter, and under Slurm a stats job) and
`shards build --tasks` (the tasks, and under Slurm the merge job), stage by stage; a stage
after one that failed is reported as cancelled (Slurm cancels the jobs that wait on it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.corpus.pipeline import STATE_DIR, collect_stats, unfinished_tasks, why_it_stopped, write_json_atomic
from lmforge.corpus.execution import format_duration
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


#: runs made of stages, by what they write: their stages' logging folders in `OUT/.lmforge/`, in
#: order (the last ones exist under Slurm only), and the file a finished run has
STAGED = {
    "dedup": ({"signatures": "dedup-signatures", "buckets": "dedup-buckets", "clusters": "dedup-clusters",
               "filter": "dedup-filter", "stats": "dedup-stats"}, "stats.json"),
    "shards": ({"tasks": "shards", "merge": "shards-merge"}, "source.json"),
}
#: the stages only a Slurm submission has (run here, the driver does their work)
SLURM_ONLY = ("stats", "merge")


@dataclass
class StagedStatus:
    """Where a `corpus dedup` or `shards build --tasks` run stands: each stage's tasks (None: a
    stage not started, or one that only a Slurm submission has), and whether its final file
    (`stats.json`, `source.json`) is written."""

    out: Path
    kind: str  # "dedup" or "shards"
    stages: dict[str, RunStatus | None]
    output: Path

    @property
    def finished(self) -> bool:
        return self.output.is_file() and all(s is None or s.finished for s in self.stages.values())

    @property
    def failed_stage(self) -> str | None:
        """The first stage with a failed task (known under Slurm only), else None."""
        return next((name for name, s in self.stages.items() if s is not None and s.failed), None)


def staged_status(out: str | Path) -> StagedStatus | None:
    """The state of the dedup or shards run in `out`, or None when there is none."""
    out = Path(out)
    for kind, (stages, final) in STAGED.items():
        dirs = {name: out / STATE_DIR / folder for name, folder in stages.items()}
        if not any((d / "executor.json").is_file() for d in dirs.values()):
            continue
        found = {name: _stage_status(out, name, d) if (d / "executor.json").is_file() else None for name, d in dirs.items()}
        for name in SLURM_ONLY:
            if name in found and found[name] is None:
                del found[name]
        return StagedStatus(out, kind, found, out / final)
    return None


#: seconds between two looks at a Slurm submission that `wait_for_run` waits for
POLL_SECONDS = 15.0


class WaitTimeout(StatusError):
    """The Slurm jobs `wait_for_run` waits for were not done in time (they keep running)."""


def wait_for_run(out: str | Path, poll: float | None = None, timeout: float | None = None) -> dict:
    """Wait until the Slurm submission in `out` (corpus process/extract/ingest, dedup, shards)
    is done; return its stats (`stats.json`; for shards, `source.json`).

    Raises StatusError naming the failed task and its log as soon as one task has failed (not
    done and no longer in Slurm's queue: it raised, was cancelled, or its node died), while
    the other tasks may still run; WaitTimeout after `timeout` seconds (None: no limit),
    saying the jobs keep running and how to follow them. (Where squeue does not answer, a
    failure is known only from the files: it waits for them, up to `timeout`.)"""
    import time

    out = Path(out)
    deadline = None if timeout is None else time.monotonic() + timeout
    resume = "run the same command again to resume (finished tasks are skipped)"
    while True:
        try:
            run = corpus_status(out)
        except StatusError:
            run = None
        if run is not None:
            if run.finished:
                return run.stats
            if run.failed:
                raise StatusError(f"{failed_message(run, out / STATE_DIR / run.mode)}{_still_queued(run)}; {resume}")
        else:
            staged = staged_status(out)
            if staged is None:
                raise StatusError(f"{out}: no run here to wait for")
            if staged.finished:
                return json.loads(staged.output.read_text())
            failed = staged.failed_stage
            if failed is not None:
                stage = staged.stages[failed]
                still = "".join(_still_queued(s) for s in staged.stages.values() if s is not None)
                raise StatusError(f"{staged.kind} stage {failed}: "
                                  f"{failed_message(stage, out / STATE_DIR / STAGED[staged.kind][0][failed])}{still}; {resume}")
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise WaitTimeout(f"{out}: not done after waiting {format_duration(timeout)}; its Slurm jobs keep running: follow them with "
                              f"`lmforge corpus status {out}`, and run the same command again to wait for them (nothing is "
                              "submitted twice), or raise the limit (`slurm_wait` in [execution], `--slurm-wait`)")
        time.sleep(max(0.0, min(POLL_SECONDS if poll is None else poll, left if left is not None else float("inf"))))


def failed_message(run: RunStatus, logging_dir: Path, limit: int = 3) -> str:
    """`1 of 4 tasks failed: task 2 failed: ValueError: bad page (log: …/logs/task_00002.log)`
    for the tasks of `run` known to have failed (a task that wrote no log of its own, being
    cancelled or dead before Python ran: the last line of Slurm's output for it, and its file)."""
    parts = []
    for rank in run.failed[:limit]:
        if rank in run.started:
            parts.append(f"task {rank} failed: {run.started[rank]} (log: {logging_dir / 'logs' / f'task_{rank:05d}.log'})")
        else:
            parts.append(f"task {rank} failed: {run.slurm_output.get(rank, '(no log)')}")
    more = f"; and {len(run.failed) - limit} more" if len(run.failed) > limit else ""
    return f"{len(run.failed)} of {run.tasks} tasks failed: " + "; ".join(parts) + more


def _still_queued(run: RunStatus | None) -> str:
    """`; 3 other tasks of job 812 are still queued or running (scancel 812 stops them)`, or ""."""
    if run is None or not run.queued:
        return ""
    return f"; {len(run.queued)} other tasks of Slurm job {run.job_id} are still queued or running (scancel {run.job_id.replace(',', '')} stops them)"


def submission_in_flight(out: str | Path) -> list[str]:
    """The Slurm job ids of the run in `out` (any stage) that still have tasks queued or
    running; [] when none (or no run, or no squeue here). A pipeline run again after its wait
    ran out waits for these instead of submitting the same tasks twice."""
    out = Path(out)
    try:
        runs = [corpus_status(out, write=False)]
    except StatusError:
        staged = staged_status(out)
        runs = [] if staged is None else [s for s in staged.stages.values() if s is not None]
    return [r.job_id for r in runs if r.queued]


def _stage_status(out: Path, mode: str, logging_dir: Path) -> RunStatus:
    """Tasks done, started and (under Slurm) queued of the run whose datatrove logging folder
    is `logging_dir`."""
    try:
        tasks = int(json.loads((logging_dir / "executor.json").read_text())["world_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StatusError(f"{logging_dir / 'executor.json'}: unreadable ({exc}); rerun the command to rewrite it") from None
    status = RunStatus(out, mode, tasks)
    left = unfinished_tasks(logging_dir, tasks)
    status.done = [rank for rank in range(tasks) if rank not in left]
    status.started = {rank: line for rank, line in left.items() if line != "(no log)"}
    if left:
        status.job_id, status.queued = slurm_queue(logging_dir)
        if status.queued is not None:
            # a task that ended between reading its markers and asking squeue is out of the queue
            # with its marker written: done, not failed
            late = [rank for rank in left if rank not in status.queued and (logging_dir / "completions" / f"{rank:05d}").exists()]
            if late:
                status.done = sorted(status.done + late)
                for rank in late:
                    status.started.pop(rank, None)
        for rank in status.failed:
            if rank not in status.started:
                status.slurm_output[rank] = _slurm_output(logging_dir, rank)
    return status


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
    status = _stage_status(out, mode, logging_dir)
    tasks = status.tasks
    if mode == "ingest":
        try:
            status.source = json.loads((out / STATE_DIR / "config.json").read_text()).get("source")
        except (OSError, ValueError, AttributeError):
            status.source = "?"
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


def _slurm_record(logging_dir: Path) -> tuple[list[str], int, list[int]]:
    """(array job ids, tasks per array job, ranks in array order) of the Slurm submission in
    `logging_dir` (`SlurmExecutor` writes it; one written before several jobs were recorded
    names one job). Raises OSError/ValueError/KeyError/TypeError when there is none."""
    from lmforge.corpus.execution import SLURM_JOB_FILE

    record = json.loads((logging_dir / SLURM_JOB_FILE).read_text())
    jobs = [str(j) for j in record.get("jobs") or [record["job_id"]]]
    return jobs, int(record.get("max_array") or 1001), list(record["ranks"])


def _slurm_output(logging_dir: Path, rank: int) -> str:
    """The last line of Slurm's output file for `rank` (its array job and index follow from the
    rank's place in `slurm_job.json`'s list)."""
    try:
        jobs, per_job, ranks = _slurm_record(logging_dir)
        index = ranks.index(rank)
        job, element = jobs[index // per_job], index % per_job
        lines = [line for line in (logging_dir / "slurm_logs" / f"{job}_{element}.out").read_text(errors="replace").splitlines()
                 if line.strip()]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return "(no log: it never started, or was cancelled before it did)"
    # slurmstepd's "*** JOB 198 ON node CANCELLED AT … ***" (or TIME LIMIT, PREEMPTION, NODE
    # FAILURE) says why Slurm ended it; srun's closing lines ("task 0: Exited with exit code 2",
    # "Job step aborted") say less than the error before them
    said = ([line for line in lines if "*** " in line and line.rstrip().endswith("***")][-1:]
            or [line for line in lines if not line.startswith("srun: ")] or lines)
    return (why_it_stopped(said) + f" (Slurm's output: {logging_dir / 'slurm_logs' / f'{job}_{element}.out'})") if said else "(empty Slurm output)"


def slurm_queue(logging_dir: Path) -> tuple[str | None, dict[int, str] | None]:
    """(job ids, task -> Slurm state of its array element) for the Slurm submission recorded in
    `logging_dir` (`SlurmExecutor` writes it): every array job of it (datatrove splits more
    than 1,001 tasks into several), asked of squeue one by one; (job ids or None, None) when
    there is none or squeue does not answer (no Slurm here)."""
    import shutil
    import subprocess

    try:
        jobs, per_job, ranks = _slurm_record(logging_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    shown = ", ".join(jobs)
    if shutil.which("squeue") is None:
        return shown, None
    queued = {}
    for k, job in enumerate(jobs):
        try:
            out = subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%K %T"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return shown, None
        if out.returncode != 0:  # a job Slurm has forgotten ("Invalid job id"): nothing of it is queued
            if "Invalid job id" not in out.stderr:
                return shown, None
            continue
        for line in out.stdout.splitlines():
            index, _, state = line.strip().partition(" ")
            position = k * per_job + int(index) if index.isdigit() else -1
            if 0 <= position < len(ranks) and int(index) < per_job:
                queued[int(ranks[position])] = state.lower()
    return shown, queued
