"""Running a list of corpus steps with one of datatrove's executors.

`local` (default) runs tasks in a process pool on this machine; `slurm` and `ray` hand the
same pipeline to datatrove's Slurm or Ray executors. Ray: the driver connects to `--ray-address`
(else `RAY_ADDRESS`, else it starts a local Ray cluster) and ships a chosen part of its
environment to the workers (`ray_env_vars`: PYTHONPATH, AWS_*/S3 credentials, `--ray-env VAR`),
which a `ray start` in another shell would not have. Completed tasks are recorded in
`LOGGING_DIR/completions/` by datatrove, so a rerun skips them; each task writes its output
atomically, so a task killed half way is simply run again.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path


@contextlib.contextmanager
def _hf_filesystem_deferred():
    """While importing datatrove: its `datatrove.io` imports huggingface_hub's `HfFileSystem`
    at module level for one `isinstance` test, and that import loads the whole Hub client
    (hf_api, httpx, yaml: ~0.5 s CPU of every corpus command's start, 1.9 s in all). Here
    `datatrove.io` gets a stand-in class whose isinstance test asks the real class, and only
    when huggingface_hub's file system module is loaded: an object of that class cannot exist
    before. The stand-in is visible to that import only; everyone else gets the real class.
    """
    try:
        import huggingface_hub
    except ImportError:  # pragma: no cover - datatrove's import fails on its own
        yield
        return
    if "datatrove.io" in sys.modules or "HfFileSystem" in vars(huggingface_hub):
        yield
        return

    class _Deferred(type):
        def __instancecheck__(cls, obj) -> bool:
            real = sys.modules.get("huggingface_hub.hf_file_system")
            return real is not None and isinstance(obj, real.HfFileSystem)

    huggingface_hub.HfFileSystem = _Deferred("HfFileSystem", (), {})
    try:
        yield
    finally:
        del huggingface_hub.HfFileSystem


with _hf_filesystem_deferred():
    from datatrove.executor import LocalPipelineExecutor, SlurmPipelineExecutor

EXECUTORS = ("local", "slurm", "ray")


@dataclass
class ExecutorConfig:
    """How to run a pipeline: which engine, how many tasks, how many at once."""

    executor: str = "local"
    tasks: int = 1
    #: tasks run at once; None: 1 on the local executor, every task on Slurm or Ray (the cluster's
    #: scheduler limits them; 1 there made `--tasks 1000` an `--array=0-999%1`, one at a time)
    workers: int | None = None
    #: Slurm only: partition, time limit, resources, account and QOS (sent only when given), the
    #: virtual environment each task activates, extra `#SBATCH` lines (name -> value)
    slurm_partition: str | None = None
    slurm_time: str = "24:00:00"
    slurm_cpus_per_task: int = 1
    slurm_mem_per_cpu_gb: int = 2
    slurm_account: str | None = None
    slurm_qos: str | None = None
    slurm_venv: str | None = None
    slurm_sbatch: dict = field(default_factory=dict)
    #: Ray only: the cluster to join (None: RAY_ADDRESS, else a local cluster started here) and
    #: names of environment variables sent to its workers on top of `RAY_ENV_ALWAYS`
    ray_address: str | None = None
    ray_env: tuple = ()
    #: `lmforge pipeline run` only: how long it waits for a stage's Slurm jobs (Slurm's time
    #: format) before it stops, saying that they keep running and how to follow them; twice a
    #: task's default time limit
    slurm_wait: str = "48:00:00"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {self.executor!r}")
        if self.tasks < 1:
            raise ValueError(f"tasks must be >= 1 (got {self.tasks})")
        if self.workers is None:
            self.workers = 1 if self.executor == "local" else self.tasks
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1 (got {self.workers})")
        if self.executor == "slurm" and not self.slurm_partition:
            raise ValueError("the slurm executor needs a partition: pass --slurm-partition NAME")
        parse_duration(self.slurm_wait, "slurm_wait")
        if self.executor == "ray":
            ray_env_vars(self.ray_env)  # a --ray-env name not set here is refused before any work


def format_duration(seconds: float) -> str:
    """`1:30:00` (h:mm:ss), as Slurm writes times."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def parse_duration(text: str, what: str = "--slurm-wait") -> float:
    """Seconds of a Slurm-style time: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`
    (`48:00:00`, `2-00:00:00`). Raises ValueError naming `what` and the forms it takes."""
    text = str(text).strip()
    days, _, rest = text.rpartition("-") if "-" in text else ("0", "", text)
    try:
        parts = [int(p) for p in rest.split(":")]
        d = int(days)
    except ValueError:
        parts, d = [], -1
    if d < 0 or not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        raise ValueError(f"{what} {text!r}: not a time; write HH:MM:SS, D-HH:MM:SS or minutes (e.g. 48:00:00)")
    if "-" in text:  # D-HH, D-HH:MM, D-HH:MM:SS
        h, m, sec = (parts + [0, 0])[:3]
    elif len(parts) == 3:  # HH:MM:SS
        h, m, sec = parts
    else:  # MM, MM:SS
        h, m, sec = 0, parts[0], parts[1] if len(parts) > 1 else 0
    seconds = ((d * 24 + h) * 60 + m) * 60 + sec
    if seconds <= 0:
        raise ValueError(f"{what} {text!r}: must be longer than 0")
    return float(seconds)


def check_engine(config: ExecutorConfig) -> None:
    """Refuse, before any work, an engine this machine cannot reach (sbatch missing said only
    "sbatch: No such file or directory"; ray not installed)."""
    import shutil

    if config.executor == "slurm" and shutil.which("sbatch") is None:
        raise RuntimeError("--executor slurm needs Slurm's sbatch on PATH: submit from a node of the cluster "
                           "(a login node), or run here with --executor local")
    if config.executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise RuntimeError("the ray executor needs ray on this machine and a running cluster: pip install 'ray[default]'")


def make_executor(pipeline: list, config: ExecutorConfig, logging_dir: str | Path, verbose: bool = False):
    """Build the datatrove executor that runs `pipeline` as `config` says."""
    logging_dir = str(logging_dir)
    if config.executor == "local":
        return QuietLocalExecutor(
            pipeline,
            tasks=config.tasks,
            workers=min(config.workers, config.tasks),
            logging_dir=logging_dir,
            skip_completed=True,
            verbose=verbose,
        )
    if config.executor == "slurm":
        venv = config.slurm_venv
        if venv and Path(venv).is_dir():  # the environment's folder: its activate script
            venv = str(Path(venv) / "bin" / "activate")
        extra = dict(config.extra)
        bin_dir = Path(sys.executable).parent  # not resolved: a venv's bin/python is a link out of it
        if not venv and "env_command" not in extra and (bin_dir / "launch_pickled_pipeline").exists():
            # without --slurm-venv the tasks run this Python environment's launch_pickled_pipeline,
            # found by path (on the shared filesystem): a submitting shell whose PATH lacks it (a
            # venv's python run by its full path) had every task die with "execve():
            # launch_pickled_pipeline: No such file or directory"
            import shlex

            extra["env_command"] = f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"'
        return SlurmExecutor(
            pipeline,
            tasks=config.tasks,
            workers=config.workers,
            time=config.slurm_time,
            partition=config.slurm_partition,
            cpus_per_task=config.slurm_cpus_per_task,
            mem_per_cpu_gb=config.slurm_mem_per_cpu_gb,
            qos=config.slurm_qos,  # datatrove sends --qos=normal unless told otherwise
            venv_path=venv,
            # a task that fails makes every job that waits on it (datatrove's stats merge, the next
            # dedup stage) unrunnable: Slurm cancels them instead of leaving them pending forever
            # (DependencyNeverSatisfied)
            sbatch_args={"kill-on-invalid-dep": "yes", **({"account": config.slurm_account} if config.slurm_account else {}),
                         **config.slurm_sbatch},
            logging_dir=logging_dir,
            job_name="lmforge",
            skip_completed=True,
            **extra,
        )
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise RuntimeError("the ray executor needs ray on this machine and a running cluster: pip install 'ray[default]'")
    executor = PooledRayExecutor(
        pipeline, tasks=config.tasks, workers=config.workers, logging_dir=logging_dir, skip_completed=True,
        **config.extra,
    )
    executor.connect = (config, verbose)  # run() joins the cluster (connect_ray) before its first task
    return executor


#: what a Slurm submission leaves in its logging folder: the job id, for `corpus status`
SLURM_JOB_FILE = "slurm_job.json"


class SlurmExecutor(SlurmPipelineExecutor):
    """datatrove's Slurm executor that records the job ids of each submission in
    `LOGGING_DIR/slurm_job.json` (every array job of it: over 1,001 tasks datatrove submits
    several; with the array index -> task rank map), so that `corpus status` can ask `squeue`
    which unfinished tasks are still queued or running and call the others failed, and a
    submission that sbatch refuses is one line (sbatch's own message)."""

    def launch_job(self):
        import subprocess

        self._refuse_a_second_submission()
        recorder = _JobIds(self.job_id_retriever)
        self.job_id_retriever = recorder
        try:
            super().launch_job()
        except subprocess.CalledProcessError as exc:
            said = (exc.output or b"").decode(errors="replace").strip() or "sbatch's own error is above"
            raise RuntimeError(f"sbatch refused the job (exit status {exc.returncode}): {said}") from None
        finally:
            self.job_id_retriever = recorder.inner
        if self.job_id not in (None, -1):
            import json
            import time

            with self.logging_dir.open("ranks_to_run.json", "r") as f:
                ranks = json.load(f)
            # over `max_array_size` (1001) tasks datatrove submits several array jobs, job k holding
            # the ranks from k * max_array_size on; the last id of all is its stats-merge job
            jobs = recorder.ids[:-1] if len(recorder.ids) > 1 else recorder.ids
            with self.logging_dir.open(SLURM_JOB_FILE, "w") as f:
                json.dump({"job_id": str(self.job_id), "jobs": [str(j) for j in jobs], "max_array": self.max_array_size,
                           "ranks": ranks, "submitted": time.time()}, f)


    def _refuse_a_second_submission(self) -> None:
        """The same command run again while the tasks of its last submission are still queued
        or running (a pipeline whose wait ran out, a second shell) would submit those tasks a
        second time, two processes then writing each one's files: refused, saying how to follow
        or cancel the first."""
        from lmforge.corpus.status import slurm_queue

        logging_dir = Path(self.logging_dir.path)
        jobs, queued = slurm_queue(logging_dir)
        if queued:
            out = logging_dir.parents[1]
            raise RuntimeError(f"Slurm job {jobs} of an earlier submission into {out} still has {len(queued)} tasks queued or "
                               f"running; follow it with `lmforge corpus status {out}` and run the same command again when it "
                               f"is done (finished tasks are skipped), or stop it first (scancel {jobs.replace(',', '')})")


class _JobIds:
    """datatrove's job id retriever, keeping every id it returns (one per sbatch call)."""

    def __init__(self, inner):
        self.inner = inner
        self.ids: list = []

    def __call__(self, output: str):
        job = self.inner(output)
        self.ids.append(job)
        return job


def _pooled_ray_executor_class():
    """`PooledRayExecutor`, defined on first use so that importing this module never imports ray."""
    from datatrove.executor import RayPipelineExecutor

    class PooledRayExecutor(RayPipelineExecutor):
        """datatrove's Ray executor with one long-lived actor per CPU slot that runs task after task.

        datatrove's own `run()` makes every task a new placement group and a new actor (a fresh
        worker process that imports ray, datatrove, lmforge's steps and their models), then a
        process pool inside it: 9.2 s a task here on a loaded 2-core machine, so 8 tasks of
        `corpus process` took 131 s against 70 s for 2 (benchmarks/engines.py; now 54 s and
        52 s, about 0 s a task over the local executor). Here `min(workers, tasks, CPUs of the
        cluster / cpus_per_task)` actors start once per command (every dedup stage reuses them;
        `release_ray_actors` ends them after the last) and are handed the next unfinished rank
        as each one finishes, so a task costs what it costs locally. A task that raises is failed
        (its log says why; the caller names it); an actor that dies (node lost) is replaced and
        its rank retried, at most `max_retries` times. datatrove's completion markers, stats
        and logs are written exactly as before (`_run_for_rank` is datatrove's). datatrove's
        `nodes_per_task`, `tasks_per_job` and `time` are not used.
        """

        max_retries = 2

        def run(self):
            import collections

            import ray
            from ray.exceptions import RayActorError

            self._launched = True
            ranks = collections.deque(self.get_incomplete_ranks(range(self.world_size)))
            if not ranks:
                return
            connect_ray(*getattr(self, "connect", (ExecutorConfig(executor="ray"), False)))
            self.save_executor_as_json()
            executor_ref = [ray.put(self)]  # in a list: Ray hands the actor the ref, which it resolves once
            actors = _ray_actors(self.cpus_per_task, self.mem_per_cpu_gb, min(self.workers, len(ranks)))
            pending: dict = {}
            retries: collections.Counter = collections.Counter()
            for actor in actors:
                if ranks:
                    rank = ranks.popleft()
                    pending[actor.run.remote(executor_ref, rank)] = (actor, rank)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    actor, rank = pending.pop(ref)
                    try:
                        ray.get(ref)
                    except RayActorError:  # the process or its node died: a new actor, the rank again
                        actor = _replace_ray_actor(actor)
                        if retries[rank] < self.max_retries:
                            retries[rank] += 1
                            ranks.appendleft(rank)
                    except Exception:  # noqa: BLE001 - the task failed: its log and missing marker say so
                        pass
                    if ranks:
                        rank = ranks.popleft()
                        pending[actor.run.remote(executor_ref, rank)] = (actor, rank)

    return PooledRayExecutor


#: (Ray job, cpus, memory) -> [actor class, actors] this process started on the Ray cluster,
#: reused by every stage of the command (dedup's four stages start them once) and ended by
#: `release_ray_actors` when its last stage is done
_ACTORS: dict = {}


def _ray_actors(cpus: int, mem_per_cpu_gb: float, wanted: int) -> list:
    """Up to `wanted` runner actors of `cpus` CPUs each, no more than the cluster's CPUs hold
    at once (an actor that cannot be placed would hold its ranks forever)."""
    import ray

    key = (ray.get_runtime_context().get_job_id(), cpus, mem_per_cpu_gb)
    if key not in _ACTORS:
        _ACTORS[key] = [ray.remote(num_cpus=cpus, memory=int(mem_per_cpu_gb * cpus * 1024 ** 3))(_RankRunner), []]
    runner, pool = _ACTORS[key]
    slots = int(ray.cluster_resources().get("CPU", 1) // max(cpus, 1)) or 1
    while len(pool) < min(wanted, slots):
        pool.append(runner.remote())
    return pool[:wanted]


def release_ray_actors() -> None:
    """End the actors this process started (their CPUs go back to the cluster). Called when a
    command's last stage is done: actors held longer would starve every other job on the
    cluster (a task of a program that called lmforge waited forever for a CPU)."""
    if not _ACTORS:
        return
    import ray

    for _, pool in _ACTORS.values():
        for actor in pool:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone with its node or the connection
                pass
    _ACTORS.clear()


def _replace_ray_actor(actor):
    """A new actor in the place of `actor`, which died."""
    for runner, pool in _ACTORS.values():
        if actor in pool:
            new = runner.remote()
            pool[pool.index(actor)] = new
            return new
    raise LookupError("not one of this process's Ray actors")


class _RankRunner:
    """A Ray actor that runs ranks of any executor handed to it, each with a fresh copy of the
    pipeline; it keeps the executors it has unpickled (one per stage)."""

    def __init__(self):
        self.executors: dict = {}

    def run(self, executor_ref: list, rank: int) -> None:
        import copy

        import ray

        key = executor_ref[0].hex()
        if key not in self.executors:
            executor = ray.get(executor_ref[0])
            self.executors = {key: (executor, executor.pipeline)}  # the stage before is done
        executor, pipeline = self.executors[key]
        executor.pipeline = copy.deepcopy(pipeline)  # steps count per task, as locally
        executor._run_for_rank(rank)


def PooledRayExecutor(*args, **kwargs):  # noqa: N802 - a class made on first use
    return _pooled_ray_executor_class()(*args, **kwargs)


#: environment variables a Ray worker gets from the driver whenever they are set there: the
#: module path, and the credentials and endpoints of object stores (fsspec/s3fs read them)
RAY_ENV_ALWAYS = ("PYTHONPATH",)
RAY_ENV_PREFIXES = ("AWS_", "S3_", "FSSPEC_", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_STORAGE_")

#: (address, env_vars) of the Ray connection this process made, to reuse or replace it
_RAY_CONNECTED: tuple | None = None


def ray_env_vars(names=(), environ=None) -> dict[str, str]:
    """The variables of the driver's environment sent to every Ray worker: PYTHONPATH, every
    AWS_* / S3_* / FSSPEC_* (and GCS/Azure credentials) variable, and `names` (--ray-env).

    Workers are started by the raylet of their node, with the environment of whoever ran
    `ray start` there: credentials exported in the submitting shell never reached them."""
    import os

    environ = os.environ if environ is None else environ
    chosen = {name: environ[name] for name in RAY_ENV_ALWAYS if name in environ}
    chosen.update({name: value for name, value in environ.items() if name.startswith(RAY_ENV_PREFIXES)})
    missing = [name for name in names if name not in environ]
    if missing:
        raise ValueError(f"--ray-env {' '.join(missing)}: not set in this shell; export it first or drop the flag")
    chosen.update({name: environ[name] for name in names})
    return chosen


def connect_ray(config: ExecutorConfig, verbose: bool = False) -> None:
    """Join the Ray cluster at `config.ray_address` (else RAY_ADDRESS) with `ray_env_vars` as
    the workers' runtime environment, else start a local cluster (whose workers inherit this
    process's environment). A connection this process already
    made with the same address and environment is reused, and so is one a program that calls
    lmforge as a library made itself (`ray.init(...)` before `run_corpus`)."""
    global _RAY_CONNECTED
    import os

    import ray

    joining = config.ray_address or os.environ.get("RAY_ADDRESS")
    # a local cluster started here has this process's environment already; sending it anyway
    # costs every worker a runtime-env set-up (~6 s more to start 2 actors here)
    env = ray_env_vars(config.ray_env) if joining else {}
    key = (config.ray_address, tuple(sorted(env.items())))
    if ray.is_initialized():
        if _RAY_CONNECTED in (key, None):  # ours with these settings, or the embedding program's own
            return
        ray.shutdown()
        _ACTORS.clear()
    if joining and "RAY_AUTH_MODE" not in os.environ and _ray_token_available():
        # Ray >= 2.5x: `ray start --head` turns token authentication on, and a driver joining by
        # address sends the token only with RAY_AUTH_MODE=token (Ray does it itself for "auto"
        # alone); without, "cannot reach a Ray cluster". A token sent to a cluster without
        # authentication is ignored. Ray reads the mode into its config once: refreshed as its own
        # `ray start` does (private; where it is missing, the variable alone, read at start-up)
        os.environ["RAY_AUTH_MODE"] = "token"
        try:
            from ray._private.authentication.authentication_token_setup import _enable_token_auth

            _enable_token_auth()
        except ImportError:
            pass
    try:
        # "local": a new cluster, not one a `ray start` on this machine left running (Ray's default)
        ray.init(address=config.ray_address or ("auto" if joining else "local"),
                 runtime_env={"env_vars": env} if env else None, log_to_driver=verbose,
                 **({} if joining else {"include_dashboard": False}))  # a cluster started here: no dashboard
    except ConnectionError as exc:
        token = ("" if _ray_token_available() else
                 "; a cluster with token authentication (the default of `ray start` from Ray 2.5x) also wants its token "
                 "here: copy the head's ~/.ray/auth_token (`ray get-auth-token`) or export RAY_AUTH_TOKEN")
        raise RuntimeError(f"--ray-address {config.ray_address or '(RAY_ADDRESS)'}: cannot reach a Ray cluster ({exc}); "
                           f"start one with `ray start --head` or leave --ray-address out to start a local one{token}") from None
    _RAY_CONNECTED = key


def _ray_token_available() -> bool:
    """Whether this machine has a Ray authentication token: RAY_AUTH_TOKEN, the file
    RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token (where `ray start` and `ray get-auth-token
    --generate` write it)."""
    import os

    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    return os.path.isfile(path)


class QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor with its console logging turned down to warnings.

    datatrove's task logger prints every step of every task at INFO to stderr; a command
    line tool prints a progress bar and a summary table instead. The full log still goes to
    `LOGGING_DIR/logs/task_NNNNN.log`.
    """

    #: a task that raises leaves its log and no completion marker, and the other tasks still run
    #: (the caller names the failed ones, as after a Ray run); datatrove's own stops the run
    keep_going = False

    def __init__(self, *args, verbose: bool = False, **kwargs):
        kwargs.setdefault("start_method", "fork" if sys.platform == "linux" else "spawn")
        super().__init__(*args, **kwargs)
        self.verbose = verbose

    def _launch_run_for_rank(self, rank: int, ranks_q, completed=None, completed_lock=None):
        try:
            return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)
        except Exception:
            if not self.keep_going:
                raise
            from datatrove.utils.stats import PipelineStats

            return PipelineStats()

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        with _quiet_task_logger(self.verbose):
            return super()._run_for_rank(rank, local_rank, node_rank)

    def run(self):
        with _quiet_task_logger(self.verbose):
            return super().run()


@contextlib.contextmanager
def _quiet_task_logger(verbose: bool):
    import datatrove.executor.base as base
    from loguru import logger

    original_add, original_close = base.add_task_logger, base.close_task_logger
    level = "INFO" if verbose else "WARNING"
    # a callable format never gets loguru's "\n{exception}" appended: a task that fails says
    # why in one line on the console (the CLI then names the file and the fix); the full
    # traceback stays in LOGGING_DIR/logs/task_NNNNN.log, and on the console with -v
    console_format = "{level}: {message}" if verbose else (lambda record: "{level}: {message}\n")

    def add_task_logger(logging_dir, rank, local_rank=0, node_rank=-1):
        logger.remove()
        logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
        logger.add(sys.stderr, level=level if local_rank == 0 else "ERROR", format=console_format)
        logger.add(_QuietFileSink(logfile), level="DEBUG")
        return logfile

    def close_task_logger(logfile):
        logger.complete()
        logger.remove()
        logger.add(sys.stderr, level=level, format=console_format)
        with contextlib.suppress(OSError):  # a full disk: the task's own error says so
            logfile.close()

    base.add_task_logger, base.close_task_logger = add_task_logger, close_task_logger
    try:
        logger.remove()
        logger.add(sys.stderr, level=level, format=console_format)
        yield
    finally:
        base.add_task_logger, base.close_task_logger = original_add, original_close


class _QuietFileSink:
    """A task's log file that gives up quietly when it cannot be written (a full disk): the
    task's own error then reaches the user as one line, not buried under loguru's report of
    its failed write ("--- Logging error in Loguru Handler ---" and two tracebacks)."""

    def __init__(self, file):
        self.file = file
        self.broken = False

    def write(self, message: str) -> None:
        if self.broken:
            return
        try:
            self.file.write(message)
            self.file.flush()
        except OSError:
            self.broken = True
