"""Document files: the atomic writer and the readers of every supported format."""

from __future__ import annotations

import gzip

import orjson
import pytest

from lmforge.documents import DocumentFileError, DocumentWriter, find_document_files, iter_documents


def write_docs(path, n=50):
    with DocumentWriter(path) as w:
        for i in range(n):
            w.write(f"d{i}", f"text number {i} " * 20, {"url": f"https://x/{i}"})


def test_writer_is_atomic_and_roundtrips(tmp_path):
    path = tmp_path / "documents" / "00000.jsonl.zst"
    writer = DocumentWriter(path)
    writer.write("a", "hello\nworld", {"language": "en"})
    assert not path.exists() and writer.tmp_path.exists()  # nothing under the final name yet
    writer.close()
    assert path.exists() and not writer.tmp_path.exists()
    [doc] = list(iter_documents(path))
    assert (doc.id, doc.text, doc.metadata) == ("a", "hello\nworld", {"language": "en"})


def test_abort_leaves_nothing(tmp_path):
    path = tmp_path / "x.jsonl.zst"
    with pytest.raises(RuntimeError):
        with DocumentWriter(path) as w:
            w.write("a", "b", {})
            raise RuntimeError("killed")
    assert not path.exists() and not list(tmp_path.glob("*.tmp"))


def test_truncated_zstd_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "docs.jsonl.zst"
    write_docs(path, 500)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DocumentFileError, match="docs.jsonl.zst.*truncated"):
        list(iter_documents(path))


def test_several_zstd_frames_are_read(tmp_path):
    import zstandard

    path = tmp_path / "multi.jsonl.zst"
    frames = [zstandard.ZstdCompressor().compress(orjson.dumps({"id": str(i), "text": f"t{i}"}) + b"\n") for i in range(3)]
    path.write_bytes(b"".join(frames))
    assert [d.id for d in iter_documents(path)] == ["0", "1", "2"]


def test_malformed_lines_counted_or_raised(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\nnot json\n{"no_text": 1}\n{"text": "ok2"}\n')
    errors: dict = {}
    assert [d.text for d in iter_documents(path, errors=errors)] == ["ok", "ok2"]
    assert errors == {"malformed_line": 2}
    with pytest.raises(DocumentFileError, match="bad.jsonl: line 2"):
        list(iter_documents(path))


def test_formats_and_discovery(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_docs(tmp_path / "out" / "documents" / "00000.jsonl.zst", 3)
    (tmp_path / "a.txt").write_text("line one\r still one\nline two\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write('{"content": "gz doc"}\n')
    pq.write_table(pa.table({"id": ["p0"], "text": ["parquet doc"], "lang": ["en"]}), tmp_path / "c.parquet")
    assert len(find_document_files([tmp_path / "out"])) == 1
    assert [d.text for d in iter_documents(tmp_path / "a.txt")] == ["line one\r still one", "line two"]
    assert [d.text for d in iter_documents(tmp_path / "b.jsonl.gz", text_key="content")] == ["gz doc"]
    [p] = list(iter_documents(tmp_path / "c.parquet"))
    assert (p.id, p.text, p.metadata["lang"]) == ("p0", "parquet doc", "en")
    with pytest.raises(FileNotFoundError, match="nope"):
        find_document_files([tmp_path / "nope"])
    with pytest.raises(DocumentFileError, match="no column 'body'"):
        list(iter_documents(tmp_path / "c.parquet", text_key="body"))
