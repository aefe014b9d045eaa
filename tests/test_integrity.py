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


# ---- mixture manifests -------------------------------------------------------------------------


@pytest.fixture
def manifest(tmp_path):
    from test_mix import fake_source

    from lmforge.tokenize.mix import MixRecipe, SourceSpec, build_manifest

    root = tmp_path / "data"
    web = fake_source(root, "web", [[100] * 10, [50] * 8])
    wiki = fake_source(root, "wiki", [[200, 300, 100, 400]])
    out = tmp_path / "mix.json"
    build_manifest(MixRecipe([SourceSpec("web", str(web), weight=0.75), SourceSpec("wiki", str(wiki), weight=0.25)], budget=2800,
                             val_tokens=100), out)
    return out


def _set(path, edit):
    data = orjson.loads(path.read_bytes())
    edit(data)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


EDITS = {
    "shard-sha256": lambda d: d["sources"][0]["shards"][0].__setitem__("sha256", "0" * 64),
    "val-start": lambda d: d["sources"][0]["val"].__setitem__("start", d["sources"][0]["val"]["start"] - 50),
    "budget": lambda d: d.__setitem__("budget", d["budget"] * 2),
    "tokens": lambda d: d["sources"][1].__setitem__("tokens", d["sources"][1]["tokens"] + 1),
    "shard-tokens": lambda d: d["sources"][1]["shards"][0].__setitem__("tokens", 999),
    "weights": lambda d: (d["sources"][0].__setitem__("weight", 0.5), d["sources"][1].__setitem__("weight", 0.5)),
}


def test_manifest_carries_a_checksum_of_itself(manifest):
    from lmforge.tokenize.mix import CHECKSUM_KEY, content_sha256, load_manifest

    data = orjson.loads(manifest.read_bytes())
    assert data[CHECKSUM_KEY] == content_sha256(data)
    assert load_manifest(manifest).budget == 2800


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_hand_edits_are_refused_by_inspect_and_train(manifest, tmp_path, edit):
    from lmforge.tokenize.mix import MixError, load_manifest

    _set(manifest, EDITS[edit])
    with pytest.raises(MixError, match="edited or corrupted"):
        load_manifest(manifest)
    for args in (("mix", "inspect", manifest), ("train", "-m", manifest, "-o", tmp_path / "run", "--steps", "1", "--no-progress")):
        result, out = run(*args)
        assert result.exit_code == 1, out
        assert f"{manifest}: edited or corrupted" in out and "lmforge mix build" in out, out
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_manifests_without_a_checksum_still_load_with_a_warning(manifest, caplog):
    from lmforge.tokenize.mix import load_manifest

    _set(manifest, lambda d: d.pop("content_sha256"))
    with caplog.at_level("WARNING"):
        assert load_manifest(manifest).budget == 2800
    assert "not checked" in caplog.text


def _flip_every_frame(shard):
    from lmforge.tokenize.shards import ShardReader

    with ShardReader(shard) as r:
        offsets = list(r.frame_offsets.tolist())
    data = bytearray(shard.read_bytes())
    for lo, hi in zip(offsets, offsets[1:]):
        data[(lo + hi) // 2] ^= 0x01
    shard.write_bytes(bytes(data))  # same size: only a read of the bytes can tell


def test_inspect_hashes_every_shard_and_quick_does_not(manifest):
    shard = sorted((manifest.parent / "data" / "wiki" / "shards").glob("*.tokens.zst"))[0]
    _flip_every_frame(shard)
    result, out = run("mix", "inspect", manifest)
    assert result.exit_code == 1 and str(shard) in out and "does not match its sha256 in the manifest" in out, out
    result, out = run("mix", "inspect", manifest, "--quick")
    assert result.exit_code == 0, out


def test_mix_build_refuses_a_corrupted_shard(tmp_path):
    from test_mix import fake_source

    web = fake_source(tmp_path / "data", "web", [[100] * 10, [50] * 8])
    shard = sorted((web / "shards").glob("*.tokens.zst"))[1]
    _flip_every_frame(shard)
    out = tmp_path / "mix.json"
    result, text = run("mix", "build", "--source", f"web={web}:1", "--budget", "1000", "-o", out)
    assert result.exit_code == 1, text
    assert str(shard) in text and "CRC-32 mismatch" in text and "lmforge shards build" in text, text
    assert not out.exists()


def test_mix_build_refuses_a_shard_that_differs_from_its_sha256(tmp_path):
    from test_mix import fake_source

    web = fake_source(tmp_path / "data", "web", [[100] * 10])
    src = web / "source.json"
    data = orjson.loads(src.read_bytes())
    data["shards"][0]["sha256"] = "f" * 64
    src.write_bytes(orjson.dumps(data))
    result, text = run("mix", "build", "--source", f"web={web}:1", "--budget", "1000", "-o", tmp_path / "mix.json")
    assert result.exit_code == 1 and "does not match its sha256 in" in text and "source.json" in text, text


# ---- a corrupt shard met while training ---------------------------------------------------------


def test_a_corrupt_shard_during_train_is_one_error_naming_it(tmp_path):
    from test_train_data import make_mix

    mix = make_mix(tmp_path / "mix", docs=80, val_tokens=0)
    for shard in (tmp_path / "mix" / "shards_a" / "shards").glob("*.tokens.zst"):
        _flip_every_frame(shard)
    result, out = run("train", "-m", mix, "-o", tmp_path / "run", "--steps", "2", "--batch-tokens", "512", "--micro-batch", "2",
                      "--threads", "1", "--no-progress")
    assert result.exit_code == 1, out
    assert "shards_a" in out and "frame" in out and "corrupted" in out, out
