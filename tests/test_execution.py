"""Executors: local runs, Slurm/Ray construction, remote inputs through fsspec."""

from __future__ import annotations

import json

import functools
import http.server
import threading

import pytest
from click.testing import CliRunner

from lmforge.cli import main
from lmforge.corpus.execution import ExecutorConfig, make_executor
from lmforge.corpus.pipeline import CorpusConfig, build_pipeline


def test_executor_config_validates():
    with pytest.raises(ValueError, match="executor must be one of"):
        ExecutorConfig(executor="kubernetes")
    with pytest.raises(ValueError, match="--slurm-partition"):
        ExecutorConfig(executor="slurm")
    with pytest.raises(ValueError, match="tasks"):
        ExecutorConfig(tasks=0)


def test_datatrove_io_sees_the_real_hf_filesystem_only_through_isinstance():
    """execution.py's import stand-in: datatrove.io's `isinstance(fs, HfFileSystem)` stays
    exact (true for a Hub file system, false for others), and everyone else imports the real
    class."""
    import datatrove.io
    from fsspec.implementations.local import LocalFileSystem
    from huggingface_hub import HfFileSystem

    assert HfFileSystem.__module__ == "huggingface_hub.hf_file_system"
    assert isinstance(HfFileSystem(), datatrove.io.HfFileSystem)
    assert not isinstance(LocalFileSystem(), datatrove.io.HfFileSystem)


def test_slurm_executor_is_built_from_the_same_pipeline(tmp_path):
    from datatrove.executor import SlurmPipelineExecutor

    config = CorpusConfig(inputs=["x.warc.gz"], output_dir=str(tmp_path / "out"), mode="process")
    pipeline = build_pipeline(config, ["x.warc.gz"], progress=False)
    executor = make_executor(pipeline, ExecutorConfig(executor="slurm", tasks=100, workers=10, slurm_partition="cpu"),
                             tmp_path / "logs")
    assert isinstance(executor, SlurmPipelineExecutor)
    assert executor.tasks == 100 and executor.partition == "cpu"
    assert [type(s).__name__ for s in executor.pipeline] == [type(s).__name__ for s in pipeline]


def test_cluster_executors_run_every_task_at_once_by_default(tmp_path):
    """--workers unset: 1 locally, every task on Slurm and Ray (it was 1 everywhere, so
    `--executor slurm --tasks 1000` became `#SBATCH --array=0-999%1`)."""
    assert ExecutorConfig().workers == 1 and ExecutorConfig(tasks=8).workers == 1
    assert ExecutorConfig(executor="ray", tasks=8).workers == 8
    assert ExecutorConfig(executor="slurm", tasks=8, workers=2, slurm_partition="cpu").workers == 2
    config = CorpusConfig(inputs=["x.warc.gz"], output_dir=str(tmp_path / "out"), mode="process")
    pipeline = build_pipeline(config, ["x.warc.gz"], progress=False)
    executor = make_executor(pipeline, ExecutorConfig(executor="slurm", tasks=1000, slurm_partition="cpu"), tmp_path / "logs")
    assert executor.workers == 1000


def test_ray_executor_needs_ray_or_says_how_to_get_it(tmp_path):
    pytest.importorskip("datatrove.executor")
    try:
        import ray  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="pip install"):
            make_executor([], ExecutorConfig(executor="ray"), tmp_path / "logs")
    else:  # pragma: no cover - ray installed
        assert make_executor([], ExecutorConfig(executor="ray"), tmp_path / "logs") is not None


@pytest.fixture()
def http_root(tmp_path):
    """A local HTTP server serving tmp_path/www (stands in for https://data.commoncrawl.org)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_extract_reads_a_warc_over_http(tmp_path, http_root):
    from lmforge.pipelines.sample import write_sample_warc

    root, base = http_root
    write_sample_warc(root / "crawl.warc.gz")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["corpus", "extract", f"{base}/crawl.warc.gz", "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    local = tmp_path / "local"
    assert CliRunner().invoke(main, ["corpus", "extract", str(root / "crawl.warc.gz"), "-o", str(local), "--no-progress"]).exit_code == 0
    import json

    remote_stats = json.loads((out / "stats.json").read_text())["summary"]
    local_stats = json.loads((local / "stats.json").read_text())["summary"]
    assert remote_stats["kept"] == local_stats["kept"] > 30


def test_missing_url_is_a_clear_error(tmp_path, http_root):
    _, base = http_root
    result = CliRunner().invoke(main, ["corpus", "extract", f"{base}/missing.warc.gz", "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "missing.warc.gz" in result.output and "Traceback" not in result.output


def test_corpus_status_reports_progress_then_writes_the_stats(tmp_path):
    """`corpus status OUT` for a run submitted elsewhere (Slurm returns at once): tasks done,
    a task with a log but no completion named with its log's last line and exit 1; once every
    task is done, the summary and OUT/stats.json as a local run writes them (its counts)."""
    import shutil

    from click.testing import CliRunner

    from lmforge.cli import main
    from lmforge.pipelines.sample import write_sample_warc

    inputs = tmp_path / "in"
    inputs.mkdir()
    write_sample_warc(inputs / "a.warc.gz")
    write_sample_warc(inputs / "b.warc.gz")
    out = tmp_path / "out"
    done = CliRunner().invoke(main, ["corpus", "extract", str(inputs), "-o", str(out), "--tasks", "2", "--workers", "1", "--no-progress"])
    assert done.exit_code == 0, done.output
    local = json.loads((out / "stats.json").read_text())
    # as a Slurm run looks while task 1 still runs (or has failed): its log, no completion, no stats
    state = out / ".lmforge" / "extract"
    (state / "completions" / "00001").unlink()
    shutil.move(state / "stats" / "00001.json", tmp_path / "00001.json")
    (out / "stats.json").unlink()
    result = CliRunner().invoke(main, ["corpus", "status", str(out)])
    assert result.exit_code == 1
    assert "1/2 tasks done, 1 started and not finished" in result.output and "task_00001.log" in result.output
    assert not (out / "stats.json").exists()
    (state / "completions" / "00001").write_text("")
    shutil.move(tmp_path / "00001.json", state / "stats" / "00001.json")
    result = CliRunner().invoke(main, ["corpus", "status", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "stats.json").read_text())
    assert written["summary"] == local["summary"] and written["tasks_done"] == 2 and "task_seconds" in written
    assert written["files"] == local["files"] == 2
    assert CliRunner().invoke(main, ["corpus", "status", str(tmp_path)]).exit_code == 1  # no run: one-line error


def test_corpus_status_asks_squeue_which_unfinished_tasks_failed(tmp_path, monkeypatch):
    """With the job id a Slurm submission records (OUT/.lmforge/MODE/slurm_job.json), an
    unfinished task still in `squeue` is running or queued, and one no longer there failed:
    named with its log and the way to resume. A stand-in `squeue` on PATH plays Slurm."""
    import os
    import stat

    state = tmp_path / "out" / ".lmforge" / "process"
    (state / "logs").mkdir(parents=True)
    (state / "completions").mkdir()
    (state / "executor.json").write_text(json.dumps({"world_size": 3}))
    (state / "completions" / "00000").write_text("")
    (state / "logs" / "task_00002.log").write_text("step 1\nIsADirectoryError: stats/00002.json\n")
    # resubmitted: array elements 0 and 1 are ranks 1 and 2
    (state / "slurm_job.json").write_text(json.dumps({"job_id": "41", "ranks": [1, 2]}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    squeue.write_text("#!/bin/sh\n[ \"$4\" = 41 ] && cat " + str(tmp_path / "queue") + "\n")
    squeue.chmod(squeue.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "queue").write_text("0 PENDING\n1 RUNNING\n")
    result = CliRunner().invoke(main, ["corpus", "status", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "(Slurm job 41): 1/3 tasks done, 1 running, 1 queued, 0 failed" in result.output
    (tmp_path / "queue").write_text("0 RUNNING\n")
    result = CliRunner().invoke(main, ["corpus", "status", str(tmp_path / "out")])
    assert "1 running, 0 queued, 1 failed" in result.output
    assert "task 2 failed" in result.output and "task_00002.log" in result.output and "IsADirectoryError" in result.output
    assert "run the same command again" not in result.output  # task 1 still runs
    (tmp_path / "queue").write_text("")
    result = CliRunner().invoke(main, ["corpus", "status", str(tmp_path / "out")])
    assert result.exit_code == 1 and "2 failed" in result.output and "task 1 failed" in result.output
    assert "run the same command again to resume" in result.output and "Traceback" not in result.output


def test_slurm_flags_reach_the_sbatch_script(tmp_path):
    """Account and extra #SBATCH lines go in, QOS only when given (datatrove sent --qos=normal,
    which clusters without that QOS reject), and the task activates the given environment."""
    import shutil

    from lmforge.corpus.cli import slurm_settings
    from lmforge.corpus.execution import check_engine

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    flags = {"slurm_partition": "cpu", "slurm_account": "proj", "slurm_venv": str(venv), "slurm_sbatch": ("constraint=amd",)}
    config = ExecutorConfig(executor="slurm", tasks=4, **slurm_settings(flags))
    executor = make_executor([], config, tmp_path / "logs")
    args = executor.get_sbatch_args(4)
    assert args["account"] == "proj" and args["constraint"] == "amd" and "qos" not in args
    assert args["kill-on-invalid-dep"] == "yes"  # jobs waiting on a failed task are cancelled, not left pending
    assert args["array"] in ("0-3%4", "0-3")
    assert executor.venv_path == str(venv / "bin" / "activate")
    with_qos = make_executor([], ExecutorConfig(executor="slurm", tasks=1, slurm_partition="cpu", slurm_qos="high"), tmp_path / "l2")
    assert with_qos.get_sbatch_args(1)["qos"] == "high"
    # without --slurm-venv a task finds this environment's launch_pickled_pipeline by path (a
    # shell whose PATH lacked it had every task die with "launch_pickled_pipeline: No such file")
    import sys
    from pathlib import Path

    script = with_qos.get_launch_file_contents(with_qos.get_sbatch_args(1), "launch_pickled_pipeline x.pik")
    if (Path(sys.executable).parent / "launch_pickled_pipeline").exists():
        assert f'export PATH={Path(sys.executable).parent}:"$PATH"' in script
    assert "export PATH" not in executor.get_launch_file_contents(args, "x")  # --slurm-venv: its activate script instead
    if shutil.which("sbatch") is None:
        with pytest.raises(RuntimeError, match="needs Slurm's sbatch on PATH"):
            check_engine(config)


def test_a_slow_trafilatura_import_does_not_turn_the_fallback_off(monkeypatch):
    """trafilatura's import took over 2 s on a loaded machine; it happened under the first
    fallback page's timer, which cut it off, and the failed import (cached as "not installed")
    sent every later page of the task down the fast path: a local run on 2 busy cores counted
    86 fast pages where a Slurm run of the same WARCs counted 71 fast + 15 fallback."""
    import functools
    import time

    from datatrove.data import Document

    from lmforge.corpus import extract
    from lmforge.corpus.steps import EXTRACT_FALLBACK, MainText

    @functools.cache
    def slow_import():  # as `_trafilatura_extract`: cached, slow the first time
        time.sleep(0.3)
        return lambda html, **kwargs: "the fallback's text"

    monkeypatch.setattr(extract, "_trafilatura_extract", slow_import)
    cells = "".join(f"<tr><td>Row {i} holds a measured value with its unit and a remark on it</td></tr>" for i in range(40))
    page = f"<html><body><div><p>This page lists the measurements taken this year.</p></div><table>{cells}</table></body></html>"
    step = MainText(timeout=0.1)
    out = list(step.run(iter([Document(text=page, id=str(i), metadata={"kind": "html"}) for i in range(2)])))
    assert [d.text for d in out] == ["the fallback's text"] * 2
    assert step.stats[EXTRACT_FALLBACK].total == 2


def _stand_in_squeue(tmp_path, monkeypatch):
    """A `squeue` on PATH that answers `-j JOB` with the file tmp_path/queue-JOB (empty: nothing queued)."""
    import os
    import stat

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    squeue.write_text(f"#!/bin/sh\ncat {tmp_path}/queue-$4 2>/dev/null; exit 0\n")
    squeue.chmod(squeue.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def _fake_stage(folder, tasks: int, done=(), logs=None, slurm=None):
    (folder / "completions").mkdir(parents=True)
    (folder / "logs").mkdir()
    (folder / "executor.json").write_text(json.dumps({"world_size": tasks}))
    for rank in done:
        (folder / "completions" / f"{rank:05d}").write_text("")
    for rank, line in (logs or {}).items():
        (folder / "logs" / f"task_{rank:05d}.log").write_text(f"start\n{line}\n")
    if slurm:
        (folder / "slurm_job.json").write_text(json.dumps(slurm))


def test_corpus_status_knows_every_array_job_of_a_submission_over_the_array_limit(tmp_path, monkeypatch):
    """datatrove submits more tasks than `max_array_size` (1,001) as several array jobs, job k
    holding ranks from k * max_array_size on; status asks squeue about each (it knew only the
    last). Here 5 tasks, arrays of 2: jobs 71 (ranks 0, 1), 72 (2, 3), 73 (4)."""
    _stand_in_squeue(tmp_path, monkeypatch)
    state = tmp_path / "out" / ".lmforge" / "process"
    _fake_stage(state, 5, done=[0], logs={3: "ValueError: bad page"},
                slurm={"job_id": "73", "jobs": ["71", "72", "73"], "max_array": 2, "ranks": [0, 1, 2, 3, 4]})
    (tmp_path / "queue-71").write_text("1 RUNNING\n")
    (tmp_path / "queue-72").write_text("0 PENDING\n")  # rank 2; rank 3 (element 1) is gone: failed
    (tmp_path / "queue-73").write_text("0 PENDING\n")  # rank 4
    result = CliRunner().invoke(main, ["corpus", "status", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "(Slurm job 71, 72, 73): 1/5 tasks done, 1 running, 2 queued, 1 failed" in result.output
    assert "task 3 failed" in result.output and "ValueError: bad page" in result.output


def test_corpus_status_reports_a_dedup_stage_by_stage_and_the_cancelled_stages_after_a_failure(tmp_path, monkeypatch):
    """A Slurm dedup: signatures done, a bucket task failed, the stages after it cancelled by
    Slurm (--kill-on-invalid-dep); exit 1, naming the task and the way to resume. Then all
    stages done and stats.json written: exit 0."""
    _stand_in_squeue(tmp_path, monkeypatch)
    out = tmp_path / "dedup"
    state = out / ".lmforge"
    _fake_stage(state / "dedup-signatures", 2, done=[0, 1], slurm={"job_id": "80", "ranks": [0, 1]})
    _fake_stage(state / "dedup-buckets", 2, done=[0], logs={1: "MemoryError"}, slurm={"job_id": "81", "ranks": [0, 1]})
    for job, stage in enumerate(("clusters", "filter", "stats")):
        _fake_stage(state / f"dedup-{stage}", 1, slurm={"job_id": str(82 + job), "ranks": [0]})
    result = CliRunner().invoke(main, ["corpus", "status", str(out)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "stage signatures: 2/2 tasks done" in text
    assert "stage buckets (Slurm job 81): 1/2 tasks done, 0 running, 0 queued, 1 failed" in text and "MemoryError" in text
    assert "stage clusters: cancelled (buckets failed" in text and "stage stats: cancelled" in text
    assert "run the same command again to resume" in text

    from lmforge.corpus.status import StatusError, wait_for_run

    with pytest.raises(StatusError, match="dedup stage buckets: 1 of 2 tasks failed: task 1 failed: MemoryError"):
        wait_for_run(out, poll=0)
    for stage in ("buckets", "clusters", "filter", "stats"):
        for rank in range(2 if stage == "buckets" else 1):
            (state / f"dedup-{stage}" / "completions" / f"{rank:05d}").write_text("")
    (out / "stats.json").write_text(json.dumps({"kept": 3}))
    result = CliRunner().invoke(main, ["corpus", "status", str(out)])
    assert result.exit_code == 0 and "all stages of `corpus dedup` done" in result.output
    assert wait_for_run(out, poll=0) == {"kept": 3}


def test_a_failure_report_shows_the_exception_line_of_the_log_not_its_last_200_characters():
    """A failed task's log ends with loguru's traceback (variable annotations under the frames,
    maybe a message over several lines): the report shows the exception's first line whole,
    with its type, where the last 200 characters of the last line cut a long path's exception
    type off; a task still running shows its latest line; an over-long line keeps both ends."""
    from lmforge.corpus.pipeline import SHOWN_CHARS, why_it_stopped

    path = "/shared/" + "very-long-folder/" * 20 + "stats/00001.json"
    failed = ["2026-12-01 16:39:59.023 | ERROR    | datatrove.executor.base:_run_for_rank:150 - [Errno 21] Is a directory",
              "Traceback (most recent call last):", "  File \"x.py\", line 3, in run", "    open(path)",
              "> File \"y.py\", line 9, in open", "    |    -> None", f"IsADirectoryError: [Errno 21] Is a directory: '{path}'",
              "second line of the message"]
    assert why_it_stopped(failed) == f"IsADirectoryError: [Errno 21] Is a directory: '{path}'"
    running = ["2026-12-01 16:39:55.247 | WARNING  | a caught error", "Traceback (most recent call last):",
               "ValueError: bad page", "2026-12-01 16:39:56.000 | INFO     | step 3 of 9"]
    assert why_it_stopped(running) == "2026-12-01 16:39:56.000 | INFO     | step 3 of 9"
    long = "RuntimeError: " + "x" * 2000 + " the end"
    shown = why_it_stopped([long])
    assert len(shown) <= SHOWN_CHARS and shown.startswith("RuntimeError: xxx") and shown.endswith("x the end") and " … " in shown


def test_the_slurm_wait_ends_at_once_on_a_failed_or_cancelled_task_and_after_its_time_limit(tmp_path, monkeypatch):
    """The pipeline's wait for a Slurm stage (`wait_for_run`): one failed task ends it at once,
    while the others still run, naming the task, its log and the jobs left running; a task
    cancelled before it started is named with Slurm's output for it; a run still going after
    the time limit ends it with the way to follow it; a task that ended between the look at its
    marker and squeue's answer is done, not failed."""
    from lmforge.corpus.status import StatusError, WaitTimeout, submission_in_flight, wait_for_run

    _stand_in_squeue(tmp_path, monkeypatch)
    out = tmp_path / "out"
    state = out / ".lmforge" / "process"
    _fake_stage(state, 4, done=[0], logs={1: "step 1", 2: "ValueError: bad page"}, slurm={"job_id": "90", "ranks": [0, 1, 2, 3]})
    (tmp_path / "queue-90").write_text("1 RUNNING\n3 PENDING\n")
    assert submission_in_flight(out) == ["90"]
    with pytest.raises(StatusError) as failed:
        wait_for_run(out, poll=0, timeout=60)
    message = str(failed.value)
    assert message.startswith("1 of 4 tasks failed: task 2 failed: ValueError: bad page (log: ") and "task_00002.log" in message
    assert "2 other tasks of Slurm job 90 are still queued or running (scancel 90 stops them)" in message

    (tmp_path / "queue-90").write_text("1 RUNNING\n2 RUNNING\n")  # task 3 cancelled while pending: no log of its own
    (state / "slurm_logs").mkdir()
    with pytest.raises(StatusError, match=r"task 3 failed: \(no log: it never started, or was cancelled before it did\)"):
        wait_for_run(out, poll=0, timeout=60)

    (tmp_path / "queue-90").write_text("1 RUNNING\n2 RUNNING\n3 PENDING\n")
    with pytest.raises(WaitTimeout, match=rf"{out}: not done after waiting 0:00:00; its Slurm jobs keep running: follow them "
                                          rf"with `lmforge corpus status {out}`"):
        wait_for_run(out, poll=0, timeout=0.01)

    # task 2 writes its marker and leaves the queue between the two looks: done, not failed
    import lmforge.corpus.status as status

    real = status.slurm_queue

    def queue_after_task_2_ended(logging_dir):
        (state / "completions" / "00002").write_text("")
        return "90", {1: "running", 3: "pending"}

    monkeypatch.setattr(status, "slurm_queue", queue_after_task_2_ended)
    run = status.corpus_status(out, write=False)
    assert run.failed == [] and run.done == [0, 2]
    monkeypatch.setattr(status, "slurm_queue", real)
    (tmp_path / "queue-90").write_text("")
    assert submission_in_flight(out) == []  # nothing left in the queue: a rerun submits what is not done


def test_the_slurm_wait_is_a_recipe_setting_and_a_flag_in_slurm_s_time_format(tmp_path):
    from lmforge.corpus.execution import ExecutorConfig, parse_duration

    assert parse_duration("48:00:00") == 48 * 3600 == parse_duration("2-00:00:00") == parse_duration("2-0")
    assert parse_duration("90") == 90 * 60 and parse_duration("1:30") == 90 and ExecutorConfig().slurm_wait == "48:00:00"
    for bad in ("soon", "-1", "0", "1:2:3:4"):
        with pytest.raises(ValueError, match="slurm_wait"):
            ExecutorConfig(slurm_wait=bad)
    result = CliRunner().invoke(main, ["pipeline", "run", str(tmp_path / "r.toml"), "--slurm-wait", "later"])
    assert result.exit_code == 2 and "--slurm-wait" in result.output and "HH:MM:SS" in result.output, result.output
