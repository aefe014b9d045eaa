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

from datatrove.executor import LocalPipelineExecutor

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
        if self.executor == "ray":
            ray_env_vars(self.ray_env)  # a --ray-env name not set here is refused before any work


def check_engine(config: ExecutorConfig) -> None:
    """Refuse, before any work, an engine this machine cannot reach (sbatch missing said only
    "sbatch: No such file or directory")."""
    import shutil

    if config.executor == "slurm" and shutil.which("sbatch") is None:
        raise RuntimeError("--executor slurm needs Slurm's sbatch on PATH: submit from a node of the cluster "
                           "(a login node), or run here with --executor local")


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
        from datatrove.executor import SlurmPipelineExecutor

        venv = config.slurm_venv
        if venv and Path(venv).is_dir():  # the environment's folder: its activate script
            venv = str(Path(venv) / "bin" / "activate")
        return SlurmPipelineExecutor(
            pipeline,
            tasks=config.tasks,
            workers=config.workers,
            time=config.slurm_time,
            partition=config.slurm_partition,
            cpus_per_task=config.slurm_cpus_per_task,
            mem_per_cpu_gb=config.slurm_mem_per_cpu_gb,
            qos=config.slurm_qos,  # datatrove sends --qos=normal unless told otherwise
            venv_path=venv,
            sbatch_args={**({"account": config.slurm_account} if config.slurm_account else {}), **config.slurm_sbatch},
            logging_dir=logging_dir,
            job_name="lmforge",
            skip_completed=True,
            **config.extra,
        )
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise RuntimeError("the ray executor needs ray on this machine and a running cluster: pip install 'ray[default]'")
    from datatrove.executor import RayPipelineExecutor

    connect_ray(config, verbose=verbose)
    return RayPipelineExecutor(
        pipeline, tasks=config.tasks, workers=config.workers, logging_dir=logging_dir, skip_completed=True,
        **config.extra,
    )


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
    """Join the Ray cluster at `config.ray_address` (else RAY_ADDRESS, else start a local one)
    with `ray_env_vars` as the workers' runtime environment. A connection this process already
    made with the same address and environment is reused, and so is one a program that calls
    lmforge as a library made itself (`ray.init(...)` before `run_corpus`)."""
    global _RAY_CONNECTED
    import os

    import ray

    env = ray_env_vars(config.ray_env)
    key = (config.ray_address, tuple(sorted(env.items())))
    if ray.is_initialized():
        if _RAY_CONNECTED in (key, None):  # ours with these settings, or the embedding program's own
            return
        ray.shutdown()
    try:
        joining = config.ray_address or os.environ.get("RAY_ADDRESS")
        ray.init(address=config.ray_address, runtime_env={"env_vars": env}, log_to_driver=verbose,
                 **({} if joining else {"include_dashboard": False}))  # a cluster started here: no dashboard
    except ConnectionError as exc:
        raise RuntimeError(f"--ray-address {config.ray_address or '(RAY_ADDRESS)'}: cannot reach a Ray cluster ({exc}); "
                           "start one with `ray start --head` or leave --ray-address out to start a local one") from None
    _RAY_CONNECTED = key


class QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor with its console logging turned down to warnings.

    datatrove's task logger prints every step of every task at INFO to stderr; a command
    line tool prints a progress bar and a summary table instead. The full log still goes to
    `LOGGING_DIR/logs/task_NNNNN.log`.
    """

    def __init__(self, *args, verbose: bool = False, **kwargs):
        kwargs.setdefault("start_method", "fork" if sys.platform == "linux" else "spawn")
        super().__init__(*args, **kwargs)
        self.verbose = verbose

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
