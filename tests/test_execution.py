"""Executors: local runs, Slurm/Ray construction, remote inputs through fsspec."""

from __future__ import annotations

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
