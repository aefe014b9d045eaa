"""Integrity of the files lmforge writes: a flipped byte, a cut or a deleted file is caught.

Corpus documents carry zstd frame checksums and every reader checks them before using the
text; a mixture manifest carries a checksum of its own content and is checked against its
shards; `mix build` verifies the shards it lists; a corrupt shard met while training is one
error naming the shard. (Checkpoints: tests/test_checkpoint_integrity.py.)
"""

from __future__ import annotations

import orjson
import pytest
import zstandard
from click.testing import CliRunner

from lmforge.cli import main
from lmforge.documents import DocumentFileError, DocumentWriter, iter_documents

TEXTS = [f"document {i}: the quick brown fox jumps over the lazy dog, {i * 7} times over the fence." for i in range(120)]


def run(*args):
    """The CLI in-process: the result and its output; an escaped exception is a failure."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    out = result.output + (getattr(result, "stderr", "") or "")
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result, out


def write_corpus(path, frame_bytes: int | None = None):
    writer = DocumentWriter(path)
    if frame_bytes:
        writer.FRAME_BYTES = frame_bytes
    with writer as w:
        for i, t in enumerate(TEXTS):
            w.write(f"d{i}", t, {"language": "en"})
    return path


def flip(path, pos: int, bit: int = 0x10) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= bit
    path.write_bytes(bytes(data))


# ---- corpus documents ------------------------------------------------------------------------


def test_document_frames_carry_checksums(tmp_path):
    path = write_corpus(tmp_path / "a.jsonl.zst", frame_bytes=2000)
    data = path.read_bytes()
    frames, pos = 0, 0
    while pos < len(data):
        params = zstandard.get_frame_parameters(data[pos:])
        assert params.has_checksum
        dobj = zstandard.ZstdDecompressor().decompressobj()
        dobj.decompress(data[pos:])
        pos = len(data) - len(dobj.unused_data)
        frames += 1
    assert frames > 2  # a frame ends every FRAME_BYTES, so a reader holds one frame at most
    assert [d.text for d in iter_documents(path)] == TEXTS


def test_every_flipped_byte_is_caught_never_changed_text(tmp_path):
    good = write_corpus(tmp_path / "a.jsonl.zst", frame_bytes=3000)
    data = good.read_bytes()
    bad = tmp_path / "bad.jsonl.zst"
    caught = 0
    for pos in range(len(data)):
        bad.write_bytes(data)
        flip(bad, pos)
        seen = []
        try:
            for doc in iter_documents(bad, errors={}):
                seen.append(doc.text)
        except DocumentFileError as exc:
            assert str(bad) in str(exc) and "re-create it" in str(exc)
            caught += 1
        # before the error: only text of frames whose checksum held; without one: all of it, unchanged
        assert seen == TEXTS[: len(seen)], pos
    assert caught > 0.9 * len(data)


def test_files_without_checksums_stay_readable(tmp_path):
    old = tmp_path / "old.jsonl.zst"  # as DocumentWriter wrote them before: one frame, no checksum
    lines = b"".join(orjson.dumps({"id": str(i), "text": t, "metadata": {}}) + b"\n" for i, t in enumerate(TEXTS))
    old.write_bytes(zstandard.ZstdCompressor(level=3).compress(lines))
    assert not zstandard.get_frame_parameters(old.read_bytes()).has_checksum
    assert [d.text for d in iter_documents(old)] == TEXTS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A good corpus, a copy with one flipped byte in its only frame, and a tokenizer of the good one."""
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root / "good" / "documents" / "00000.jsonl.zst")
    bad = write_corpus(root / "bad" / "documents" / "00000.jsonl.zst")
    flip(bad, len(bad.read_bytes()) - 2)  # in the frame's checksum: the text itself decodes unchanged
    result, out = run("tokenizer", "train", root / "good", "-o", root / "tok", "--vocab-size", "300",
                      "--sample-bytes", "100K", "--no-progress")
    assert result.exit_code == 0, out
    return root


@pytest.mark.parametrize("command", [
    lambda root, out: ("tokenizer", "train", root / "bad", "-o", out, "--vocab-size", "300", "--no-progress"),
    lambda root, out: ("shards", "build", root / "bad", "--tokenizer", root / "tok", "-o", out),
    lambda root, out: ("corpus", "dedup", root / "bad", "-o", out),
], ids=["tokenizer-train", "shards-build", "corpus-dedup"])
def test_readers_refuse_a_flipped_byte_naming_the_file(corpus, tmp_path, command):
    result, out = run(*command(corpus, tmp_path / "out"))
    assert result.exit_code != 0, out
    assert "00000.jsonl.zst" in out and "checksum" in out, out
