"""`--executor slurm` on a real Slurm: a cluster that answers `sinfo` on this machine
(`scripts/slurm-local.sh install && scripts/slurm-local.sh start` makes a one-node one; see
docs/cluster.md). Skipped, saying so, where there is none (CI, most laptops): the job scripts
and `corpus status` are also tested without Slurm in tests/test_execution.py.

What is checked for real: `corpus process` submitted with relative paths from another folder,
a task that fails (exit 1 from `corpus status`, naming the task and its log; the stats-merge
job that waited on it cancelled, not left pending), the same command resuming only that task,
and then the documents and counts of a local run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import documents_of

from lmforge.cli import main


def _partition() -> str:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        pytest.skip("no Slurm here (sbatch and sinfo not on PATH); `scripts/slurm-local.sh install && "
                    "scripts/slurm-local.sh start` runs a one-node cluster on this machine")
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo did not answer within 30 s (slurmctld not running?)")
    parts = [line.split() for line in out.stdout.splitlines() if line.strip()]
    up = [name for name, avail in parts if avail == "up"]
    if out.returncode != 0 or not up:
        pytest.skip(f"sinfo does not answer with a partition that is up ({(out.stderr or out.stdout).strip()[:200]}); "
                    "start Slurm (scripts/slurm-local.sh start)")
    default = [name for name in up if name.endswith("*")]
    return (default or up)[0].rstrip("*")


@pytest.fixture(scope="module")
def partition() -> str:
    return _partition()


documents = documents_of


def wait_for(out: Path, timeout: float = 600):
    """Poll `corpus_status` until no task of the run is queued or running; returns the status."""
    from lmforge.corpus.status import corpus_status

    deadline = time.monotonic() + timeout
    while True:
        status = corpus_status(out, write=False)
        if status.finished or status.queued == {}:
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"the Slurm job of {out} did not end within {timeout:.0f} s: {status}")
        time.sleep(2)


def test_process_on_slurm_names_a_failed_task_then_resumes_to_what_a_local_run_writes(partition, engine_reference, tmp_path,
                                                                                        monkeypatch):
    warcs, reference = engine_reference
    monkeypatch.chdir(tmp_path)
    # the tasks find this environment's launch_pickled_pipeline whatever this shell's PATH holds
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                               if Path(p) != Path(sys.executable).parent))
    blocker = tmp_path / "corpus" / ".lmforge" / "process" / "stats" / "00001.json"
    blocker.mkdir(parents=True)  # task 1 cannot write its stats
    args = ["corpus", "process", *[os.path.relpath(p, tmp_path) for p in warcs], "-o", "corpus", "--tasks", "2",
            "--executor", "slurm", "--slurm-partition", partition, "--slurm-mem-per-cpu", "1", "--slurm-time", "00:10:00",
            "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "as job" in result.output and "lmforge corpus status" in result.output
    job = json.loads((tmp_path / "corpus" / ".lmforge" / "process" / "slurm_job.json").read_text())["job_id"]

    status = wait_for(tmp_path / "corpus")
    assert status.failed == [1] and status.done == [0]
    result = CliRunner().invoke(main, ["corpus", "status", "corpus"])
    assert result.exit_code == 1
    assert "task 1 failed" in result.output and "task_00001.log" in result.output and "IsADirectoryError" in result.output
    assert "run the same command again to resume" in result.output
    # the stats merge datatrove submits after the array (afterok) is cancelled, not left pending forever
    deadline = time.monotonic() + 60
    while subprocess.run(["squeue", "-h", "-t", "PD", "-o", "%i %E"], capture_output=True, text=True).stdout.count(f"afterok:{job}"):
        assert time.monotonic() < deadline, "a job waiting on the failed array is still pending"
        time.sleep(2)

    blocker.rmdir()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "(1 of 2 tasks)" in result.output, result.output
    assert wait_for(tmp_path / "corpus").finished
    result = CliRunner().invoke(main, ["corpus", "status", "corpus"])
    assert result.exit_code == 0 and "kept" in result.output, result.output
    assert documents(tmp_path / "corpus") == documents(reference / "corpus") != []
    stats = json.loads((tmp_path / "corpus" / "stats.json").read_text())
    local = json.loads((reference / "corpus" / "stats.json").read_text())
    assert stats["summary"] == local["summary"] and stats["files"] == local["files"]
    assert stats["tasks_done"] == 2 and "seconds" not in stats and stats["task_seconds"] > 0
