"""`--executor ray` on a real local Ray cluster (one per test session, started here): the same
documents as a local run for process and dedup, a failed task is a non-zero exit naming it,
relative paths, stats.json and the summary after the run. Skipped where ray is not installed
(`pip install 'ray[default]'`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import documents_of, s3_documents

from lmforge.cli import main

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'ray[default]' to run the Ray tests")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A Ray cluster of two nodes on this machine, started as a user starts one: `ray start
    --head --block` on a free port of 127.0.0.1, then `ray start --address HEAD --block` (two
    raylets, 1 CPU each, each in a folder of its own: where its workers resolve relative paths),
    without this process's PYTHONPATH (lmforge's import path reaches the workers only because
    --executor ray sends it). Two tasks at once run one on each node. Yields the head's
    address; both stopped by their process ids at the end."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("ray-start")
    # Ray >= 2.5x turns on token authentication for `ray start`; a throwaway cluster on
    # 127.0.0.1 does without (for the workers, and for this process's driver below)
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    mp.setenv("LMFORGE_RAY_PROBE", "sent")  # here, not in `ray start`'s environment: --ray-env sends it
    ray_cli = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
    nodes = []

    def start(name: str, *flags: str) -> None:
        (folder / name).mkdir()
        log = open(folder / f"{name}.log", "w")
        proc = subprocess.Popen([*ray_cli, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                                 "--disable-usage-stats", *flags],
                                cwd=folder / name, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        nodes.append((proc, log))
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in (folder / f"{name}.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                stop()
                pytest.fail(f"ray start ({name}) did not start: {(folder / f'{name}.log').read_text()[-2000:]}")
            time.sleep(0.5)

    def stop() -> None:
        for proc, log in reversed(nodes):
            proc.send_signal(signal.SIGTERM)  # --block: ray stops what it started
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()

    start("head", "--head", f"--port={port}", "--include-dashboard=false")
    start("node2", f"--address=127.0.0.1:{port}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        from lmforge.corpus import execution

        ray.shutdown()
        execution._ACTORS.clear()
        execution._RAY_CONNECTED = None
        stop()
        mp.undo()


@pytest.fixture(scope="module")
def warcs(engine_reference) -> list[Path]:
    return engine_reference[0]


@pytest.fixture(scope="module")
def local_runs(engine_reference) -> Path:
    """process and dedup of `warcs` on the local executor: the reference."""
    return engine_reference[1]


documents = documents_of


def on_ray(address: str) -> list[str]:
    """The flags of every Ray run here: the same connection (address and environment) for all."""
    return ["--executor", "ray", "--ray-address", address, "--ray-env", "LMFORGE_RAY_PROBE"]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def test_process_on_ray_names_a_failed_task_then_resumes_to_what_a_local_run_writes(ray_cluster, warcs, local_runs,
                                                                                      tmp_path, monkeypatch):
    """Task 1 cannot write its stats (a folder is in the way): datatrove's Ray executor only
    logged "Only 1/2 tasks completed" and exited 0; now exit 1 names task 1, its error and its
    log, and writes no stats.json. The same command then resumes (task 0 is skipped) to the
    documents and counts of a local run. Relative paths throughout: the command runs in
    tmp_path, the Ray workers in the folder `ray start` ran in, where a relative path would land."""
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "corpus" / ".lmforge" / "process" / "stats" / "00001.json"
    blocker.mkdir(parents=True)
    args = ["corpus", "process", *[os.path.relpath(p, tmp_path) for p in warcs], "-o", "corpus", "--tasks", "2",
            *on_ray(ray_cluster), "--no-progress"]
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert "1 of 2 tasks failed: task 1 failed" in result.output
    assert "IsADirectoryError" in result.output and "task_00001.log" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "corpus" / "stats.json").exists()

    blocker.rmdir()
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert documents(tmp_path / "corpus") == documents(local_runs / "corpus") != []
    stats = json.loads((tmp_path / "corpus" / "stats.json").read_text())
    local = json.loads((local_runs / "corpus" / "stats.json").read_text())
    assert stats["tasks_done"] == stats["tasks"] == 2 and stats["summary"]["kept"] == local["summary"]["kept"]
    assert "kept" in result.output and "stats.json" in result.output  # the summary table


def test_two_nodes_read_s3_inputs_and_write_an_s3_output_with_the_documents_of_a_local_run(ray_cluster, s3, warcs,
                                                                                          local_runs):
    """Multi-node Ray with object storage, as docs/cluster.md (3c) says to run it: the WARCs in
    `s3://`, `-o s3://…` through `LMFORGE_STAGING` (a folder both nodes see; on a real cluster
    the shared filesystem), the S3 credentials and endpoint sent to the workers from this
    process's environment. The two tasks run one on each node (1 CPU each, a worker per task):
    the documents and counts of a local run of the same files, `stats.json` uploaded last, the
    run's state left in staging."""
    for path in warcs:
        s3.put(str(path), f"lmforge/crawl/{path.name}")
    result = run("corpus", "process", "s3://lmforge/crawl/*.warc.gz", "-o", "s3://lmforge/ray-corpus", "--tasks", "2",
                 *on_ray(ray_cluster), "--no-progress")
    assert result.exit_code == 0, result.output
    alive = [node for node in ray.nodes() if node["Alive"]]
    assert len(alive) == 2 and all(node["Resources"].get("CPU") == 1 for node in alive)  # so one task on each
    assert s3_documents(s3, "lmforge/ray-corpus") == documents(local_runs / "corpus") != []
    stats = json.loads(s3.cat("lmforge/ray-corpus/stats.json"))
    local = json.loads((local_runs / "corpus" / "stats.json").read_text())
    assert stats["tasks_done"] == 2 and stats["summary"] == local["summary"]
    assert not s3.exists("lmforge/ray-corpus/.lmforge")


def test_dedup_on_ray_stops_at_a_failed_stage_then_resumes_to_what_a_local_run_writes(ray_cluster, local_runs, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "dedup" / ".lmforge" / "dedup-signatures" / "stats" / "00000.json"
    blocker.mkdir(parents=True)
    args = ["corpus", "dedup", os.path.relpath(local_runs / "corpus", tmp_path), "-o", "dedup", "--tasks", "2",
            *on_ray(ray_cluster)]
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert "signatures stage" in result.output and "task 0 failed" in result.output
    assert not (tmp_path / "dedup" / ".lmforge" / "dedup-buckets").exists()  # the next stage never started

    blocker.rmdir()
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert documents(tmp_path / "dedup") == documents(local_runs / "dedup") != []
    assert len(documents(tmp_path / "dedup")) < len(documents(local_runs / "corpus"))  # the copies went
    stats = json.loads((tmp_path / "dedup" / "stats.json").read_text())
    assert stats["kept"] == json.loads((local_runs / "dedup" / "stats.json").read_text())["kept"]


def test_ray_workers_get_the_forwarded_environment(ray_cluster):
    """Workers run with the environment of whoever ran `ray start`; `--ray-env VAR` (and
    PYTHONPATH, AWS_*) reach them through the job's runtime environment. (lmforge itself was
    importable in the workers above only through the PYTHONPATH sent.)"""
    from lmforge.corpus.execution import ExecutorConfig, connect_ray

    connect_ray(ExecutorConfig(executor="ray", ray_address=ray_cluster, ray_env=("LMFORGE_RAY_PROBE",)))  # the runs' connection

    @ray.remote
    def probe():
        return os.environ.get("LMFORGE_RAY_PROBE"), os.environ.get("PYTHONPATH"), os.getcwd()

    value, pythonpath, cwd = ray.get(probe.remote())
    assert value == "sent" and pythonpath == os.environ.get("PYTHONPATH")
    assert cwd != os.getcwd()


def test_ray_env_vars_chooses_credentials_and_named_variables(monkeypatch):
    from lmforge.corpus.execution import ExecutorConfig, ray_env_vars

    env = {"PYTHONPATH": "/src", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://x", "HOME": "/root", "MY_TOKEN": "t"}
    assert ray_env_vars(environ=env) == {"PYTHONPATH": "/src", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://x"}
    assert ray_env_vars(["MY_TOKEN"], environ=env)["MY_TOKEN"] == "t"
    monkeypatch.delenv("LMFORGE_NOT_SET", raising=False)
    with pytest.raises(ValueError, match="--ray-env LMFORGE_NOT_SET: not set"):
        ExecutorConfig(executor="ray", ray_env=("LMFORGE_NOT_SET",))


def test_shards_on_ray_are_the_shards_of_a_local_run_and_a_failed_task_is_named(ray_cluster, local_runs, tmp_path):
    """`shards build --tasks 3` of real documents (the reference corpus and dedup outputs: 4
    files) on Ray: the same shards and source.json, byte for byte, as `--tasks 3` on the local
    executor; a task that fails (a folder in the way of its part record) is exit 1 naming it."""
    tok = tmp_path / "tok"
    assert run("tokenizer", "train", str(local_runs / "corpus"), "-o", str(tok), "--vocab-size", "400").exit_code == 0
    inputs = [str(local_runs / "corpus"), str(local_runs / "dedup")]
    build = ["shards", "build", *inputs, "--tokenizer", str(tok), "--shard-tokens", "2000", "--tasks", "3"]
    local = run(*build, "-o", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output
    blocker = tmp_path / "ray" / ".build" / "part-00002.json"
    blocker.mkdir(parents=True)
    failed = run(*build, "-o", str(tmp_path / "ray"), *on_ray(ray_cluster))
    assert failed.exit_code == 1 and "1 of 3 tasks failed: task 2 failed" in failed.output, failed.output
    blocker.rmdir()
    result = run(*build, "-o", str(tmp_path / "ray"), *on_ray(ray_cluster))
    assert result.exit_code == 0, result.output

    def tree(root: Path) -> dict:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and not {".lmforge", ".build"} & set(p.relative_to(root).parts) and p.name != ".lmforge.lock"}

    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    source = json.loads((tmp_path / "ray" / "source.json").read_text())
    assert len(source["inputs"]) == 4 and source["documents"] == len(documents(local_runs / "corpus")) + len(documents(local_runs / "dedup"))


def test_a_recipe_runs_its_corpus_stage_on_ray_with_the_documents_of_a_local_run(ray_cluster, warcs, local_runs, tmp_path,
                                                                                  monkeypatch):
    """`[execution] executor = "ray"` in a recipe: the pipeline's corpus stage runs on the Ray
    cluster and writes the documents the local reference run wrote; pipeline.json records it."""
    from lmforge.pipelines.recipe import parse_recipe
    from lmforge.pipelines.runner import run_pipeline

    recipe = parse_recipe({
        "pipeline": {"output": str(tmp_path / "run")},
        "execution": {"executor": "ray", "tasks": 2, "ray_address": ray_cluster, "ray_env": ["LMFORGE_RAY_PROBE"]},
        "corpus": {"inputs": [str(p) for p in warcs], "languages": ["en"]},
    })
    record = run_pipeline(recipe, progress=False, log=lambda line: None)
    assert record["stages"]["corpus"]["status"] == "done"
    assert record["execution"]["executor"] == "ray" and record["execution"]["tasks"] == 2
    assert documents(tmp_path / "run" / "corpus") == documents(local_runs / "corpus") != []
    stats = json.loads((tmp_path / "run" / "corpus" / "stats.json").read_text())
    assert stats["tasks"] == 2 and stats["summary"]["kept"] == json.loads((local_runs / "corpus" / "stats.json").read_text())["summary"]["kept"]
