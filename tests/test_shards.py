"""Token shards: format round trips, random access, lossless documents, build, resume, verify."""

from __future__ import annotations

import hashlib
import subprocess
import threading
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from conftest import shared_path
from lmforge.tokenize.build import BuildConfig, BuildError, build_shards, build_file, _worker
from lmforge.tokenize.shards import (
    HEADER_SIZE,
    ShardError,
    ShardReader,
    ShardWriter,
    dtype_for_vocab,
    find_shards,
)
from lmforge.tokenize.shards_cli import shards
from lmforge.tokenize.tokenizer import Tokenizer
from lmforge.tokenize.train import TrainConfig, train_tokenizer

PARAGRAPHS = [
    "The quick brown fox jumps over the lazy dog. It's 2024 and we've got 1,234,567 reasons to test.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Größe, Straße, Übermut!",
    "Быстрая коричневая лиса прыгает через ленивую собаку. Москва — столица России.",
    "敏捷的棕色狐狸跳过了懒狗。今天是二〇二四年，天气很好。",
    "def main():\n    for i in range(10):\n        print(f'{i:03d}')  # numbers 0123456789\n",
    "Emoji: 🙂🚀👩‍👩‍👧 and combining marks: e\u0301 a\u0308 n\u0303. Tabs\tand\r\nnewlines. <|bos|> is text here.",
]


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(PARAGRAPHS[j] for j in rng.integers(0, len(PARAGRAPHS), size=int(rng.integers(1, 6)))) + f" #{i}" for i in range(n)]


def txt_texts() -> list[str]:
    """One document per line: no line breaks inside."""
    return [t.replace("\r", " ").replace("\n", " ") for t in make_texts(30, seed=4)]


def write_jsonl(path: Path, texts) -> Path:
    with open(path, "wb") as f:
        for i, t in enumerate(texts):
            f.write(orjson.dumps({"id": f"d{i}", "text": t}) + b"\n")
    return path


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tokcorpus")
    write_jsonl(root / "docs.jsonl", make_texts(200, seed=1))
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer([root / "docs.jsonl"], out, TrainConfig(vocab_size=500, sample_bytes=200_000))
    return out


@pytest.fixture(scope="module")
def tok(tok_dir) -> Tokenizer:
    return Tokenizer.load(tok_dir)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    write_jsonl(root / "a.jsonl", make_texts(120, seed=2))
    write_jsonl(root / "b.jsonl", make_texts(80, seed=3))
    (root / "c.txt").write_bytes(("\n".join(txt_texts()) + "\n").encode("utf-8"))
    return root


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".build" not in p.parts
    }


# ---- the format ------------------------------------------------------------------------------


def write_docs(path, docs, vocab_size=500, frame_tokens=64, **kw):
    with ShardWriter(path, fingerprint="sha256:test", vocab_size=vocab_size, frame_tokens=frame_tokens, **kw) as w:
        for d in docs:
            w.add_document(d)
    return path


def random_docs(rng, n, vocab, max_len=200):
    return [np.concatenate([[0], rng.integers(1, vocab, size=int(rng.integers(0, max_len)))]) for _ in range(n)]


@pytest.mark.parametrize("vocab", [500, 65536, 100_000])
def test_round_trip_and_random_windows(tmp_path, vocab):
    rng = np.random.default_rng(0)
    docs = random_docs(rng, 60, vocab)
    ref = np.concatenate(docs)
    path = write_docs(tmp_path / "s.tokens.zst", docs, vocab_size=vocab, frame_tokens=97)
    with ShardReader(path) as r:
        assert r.dtype == dtype_for_vocab(vocab) == (np.uint16 if vocab <= 65536 else np.uint32)
        assert len(r) == ref.size and r.fingerprint == "sha256:test"
        np.testing.assert_array_equal(r.doc_starts, np.cumsum([0] + [d.size for d in docs[:-1]]))
        assert r.doc_starts.dtype == np.int64
        np.testing.assert_array_equal(r[:], ref)
        for _ in range(200):  # against the plain array as reference
            a, b = sorted(rng.integers(0, ref.size + 1, size=2))
            np.testing.assert_array_equal(r[a:b], ref[a:b])
        np.testing.assert_array_equal(r[-50:], ref[-50:])
        np.testing.assert_array_equal(r[3:400:7], ref[3:400:7])
        assert r[5] == ref[5] and r[-1] == ref[-1]
        with pytest.raises(IndexError):
            r[ref.size]
        for i in (0, 17, len(docs) - 1):
            np.testing.assert_array_equal(r.document(i), docs[i])
        w = r[10:20]
        w[:] = 0  # a copy: the cache is not changed
        np.testing.assert_array_equal(r[10:20], ref[10:20])


def test_plain_zstd_reads_the_tokens(tmp_path):
    """The metadata sits in skippable frames: any zstd decoder yields the raw token array."""
    rng = np.random.default_rng(1)
    docs = random_docs(rng, 30, 500)
    path = write_docs(tmp_path / "s.tokens.zst", docs)
    import io

    import zstandard

    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(path.read_bytes()), read_across_frames=True).read()
    np.testing.assert_array_equal(np.frombuffer(raw, "<u2"), np.concatenate(docs))


def test_reader_is_thread_safe(tmp_path):
    rng = np.random.default_rng(2)
    docs = random_docs(rng, 200, 500)
    ref = np.concatenate(docs)
    path = write_docs(tmp_path / "s.tokens.zst", docs, frame_tokens=50)
    errors = []
    with ShardReader(path, cache_frames=2) as r:

        def work(seed):
            g = np.random.default_rng(seed)
            for _ in range(300):
                a = int(g.integers(0, ref.size - 120))
                if not np.array_equal(r[a : a + 120], ref[a : a + 120]):
                    errors.append(a)

        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors


def test_writer_rejects_document_without_bos(tmp_path):
    with pytest.raises(ValueError, match="BOS"):
        with ShardWriter(tmp_path / "x.tokens.zst", fingerprint="f", vocab_size=500) as w:
            w.add_document([5, 6])
    assert not (tmp_path / "x.tokens.zst").exists() and not (tmp_path / "x.tokens.zst.tmp").exists()


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(ShardError, match="no such shard"):
        ShardReader(tmp_path / "missing.tokens.zst")
    (tmp_path / "junk.tokens.zst").write_bytes(b"hello world" * 10)
    with pytest.raises(ShardError, match="junk.tokens.zst: not an lmforge shard"):
        ShardReader(tmp_path / "junk.tokens.zst")
    good = write_docs(tmp_path / "t.tokens.zst", random_docs(np.random.default_rng(3), 10, 500))
    cut = tmp_path / "cut.tokens.zst"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ShardError, match="cut.tokens.zst: no shard trailer"):
        ShardReader(cut)


# ---- verify: a flipped byte anywhere -----------------------------------------------------------


def test_verify_names_file_and_frame_of_a_flipped_byte(tmp_path):
    rng = np.random.default_rng(4)
    path = write_docs(tmp_path / "s.tokens.zst", random_docs(rng, 40, 500), frame_tokens=100)
    runner = CliRunner()
    assert runner.invoke(shards, ["verify", str(path)]).exit_code == 0
    with ShardReader(path) as r:
        offsets = r.frame_offsets.tolist()
    data = bytearray(path.read_bytes())
    k = 3
    data[(offsets[k] + offsets[k + 1]) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    res = runner.invoke(shards, ["verify", str(path)])
    assert res.exit_code == 1
    assert str(path) in res.output and f"frame {k}" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("where", ["header", "index", "trailer"])
def test_verify_catches_metadata_corruption(tmp_path, where):
    rng = np.random.default_rng(5)
    path = write_docs(tmp_path / "s.tokens.zst", random_docs(rng, 40, 500), frame_tokens=100)
    with ShardReader(path) as r:
        end_frames = r.frame_offsets.tolist()[-1]
    data = bytearray(path.read_bytes())
    pos = {"header": 10, "index": end_frames + 30, "trailer": len(data) - 20}[where]
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    res = CliRunner().invoke(shards, ["verify", str(path)])
    assert res.exit_code == 1 and str(path) in res.output and "Traceback" not in res.output


def test_every_single_byte_flip_is_detected(tmp_path):
    """Exhaustive on a small shard: no flipped byte passes `verify` silently."""
    rng = np.random.default_rng(6)
    path = write_docs(tmp_path / "s.tokens.zst", random_docs(rng, 5, 500, max_len=40), frame_tokens=32)
    clean = path.read_bytes()
    for pos in range(0, len(clean)):
        data = bytearray(clean)
        data[pos] ^= 0x01
        path.write_bytes(bytes(data))
        try:
            with ShardReader(path) as r:
                problems = r.verify()
        except ShardError:
            continue
        assert problems, f"flip at byte {pos} of {len(clean)} not detected"


# ---- build ---------------------------------------------------------------------------------------


def test_build_is_lossless_and_documents_start_with_bos(tmp_path, tok_dir, tok, inputs):
    out = tmp_path / "out"
    res = build_shards([inputs], tok_dir, out, BuildConfig(shard_tokens=2000, frame_tokens=128))
    src = orjson.loads((out / "source.json").read_bytes())
    assert src == res.source
    assert src["tokenizer"]["fingerprint"] == tok.fingerprint and src["documents"] == 230
    texts = make_texts(120, seed=2) + make_texts(80, seed=3) + txt_texts()
    decoded = []
    total = 0
    for entry in src["shards"]:
        p = out / entry["path"]
        with ShardReader(p) as r:
            assert len(r) == entry["tokens"] and r.documents == entry["documents"]
            assert entry["bytes"] == p.stat().st_size
            assert entry["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
            # a shard holds whole documents and stays under the cap unless one document is longer
            assert len(r) <= 2000 or r.documents == 1
            for d in r.iter_documents():
                assert d[0] == tok.bos_id and (d[1:] != tok.bos_id).all()
                decoded.append(tok.decode(d[1:].tolist()))
            total += len(r)
    assert decoded == texts  # lossless, and the literal "<|bos|>" in the text stayed text
    assert total == src["tokens"] == sum(len(tok.encode(t)) + 1 for t in texts)


def test_parallel_build_equals_serial_and_rerun_skips(tmp_path, tok_dir, inputs):
    a, b = tmp_path / "a", tmp_path / "b"
    build_shards([inputs], tok_dir, a, BuildConfig(shard_tokens=3000, workers=1))
    build_shards([inputs], tok_dir, b, BuildConfig(shard_tokens=3000, workers=2))
    assert tree_hashes(a) == tree_hashes(b)
    again = build_shards([inputs], tok_dir, a, BuildConfig(shard_tokens=3000))
    assert again.files_skipped == again.files_total == 3 and again.shards_written == 0
    assert tree_hashes(a) == tree_hashes(b)


def test_interrupted_build_resumes_to_identical_bytes(tmp_path, tok_dir, inputs):
    ref = tmp_path / "ref"
    build_shards([inputs], tok_dir, ref, BuildConfig(shard_tokens=1500))
    out = tmp_path / "out"
    build_shards([inputs], tok_dir, out, BuildConfig(shard_tokens=1500))
    # simulate a kill in the middle of file 0: its part record, later shards and the summary gone,
    # one shard left half-written as .tmp
    shards_dir = out / "shards"
    files0 = sorted(shards_dir.glob("00000-*.tokens.zst"))
    assert len(files0) >= 3
    for p in files0[2:]:
        p.unlink()
    (shards_dir / (files0[2].name + ".tmp")).write_bytes(b"partial")
    (out / ".build" / "part-00000.json").unlink()
    (out / ".build" / "part-00002.json").unlink()
    (out / "source.json").unlink()
    res = build_shards([inputs], tok_dir, out, BuildConfig(shard_tokens=1500))
    assert res.files_skipped == 1 and res.shards_written == len(files0) - 2  # file 2: all shards kept
    assert tree_hashes(out) == {k: v for k, v in tree_hashes(ref).items()}


def test_build_with_other_settings_is_refused(tmp_path, tok_dir, inputs):
    out = tmp_path / "out"
    build_shards([inputs], tok_dir, out, BuildConfig(shard_tokens=1500))
    with pytest.raises(BuildError, match=r"different settings: --shard-tokens \d+ \(asked 999\).*--overwrite"):
        build_shards([inputs], tok_dir, out, BuildConfig(shard_tokens=999))
    res = build_shards([inputs], tok_dir, out, BuildConfig(shard_tokens=999), force=True)
    assert res.files_skipped == 0


def test_malformed_lines_are_counted_or_strict_errors(tmp_path, tok_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "good one"}\nnot json\n{"nope": 1}\n{"text": ""}\n{"text": "good two"}\n', encoding="utf-8")
    res = build_shards([bad], tok_dir, tmp_path / "out", BuildConfig())
    assert res.source["documents"] == 2
    assert res.source["errors"] == {"malformed_line": 2, "empty_document": 1}
    runner = CliRunner()
    r = runner.invoke(shards, ["build", str(bad), "--tokenizer", str(tok_dir), "-o", str(tmp_path / "strict"), "--strict"])
    assert r.exit_code == 1 and "bad.jsonl: line 2" in r.output and "Traceback" not in r.output


def test_cli_errors_name_the_problem(tmp_path, tok_dir, inputs):
    runner = CliRunner()
    r = runner.invoke(shards, ["build", str(tmp_path / "nope.jsonl"), "--tokenizer", str(tok_dir), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "nope.jsonl: no such file" in r.output
    r = runner.invoke(shards, ["build", str(inputs), "--tokenizer", str(tmp_path / "notok"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "notok" in r.output and "tokenizer train" in r.output
    r = runner.invoke(shards, ["build", str(inputs), "--tokenizer", str(tok_dir), "-o", str(tmp_path / "o"), "--shard-tokens", "0"])
    assert r.exit_code == 2 and "--shard-tokens" in r.output
    r = runner.invoke(shards, ["verify", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "missing" in r.output
    for res in (r,):
        assert "Traceback" not in res.output


def test_cli_build_inspect_verify(tmp_path, tok_dir, tok, inputs):
    runner = CliRunner()
    out = tmp_path / "out"
    # a wide terminal: at rich's 80 columns (no terminal) the table and the path wrap where the
    # temporary folder's length puts them (pytest-xdist adds popen-gwN/), splitting "source.json"
    r = runner.invoke(shards, ["build", str(inputs), "--tokenizer", str(tok_dir), "-o", str(out), "--shard-tokens", "2k"],
                      env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "total" in r.output and "source.json" in r.output
    r = runner.invoke(shards, ["build", str(inputs), "--tokenizer", str(tok_dir), "-o", str(out), "--shard-tokens", "2k", "--no-progress"],
                      env={"COLUMNS": "300"})
    assert r.exit_code == 0 and "done by an earlier run" in r.output, r.output
    first = find_shards(out)[0]
    r = runner.invoke(shards, ["inspect", str(first)])
    assert r.exit_code == 0 and "frame_tokens" in r.output and "uint16" in r.output
    r = runner.invoke(shards, ["inspect", str(first), "--doc", "1", "--json"])
    doc = orjson.loads(r.output)
    assert doc["text"] == make_texts(120, seed=2)[1] and doc["ids"][0] == 0
    r = runner.invoke(shards, ["verify", str(out)])
    assert r.exit_code == 0 and "ok:" in r.output
    # a shard replaced by another valid shard: sha256 against source.json catches it
    other = find_shards(out)[1]
    first.write_bytes(other.read_bytes())
    r = runner.invoke(shards, ["verify", str(out)])
    assert r.exit_code == 1 and "sha256" in r.output


def test_zstd_cli_decodes_a_built_shard(tmp_path, tok_dir, inputs):
    zstd = subprocess.run(["which", "zstd"], capture_output=True, text=True).stdout.strip()
    if not zstd:
        pytest.skip("no zstd command line tool")
    out = tmp_path / "out"
    build_shards([inputs], tok_dir, out, BuildConfig())
    p = find_shards(out)[0]
    raw = subprocess.run([zstd, "-dc", str(p)], capture_output=True, check=True).stdout
    with ShardReader(p) as r:
        np.testing.assert_array_equal(np.frombuffer(raw, "<u2"), r[:])


def test_shared_text_round_trip(tmp_path, tok_dir, tok):
    """Real crawl text (C4) goes through a shard and decodes exactly."""
    c4 = shared_path("text", "c4-300-docs.jsonl")
    res = build_shards([c4], tok_dir, tmp_path / "c4", BuildConfig(shard_tokens=50_000))
    texts = [orjson.loads(line)["text"] for line in c4.read_bytes().splitlines() if line.strip()]
    texts = [t for t in texts if t]
    got = []
    for entry in res.source["shards"]:
        with ShardReader(tmp_path / "c4" / entry["path"]) as r:
            got.extend(tok.decode(d[1:].tolist()) for d in r.iter_documents())
    assert got == texts
