"""Object storage in and out on a real S3 API: a moto server on 127.0.0.1 (started here, one per
module) and s3fs. `corpus process -o s3://…` and `corpus dedup s3://… -o s3://…` store the
documents a local run writes; tokenizer train and shards build read s3:// inputs. Skipped
where moto[server] or s3fs is missing (`pip install 'moto[server]' s3fs`)."""

from __future__ import annotations

import json
import os
import socket

import orjson
import pytest
import zstandard
from click.testing import CliRunner
from conftest import s3_documents

from lmforge.cli import main

pytest.importorskip("s3fs", reason="s3fs is not installed: pip install 'lmforge[s3]' to run the S3 tests")
pytest.importorskip("moto.server", reason="moto is not installed: pip install 'moto[server]' to run the S3 tests")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def local_documents(folder) -> list[tuple[str, str]]:
    docs = []
    for path in sorted((folder / "documents").rglob("*.jsonl.zst")):
        data = zstandard.ZstdDecompressor().stream_reader(open(path, "rb")).read()
        docs += [(d["id"], d["text"]) for d in map(orjson.loads, data.splitlines())]
    return sorted(docs)


def test_process_and_dedup_to_and_from_s3_store_what_local_runs_write(s3, engine_reference):
    warcs, reference = engine_reference
    result = run("corpus", "process", *map(str, warcs), "-o", "s3://lmforge/corpus", "--tasks", "2", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "s3://lmforge/corpus/documents/" in result.output
    assert s3_documents(s3, "lmforge/corpus") == local_documents(reference / "corpus") != []
    stats = json.loads(s3.cat("lmforge/corpus/stats.json"))  # the completion marker, uploaded last
    assert stats["summary"]["kept"] == json.loads((reference / "corpus" / "stats.json").read_text())["summary"]["kept"]
    assert not s3.exists("lmforge/corpus/.lmforge")  # the run's state stays in the staging folder

    result = run("corpus", "dedup", "s3://lmforge/corpus", "-o", "s3://lmforge/dedup", "--tasks", "2")
    assert result.exit_code == 0, result.output
    assert s3_documents(s3, "lmforge/dedup") == local_documents(reference / "dedup") != []
    assert s3.exists("lmforge/dedup/stats.json") and s3.find("lmforge/dedup/clusters")

    # the same command again resumes from the staging folder: the same objects in the store
    def objects():
        return {key: s3.info(key)["size"] for key in s3.find("lmforge/dedup") if not key.endswith("stats.json")}

    before = objects()
    result = run("corpus", "dedup", "s3://lmforge/corpus", "-o", "s3://lmforge/dedup", "--tasks", "2")
    assert result.exit_code == 0, result.output
    assert objects() == before and s3.exists("lmforge/dedup/stats.json")


def test_tokenizer_and_shards_read_s3_inputs(s3, tmp_path):
    """The same text files in the store and on disk: the same tokenizer and the same shards."""
    texts = {"a.txt": open(__file__, "rb").read(), "b.txt": ("hello object storage\n\n" * 200).encode()}
    (tmp_path / "text").mkdir()
    for name, data in texts.items():
        s3.pipe(f"lmforge/text/{name}", data)
        (tmp_path / "text" / name).write_bytes(data)
    for src, tag in (("s3://lmforge/text", "s3"), (str(tmp_path / "text"), "local")):
        result = run("tokenizer", "train", src, "-o", str(tmp_path / f"tok-{tag}"), "--vocab-size", "300")
        assert result.exit_code == 0, result.output
        result = run("shards", "build", src, "--tokenizer", str(tmp_path / f"tok-{tag}"), "-o", str(tmp_path / f"shards-{tag}"))
        assert result.exit_code == 0, result.output
    assert (tmp_path / "tok-s3" / "tokenizer.json").read_bytes() == (tmp_path / "tok-local" / "tokenizer.json").read_bytes()
    s3_source, local_source = (json.loads((tmp_path / f"shards-{tag}" / "source.json").read_text()) for tag in ("s3", "local"))
    assert s3_source["documents"] == local_source["documents"] > 0
    assert s3_source["tokens"] == local_source["tokens"]


def test_a_missing_s3_input_is_one_line(s3, tmp_path):
    result = run("corpus", "dedup", "s3://lmforge/nothing-here", "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "s3://lmforge/nothing-here: no such file or folder in the store" in result.output
    assert "Traceback" not in result.output


TRAIN_ARGS = ["-p", "tiny", "--batch-tokens", "256", "--micro-batch", "2", "--eval-tokens", "128", "--eval-every", "2",
              "--checkpoint-every", "2", "--threads", "1", "--seed", "3", "--steps", "2"]


def test_shards_mix_and_train_through_s3(s3, tmp_path):
    """shards build -o s3://… stores what a local build writes (source.json last, its build
    state left in staging); mix build -o s3://… from those URLs names the shards relative to
    the manifest, as a local manifest does; train -m s3://… fetches the manifest and its
    shards (checked against the manifest's sha256s) and trains. A shard changed in the store
    after the manifest was built is refused by name."""
    from test_train_data import _texts, _write_jsonl

    from lmforge.tokenize.train import TrainConfig as TokConfig
    from lmforge.tokenize.train import train_tokenizer

    docs = _write_jsonl(tmp_path / "docs.jsonl", _texts(1, 200))
    train_tokenizer([docs], tmp_path / "tok", TokConfig(vocab_size=300, sample_bytes=200_000, min_frequency=2))
    common = ["--tokenizer", str(tmp_path / "tok"), "--shard-tokens", "4000", "--frame-tokens", "512"]
    assert run("shards", "build", str(docs), "-o", str(tmp_path / "shards" / "web"), *common).exit_code == 0
    result = run("shards", "build", str(docs), "-o", "s3://lmforge/shards/web", *common)
    assert result.exit_code == 0, result.output
    assert "s3://lmforge/shards/web/source.json" in result.output
    local_files = sorted(p.relative_to(tmp_path / "shards" / "web").as_posix()
                         for p in (tmp_path / "shards" / "web").rglob("*") if p.is_file() and ".build" not in p.parts)
    stored = sorted(key[len("lmforge/shards/web/"):] for key in s3.find("lmforge/shards/web"))
    assert stored == local_files and len(stored) > 2
    for rel in stored:
        assert s3.cat(f"lmforge/shards/web/{rel}") == (tmp_path / "shards" / "web" / rel).read_bytes()

    result = run("mix", "build", "--source", f"web={tmp_path / 'shards' / 'web'}:1.0", "--budget", "20000", "--val-tokens", "300",
                 "-o", str(tmp_path / "mixes" / "mix.json"))
    assert result.exit_code == 0, result.output
    result = run("mix", "build", "--source", "web=s3://lmforge/shards/web:1.0", "--budget", "20000", "--val-tokens", "300",
                 "-o", "s3://lmforge/mixes/mix.json")
    assert result.exit_code == 0, result.output
    stored = json.loads(s3.cat("lmforge/mixes/mix.json"))
    local = json.loads((tmp_path / "mixes" / "mix.json").read_text())
    assert stored["sources"] == local["sources"]  # the same relative paths, counts and sha256s
    assert stored["sources"][0]["shards"][0]["path"].startswith("../shards/web/shards/")
    # a local source cannot go into a manifest in the store
    result = run("mix", "build", "--source", f"web={tmp_path / 'shards' / 'web'}:1.0", "--budget", "20000", "-o", "s3://lmforge/m2.json")
    assert result.exit_code == 1 and "is not in s3://lmforge" in result.output and "Traceback" not in result.output

    result = run("train", "-m", "s3://lmforge/mixes/mix.json", "-o", str(tmp_path / "run-s3"), *TRAIN_ARGS)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "run-s3" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1, 2]  # the manifest and shards were as mix build wrote them

    from lmforge.remote import store_mirror

    key = "lmforge/shards/web/" + stored["sources"][0]["shards"][0]["path"][len("../shards/web/"):]
    mirrored = store_mirror("s3://" + key)
    mirrored.write_bytes(mirrored.read_bytes()[:-1] + b"\0")  # a damaged local copy (same size) is fetched again
    result = run("train", "-m", "s3://lmforge/mixes/mix.json", "-o", str(tmp_path / "run-s3"), *TRAIN_ARGS)
    assert result.exit_code == 0 and "nothing to do" in result.output, result.output  # the run was finished
    assert mirrored.read_bytes() == s3.cat(key)
    # a shard replaced in the store (same size, other bytes): the next fetch refuses it
    data = bytearray(s3.cat(key))
    data[-1] ^= 0xFF
    s3.pipe(key, bytes(data))
    mirrored.unlink()
    result = run("train", "-m", "s3://lmforge/mixes/mix.json", "-o", str(tmp_path / "run-bad"), *TRAIN_ARGS)
    assert result.exit_code == 1 and "does not match its sha256 in the manifest" in result.output
    assert key.rsplit("/", 1)[1] in result.output and "Traceback" not in result.output


def test_a_second_writer_of_a_url_is_refused_naming_the_first(s3, tmp_path, monkeypatch):
    """The writer object in the store (`URL/.lmforge-writer.json`): a writer with another
    staging folder (another machine) is refused while the first holds it, naming its host and
    pid; the object goes when the first finishes; one older than the lease (a dead writer's)
    is taken over; a rerun from the same staging folder takes its own over at once."""
    import socket

    from lmforge.remote import WRITER, RemoteError, staged_output

    url = "s3://lmforge/locked"
    with staged_output(url) as first:
        (first / "documents").mkdir()
        (first / "documents" / "a.txt").write_text("a")
        holder = json.loads(s3.cat(f"lmforge/locked/{WRITER}"))
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
        monkeypatch.setenv("LMFORGE_STAGING", str(tmp_path / "other-machine"))
        with pytest.raises(RemoteError, match=f"being written by {socket.gethostname()} \\(pid {os.getpid()}"):
            with staged_output(url):
                pass
        monkeypatch.undo()
    assert not s3.exists(f"lmforge/locked/{WRITER}") and s3.cat("lmforge/locked/documents/a.txt") == b"a"

    # a dead writer on another machine: refused within the lease, taken over after it
    import time

    dead = {"host": "node-7", "pid": 4242, "staging": "/scratch/x", "time": time.time(), "lease_s": 600}
    s3.pipe(f"lmforge/locked/{WRITER}", json.dumps(dead).encode())
    with pytest.raises(RemoteError, match="being written by node-7 \\(pid 4242"):
        with staged_output(url):
            pass
    s3.pipe(f"lmforge/locked/{WRITER}", json.dumps({**dead, "time": time.time() - 601}).encode())
    with staged_output(url):
        assert json.loads(s3.cat(f"lmforge/locked/{WRITER}"))["pid"] == os.getpid()
    assert not s3.exists(f"lmforge/locked/{WRITER}")

    # on the command line: one line naming the holder, for a file output too (mix.json)
    s3.pipe(f"lmforge/mixes/m.json{WRITER}", json.dumps(dead).encode())
    result = run("mix", "build", "--source", "web=s3://lmforge/shards/web:1.0", "--budget", "1000", "-o", "s3://lmforge/mixes/m.json")
    assert result.exit_code == 1 and "being written by node-7 (pid 4242" in result.output and "Traceback" not in result.output
