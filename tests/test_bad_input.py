"""Bad input through the command line: every mistake a user can make gets a clear error that
names the file or flag (or is counted and skipped inside a stream), a non-zero exit where the
run cannot do what was asked, and never a Python traceback.

Each test here is a regression test for a case that once ended in a traceback or a silent
wrong answer; the crafted bad files are written into tmp_path.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from conftest import shared_path
from lmforge.cli import main


def run(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    out = result.output + (getattr(result, "stderr", "") or "")
    assert "Traceback" not in out, out
    # an exception that escaped click (SystemExit aside) is a traceback the user would see
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result, out


WHIRLWIND = ("warc", "cc-main-2024-22-whirlwind.warc.gz")


# ---- corpus extract / process ----------------------------------------------------------------


@pytest.mark.parametrize("content", [
    os.urandom(3000),                                     # random bytes named .warc.gz
    gzip.compress(b"hello, this is not a crawl archive\n"),  # gzip, but no WARC inside
    b"plain text, not gzip, named .warc.gz\n",
], ids=["random", "gzip", "text"])  # named: the gzip bytes hold their time, and pytest-xdist's workers must collect equal ids
@pytest.mark.parametrize("command", ["extract", "process"])
def test_corpus_non_warc_file_is_a_clear_error(tmp_path, content, command):
    bad = tmp_path / "not a wärc.warc.gz"
    bad.write_bytes(content)
    result, out = run("corpus", command, bad, "-o", tmp_path / "out", "--no-progress")
    assert result.exit_code == 1
    assert "not a wärc.warc.gz" in out and "not a WARC/WET file" in out and "remove it" in out
    assert not (tmp_path / "out" / "documents").exists()  # refused before any work


def test_corpus_non_warc_among_real_files_is_refused_up_front(tmp_path):
    good = shared_path(*WHIRLWIND)
    bad = tmp_path / "junk.warc"
    bad.write_bytes(b"not a warc at all")
    result, out = run("corpus", "extract", good, bad, "-o", tmp_path / "out", "--tasks", "2", "--no-progress")
    assert result.exit_code == 1 and "junk.warc" in out


@pytest.mark.parametrize("content", [b"", b"not a fastText model at all"])
def test_corpus_bad_lid_model_is_one_clear_error(tmp_path, content):
    model = tmp_path / "my lid.bin"
    model.write_bytes(content)
    result, out = run("corpus", "extract", shared_path(*WHIRLWIND), "-o", tmp_path / "out", "--lid-model", model, "--no-progress")
    assert result.exit_code == 1
    assert "--lid-model" in out and "my lid.bin" in out and "not a fastText language-ID model" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["extract", "process"])
def test_corpus_unknown_language_code_is_an_error(tmp_path, command):
    """`--languages english` used to run and silently drop every page."""
    result, out = run("corpus", command, shared_path(*WHIRLWIND), "-o", tmp_path / "out", "--languages", "en,english", "--no-progress")
    assert result.exit_code == 1
    assert "--languages english" in out and "ISO 639" in out


def test_stream_counts_an_unreadable_file_and_goes_on(tmp_path):
    """A file found unreadable only while streaming (a URL, a file changed after the check) is
    logged with its path, counted as unreadable_file, and the task goes on."""
    from lmforge.corpus.steps import WarcPages

    bad = tmp_path / "junk.warc.gz"
    bad.write_bytes(os.urandom(2000))
    step = WarcPages([str(bad), str(shared_path(*WHIRLWIND))], progress=False)
    docs = list(step.run())
    assert len(docs) == 1
    assert step.stats.stats["unreadable_file"].total == 1


# ---- shards / mix ----------------------------------------------------------------------------


def _texts(n: int) -> list[str]:
    words = "the of and a to in is was he for it with as his on be at by had are but from or".split()
    return [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(40 + i % 30)) + f" number {i}." for i in range(n)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny tokenizer and a shards build folder (two shards)."""
    from lmforge.tokenize.build import BuildConfig, build_shards
    from lmforge.tokenize.train import TrainConfig, train_tokenizer

    root = tmp_path_factory.mktemp("built")
    docs = root / "docs.jsonl"
    docs.write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n" for t in _texts(120)))
    train_tokenizer([docs], root / "tok", TrainConfig(vocab_size=300, sample_bytes=100_000))
    build_shards([str(docs)], str(root / "tok"), str(root / "shards"), BuildConfig(shard_tokens=3000, frame_tokens=256))
    return root


def _corrupt_frame0(shard: Path, dest: Path) -> Path:
    """A copy of `shard` with one byte flipped in the middle of frame 0 (document 0's frame)."""
    from lmforge.tokenize.shards import ShardReader

    with ShardReader(shard) as r:
        lo, hi = int(r.frame_offsets[0]), int(r.frame_offsets[1])
    data = bytearray(shard.read_bytes())
    data[(lo + hi) // 2] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def test_shards_inspect_doc_in_corrupted_frame(built, tmp_path):
    shard = sorted((built / "shards" / "shards").glob("*.tokens.zst"))[0]
    bad = _corrupt_frame0(shard, tmp_path / "bad shard.tokens.zst")
    for extra in ([], ["--json"]):
        result, out = run("shards", "inspect", bad, "--doc", "0", "--tokenizer", built / "tok", *extra)
        assert result.exit_code == 1 and "bad shard.tokens.zst" in out and "frame 0" in out and "verify" in out


def test_shards_inspect_negative_doc_out_of_range_names_the_asked_index(built):
    shard = sorted((built / "shards" / "shards").glob("*.tokens.zst"))[0]
    result, out = run("shards", "inspect", shard, "--doc", "-100000")
    assert result.exit_code == 1 and "document -100000 out of range" in out


def test_shards_verify_folder_without_shards_fails(tmp_path):
    empty = tmp_path / "no shards here"
    empty.mkdir()
    result, out = run("shards", "verify", empty)
    assert result.exit_code == 1 and "no shards here" in out and "no shard files" in out


# ---- the user's files and disks: permissions, a file in the way, a full disk ------------------


def test_output_under_a_file_is_a_clear_error(built, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    docs = built / "docs.jsonl"
    cases = [
        ("corpus", "extract", shared_path(*WHIRLWIND), "-o", blocker / "out", "--no-progress"),
        ("shards", "build", docs, "--tokenizer", built / "tok", "-o", blocker / "out"),
        ("mix", "build", "--source", f"web={built / 'shards'}:1", "--budget", "1M", "-o", blocker / "sub" / "mix.json"),
    ]
    for args in cases:
        result, out = run(*args)
        assert result.exit_code == 1, (args, out)
        assert "a file" in out and ("not a folder" in out or "in the way" in out), (args, out)


@pytest.mark.parametrize("err", [
    PermissionError(13, "Permission denied", "tok/tokenizer.json"),
    OSError(28, "No space left on device", "out/x.tmp"),
])
def test_os_errors_become_one_line_naming_the_file(built, monkeypatch, err):
    """Any OSError from the user's files (unreadable, unwritable, disk full) reaching the
    command line is one line naming the file and what to do."""
    from lmforge.tokenize import tokenizer as tokenizer_module

    def fail(*_a, **_k):
        raise err

    monkeypatch.setattr(tokenizer_module.Tokenizer, "load", classmethod(lambda cls, *a, **k: fail()))
    result, out = run("tokenizer", "show", "--tokenizer", built / "tok", "hello")
    assert result.exit_code == 1
    assert err.filename in out and err.strerror in out
    assert ("permissions" in out) if err.errno == 13 else ("run the same command again" in out)


def test_corpus_task_that_cannot_write_fails_without_traceback(tmp_path, monkeypatch):
    """A write that fails inside a datatrove task (permissions, full disk) used to print the
    task's traceback through datatrove's logger before the error; now one line (the traceback
    stays in OUT/.lmforge/<mode>/logs/)."""
    import lmforge.documents as documents

    def no_space(self, path, level=3):
        raise OSError(28, "No space left on device", str(path) + ".tmp")

    monkeypatch.setattr(documents.DocumentWriter, "__init__", no_space)
    out_dir = tmp_path / "out"
    result, out = run("corpus", "extract", shared_path(*WHIRLWIND), "-o", out_dir, "--no-progress")
    assert result.exit_code == 1
    assert "00000.jsonl.zst.tmp" in out and "No space left on device" in out and "run the same command again" in out
    assert "Traceback" in (out_dir / ".lmforge" / "extract" / "logs" / "task_00000.log").read_text()


def test_unreadable_document_file_is_not_called_corrupted(tmp_path, monkeypatch):
    import lmforge.documents as documents

    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"text": "hello"}\n')
    real_open = open

    def deny(path, *a, **k):
        if str(path) == str(docs):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(documents, "open", deny, raising=False)
    result, out = run("tokenizer", "train", docs, "-o", tmp_path / "tok", "--vocab-size", "300", "--no-progress")
    assert result.exit_code == 1
    assert "docs.jsonl: cannot read (Permission denied)" in out and "corrupted" not in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes through any permission bits")
def test_read_only_output_folder_for_real(tmp_path):
    ro = tmp_path / "read only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        result, out = run("corpus", "extract", shared_path(*WHIRLWIND), "-o", ro / "out", "--no-progress")
        assert result.exit_code == 1 and "read only" in out and "Permission denied" in out
    finally:
        ro.chmod(0o755)


# ---- demo ------------------------------------------------------------------------------------


def test_demo_on_a_crawl_with_no_wanted_language_explains_itself(tmp_path):
    """`lmforge demo --warc` on Japanese pages with the default --languages en: the corpus keeps
    nothing and the shards stage used to end in a BuildError traceback."""
    warc = shared_path("warc", "clueweb09-ja-near-duplicates.warc.gz")
    result, out = run("demo", "--warc", warc, "-o", tmp_path / "demo", "--no-progress")
    assert result.exit_code == 1
    assert "kept no documents" in out and "--languages all" in out and "stats.json" in out


def test_demo_unknown_language_is_refused(tmp_path):
    result, out = run("demo", "--warc", shared_path(*WHIRLWIND), "-o", tmp_path / "demo", "--languages", "english", "--no-progress")
    assert result.exit_code == 1 and "--languages english" in out


def test_overwrite_never_deletes_a_folder_lmforge_did_not_write(tmp_path):
    home = tmp_path / "home"
    (home / "documents").mkdir(parents=True)
    precious = home / "documents" / "thesis.txt"
    precious.write_text("years of work")
    result, out = run("corpus", "extract", shared_path(*WHIRLWIND), "-o", home, "--overwrite", "--no-progress")
    assert result.exit_code == 1 and "not written by lmforge" in out and "home" in out
    assert precious.read_text() == "years of work"


def test_mix_build_same_source_twice_is_an_error(built, tmp_path):
    shards = built / "shards"
    result, out = run("mix", "build", "--source", f"web={shards}:0.5", "--source", f"web={shards}:0.5", "--budget", "1M",
                      "-o", tmp_path / "mix.json")
    assert result.exit_code == 2 and "'web' is given twice" in out
    assert not (tmp_path / "mix.json").exists()


def test_tokenizer_stats_wrong_text_key_says_so(built):
    result, out = run("tokenizer", "stats", "--tokenizer", built / "tok", built / "docs.jsonl", "--text-key", "body")
    assert result.exit_code == 1 and "docs.jsonl" in out and "--text-key" in out and "'body'" in out


@pytest.mark.parametrize("command", ["tokenizer train", "tokenizer stats", "shards build"])
def test_parquet_text_column_that_is_not_text(built, tmp_path, command):
    """A Parquet `text` column of numbers used to end in `TypeError: object of type 'int' has
    no len()` deep inside the sampler / encoder."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    bad = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3]}), bad)
    args = {
        "tokenizer train": ["tokenizer", "train", bad, "-o", tmp_path / "tok", "--vocab-size", "300", "--no-progress"],
        "tokenizer stats": ["tokenizer", "stats", "--tokenizer", built / "tok", bad, "--no-progress"],
        "shards build": ["shards", "build", bad, "--tokenizer", built / "tok", "-o", tmp_path / "shards"],
    }[command]
    result, out = run(*args)
    assert result.exit_code == 1
    assert "numbers.parquet" in out and "int64, not text" in out and "--text-key" in out


def test_mix_inspect_manifest_with_non_positive_budget(built, tmp_path):
    out = tmp_path / "mix.json"
    result, _ = run("mix", "build", "--source", f"web={built / 'shards'}:1", "--budget", "1M", "-o", out)
    assert result.exit_code == 0
    data = orjson.loads(out.read_bytes())
    data["budget"] = -5
    out.write_bytes(orjson.dumps(data))
    result, text = run("mix", "inspect", out)  # a hand edit: refused by the manifest's own checksum
    assert result.exit_code == 1 and "mix.json: edited or corrupted" in text and "lmforge mix build" in text
    del data["content_sha256"]  # as a manifest from before the checksum: the budget check itself
    out.write_bytes(orjson.dumps(data))
    result, text = run("mix", "inspect", out)
    assert result.exit_code == 1 and "mix.json" in text and "budget -5" in text
