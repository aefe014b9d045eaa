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


def test_shards_on_slurm_name_a_failed_task_resume_and_merge_into_the_source_of_a_local_build(partition, engine_reference,
                                                                                               tmp_path):
    """`shards build --tasks 3 --executor slurm`: a task array and a merge job waiting on it.
    Task 2 fails (a folder in the way of its part record): `shards status` exits 1 naming it,
    and the merge job is cancelled. The same command resubmits task 2 alone; the merged shards
    and source.json are a local `--tasks 3` build's, byte for byte. Then the same build again
    in arrays of 2 tasks (datatrove's max_array_size, 1,001 on a real cluster): two array
    jobs, both known to `shards status`."""
    from lmforge.corpus.execution import ExecutorConfig
    from lmforge.tokenize.build import BuildConfig, build_shards

    _, reference = engine_reference
    tok = tmp_path / "tok"
    assert CliRunner().invoke(main, ["tokenizer", "train", str(reference / "corpus"), "-o", str(tok), "--vocab-size", "400"]).exit_code == 0
    inputs = [str(reference / "corpus"), str(reference / "dedup")]
    build = ["shards", "build", *inputs, "--tokenizer", str(tok), "--shard-tokens", "2000", "--tasks", "3"]
    assert CliRunner().invoke(main, [*build, "-o", str(tmp_path / "local")]).exit_code == 0
    on_slurm = [*build, "-o", str(tmp_path / "slurm"), "--executor", "slurm", "--slurm-partition", partition,
                "--slurm-mem-per-cpu", "1", "--slurm-time", "00:10:00"]
    blocker = tmp_path / "slurm" / ".build" / "part-00002.json"
    blocker.mkdir(parents=True)
    result = CliRunner().invoke(main, on_slurm)
    assert result.exit_code == 0 and "submitted to Slurm: 3 tasks as job" in result.output, result.output
    wait_for_shards(tmp_path / "slurm")
    status = CliRunner().invoke(main, ["shards", "status", str(tmp_path / "slurm")])
    text = " ".join(status.output.split())
    assert status.exit_code == 1 and "stage tasks" in text and "2/3 tasks done" in text and "task 2 failed" in text, text
    assert "stage merge: cancelled" in text

    blocker.rmdir()
    result = CliRunner().invoke(main, on_slurm)
    assert result.exit_code == 0 and "submitted to Slurm: 3 tasks" in result.output, result.output
    assert wait_for_shards(tmp_path / "slurm").finished
    status = CliRunner().invoke(main, ["shards", "status", str(tmp_path / "slurm")])
    assert status.exit_code == 0 and "all stages of `shards build` done" in status.output, status.output

    def tree(root: Path) -> dict:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and not {".lmforge", ".build"} & set(p.relative_to(root).parts) and p.name != ".lmforge.lock"}

    assert tree(tmp_path / "slurm") == tree(tmp_path / "local") != {}

    arrays = ExecutorConfig(executor="slurm", tasks=3, slurm_partition=partition, slurm_mem_per_cpu_gb=1, slurm_time="00:10:00",
                            extra={"max_array_size": 2})
    res = build_shards(inputs, tok, tmp_path / "arrays", BuildConfig(shard_tokens=2000), executor=arrays)
    record = json.loads((tmp_path / "arrays" / ".lmforge" / "shards" / "slurm_job.json").read_text())
    assert len(record["jobs"]) == 2 and record["jobs"][-1] == str(res.submitted["tasks_job"])
    assert wait_for_shards(tmp_path / "arrays").finished
    assert tree(tmp_path / "arrays") == tree(tmp_path / "local")


def wait_for_shards(out: Path, timeout: float = 600):
    """Poll `staged_status` until nothing of the shards run is queued or running."""
    from lmforge.corpus.status import staged_status

    deadline = time.monotonic() + timeout
    while True:
        status = staged_status(out)
        pending = [s for s in status.stages.values() if s is not None and not s.finished and (s.queued is None or s.queued)]
        if status.finished or not pending:
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"the Slurm jobs of {out} did not end within {timeout:.0f} s: {status}")
        time.sleep(2)
