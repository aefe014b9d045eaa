"""Shared test fixtures. Real data lives in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Under pytest-xdist (`pytest -n 2`) each worker is one of several processes sharing the cores:
# torch and OpenMP in the worker and in the processes its tests start (the demo, kill -9 runs,
# torchrun) get one thread each, so that two workers on 2 cores do not oversubscribe them
# (OpenMP threads spin while they wait: two 2-thread processes on 2 cores run slower than one).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

#: the slowest tests, run first: under `pytest -n 2` they start at once and the other worker
#: takes the rest of the suite meanwhile (the demo alone is ~40% of the suite's serial time)
LONG_POLES = ("tests/test_demo.py::test_demo_runs_every_stage_and_resumes",)


def pytest_collection_modifyitems(config, items):
    """The `LONG_POLES` first, every other test in its collected order."""
    items.sort(key=lambda item: item.nodeid not in LONG_POLES)


def _find_shared_data() -> Path:
    """$LMFORGE_SHARED_DATA, else the nearest `shared/data` beside the repository or above it."""
    if os.environ.get("LMFORGE_SHARED_DATA"):
        return Path(os.environ["LMFORGE_SHARED_DATA"])
    repo = Path(__file__).resolve().parents[1]
    for parent in repo.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return repo.parent / "shared" / "data"


SHARED_DATA = _find_shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set LMFORGE_SHARED_DATA)")
    return SHARED_DATA


def documents_of(out: Path) -> list[tuple[str, str]]:
    """Sorted (id, text) of every document under OUT/documents/ (engine runs compared with local ones)."""
    import orjson
    import zstandard

    docs = []
    for path in sorted((out / "documents").rglob("*.jsonl.zst")):
        data = zstandard.ZstdDecompressor().stream_reader(open(path, "rb")).read()
        docs += [(d["id"], d["text"]) for d in map(orjson.loads, data.splitlines())]
    return sorted(docs)


def shared_path(*parts: str) -> Path:
    """A file under shared data, or a skip when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data file missing: {path}")
    return path


@pytest.fixture(scope="session")
def engine_reference(tmp_path_factory):
    """Two WARCs (the built-in sample twice: two tasks, and copies for dedup to find) and their
    `corpus process` and `corpus dedup` on the local executor (`BASE/corpus`, `BASE/dedup`): the
    reference the Ray and S3 tests compare with. Returns (warcs, BASE)."""
    from click.testing import CliRunner

    from lmforge.cli import main
    from lmforge.pipelines.sample import write_sample_warc

    base = tmp_path_factory.mktemp("engine-reference")
    warcs = [base / "a.warc.gz", base / "b.warc.gz"]
    for path in warcs:
        write_sample_warc(path)
    result = CliRunner().invoke(main, ["corpus", "process", *map(str, warcs), "-o", str(base / "corpus"), "--tasks", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["corpus", "dedup", str(base / "corpus"), "-o", str(base / "dedup"), "--tasks", "2"])
    assert result.exit_code == 0, result.output
    return warcs, base


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on a free port of 127.0.0.1, the environment pointing at it (the
    credentials s3fs and Ray workers read) and a bucket `lmforge`; yields an s3fs filesystem.
    One per test module (tests/test_s3.py, tests/test_ray.py); skipped where moto or s3fs is missing."""
    pytest.importorskip("s3fs", reason="s3fs is not installed: pip install 'lmforge[s3]' to run the S3 tests")
    moto_server = pytest.importorskip("moto.server", reason="moto is not installed: pip install 'moto[server]' to run the S3 tests")
    import socket

    import s3fs

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        mp.setenv("LMFORGE_STAGING", str(tmp_path_factory.mktemp("staging")))
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir("lmforge")
        yield fs
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def s3_documents(fs, url: str) -> list[tuple[str, str]]:
    """Sorted (id, text) of every document under URL/documents/ in the store `fs`."""
    import orjson
    import zstandard

    docs = []
    for key in sorted(fs.find(f"{url}/documents")):
        data = zstandard.ZstdDecompressor().stream_reader(fs.open(key, "rb")).read()
        docs += [(d["id"], d["text"]) for d in map(orjson.loads, data.splitlines())]
    return sorted(docs)
