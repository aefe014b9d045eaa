"""Document files: the contract between the corpus stage and everything after it.

A document set is a folder with `documents/**/*.jsonl.zst`: one JSON object per line,
`{"id": str, "text": str, "metadata": {"url", "date", "language", "language_score", ...}}`
(or, written with `--format parquet`, `documents/*.parquet` with FineWeb's flat columns).
Readers here also take plain `.jsonl` (`.jsonl.gz`), `.txt` (one document per line), and what
`datasets` leaves on disk: Parquet (FineWeb's shards; `corpus process --format parquet`), Arrow
IPC files (`.arrow`, file or stream format) and `save_to_disk` folders (`data-*.arrow` beside
`state.json`; a DatasetDict folder gives its `train` split unless the split's subfolder is
named), streamed a record batch at a time by `lmforge.tables` (the reader the alignment
importers use too). A table needs a string column named by `--text-key` (`text`); `id` becomes
the document id, a `metadata` struct and every other column the metadata. So later stages
(tokenizer training, shards, dedup) can start from other people's data.

Writers are atomic: they write `NAME.tmp` and rename it to `NAME` on close, so a file that
exists under its final name is complete. This module imports nothing heavy and neither
torch nor datatrove.
"""

from __future__ import annotations

import errno
import glob
import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import orjson
import zstandard

from lmforge.errors import UserError
from lmforge.tables import TABLE_SUFFIXES, dataset_files, is_dataset_folder, is_table, open_table, table_rows

DOC_SUFFIXES = (".jsonl.zst", ".jsonl", ".jsonl.gz", ".txt", *TABLE_SUFFIXES)


class DocumentFileError(UserError):
    """A document file that cannot be read; the message names the file and the line."""


def find_document_files(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders, globs and files into a sorted list of document files.

    A folder means every document file below it (preferring its `documents/` subfolder
    when it is an lmforge output folder); a `datasets.save_to_disk` folder means its Arrow
    files (a DatasetDict's `train` split). URLs (`s3://bucket/corpus`, globs too) are fetched
    into the local staging folder first (`lmforge.remote.fetch`) and listed from there.
    Raises FileNotFoundError naming what is missing.
    """
    found: list[Path] = []
    for item in inputs:
        item = str(item)
        if "://" in item:
            from lmforge.remote import fetch

            item = fetch(item)
        if any(ch in item for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no files match {item!r}")
            found.extend(m for m in matches if m.is_file())
            continue
        path = Path(item)
        if is_dataset_folder(path):
            found.extend(dataset_files(path, DocumentFileError))
        elif path.is_dir():
            root = path / "documents" if (path / "documents").is_dir() else path
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(DOC_SUFFIXES))
            if not files:
                raise FileNotFoundError(f"{path}: no document files ({', '.join(DOC_SUFFIXES)}) inside")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    for path in found:
        check_document_file(path)
    return found


#: leading bytes of files that are not documents, what they are, and what to do instead
_NOT_DOCUMENTS = (
    (b"WARC/", "a WARC archive", "run `lmforge corpus process` on it first"),
    (b"\x89PNG", "a PNG image", "remove it from the inputs"),
    (b"\xff\xd8\xff", "a JPEG image", "remove it from the inputs"),
    (b"GIF8", "a GIF image", "remove it from the inputs"),
    (b"%PDF", "a PDF file", "remove it from the inputs"),
    (b"PK\x03\x04", "a zip archive", "unpack it and give the document files inside"),
    (b"PAR1", "a Parquet file", "name it *.parquet"),
    (b"ARROW1", "an Arrow IPC file", "name it *.arrow"),
    (b"\x7fELF", "a program", "remove it from the inputs"),
)
_SNIFF_BYTES = 1 << 16
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def check_document_file(path: Path) -> None:
    """Refuse, up front and naming the file, an input that is not documents at all (a WARC
    archive, an image, a compressed file under the wrong name, text with no JSON object in its
    first lines) instead of reading it as thousands of malformed lines into an empty output.

    Only the first 64 KB are read. A file damaged further in is left to the reader (it names
    the line or frame); a malformed line among documents is still counted and skipped.
    """
    reason = _not_documents(path)
    if reason is not None:
        what, todo = reason
        raise DocumentFileError(f"{path}: not a document file: looks like {what}; {todo}")


def _not_documents(path: Path) -> tuple[str, str] | None:
    name = path.name
    if is_table(path):
        return None  # the Parquet / Arrow reader names a bad file itself
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return None  # unreadable: the reader says so, with the reason
    compression = "gzip" if head[:2] == b"\x1f\x8b" else "zstd" if head[:4] == _ZSTD_MAGIC else None
    data = head
    if compression is not None:
        try:
            if compression == "gzip":
                import zlib

                data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _SNIFF_BYTES)
            else:
                data = zstandard.ZstdDecompressor().decompressobj().decompress(head)[:_SNIFF_BYTES]
        except Exception:  # noqa: BLE001 - damaged: the reader names the file and the offset
            return None
    for magic, what, todo in _NOT_DOCUMENTS:
        if data.startswith(magic):
            return (what if compression is None else f"{what} ({compression}-compressed)"), todo
    suffix = {"gzip": ".gz", "zstd": ".zst"}.get(compression)
    if suffix and not name.endswith(suffix):
        return f"{compression}-compressed data under a name that does not end in {suffix}", f"rename it to *.jsonl{suffix}"
    if not data.strip():
        return None  # an empty file holds no documents; the stage counts zero
    if b"\x00" in data:
        return "binary data, not text", "remove it from the inputs"
    if name.endswith(".txt"):
        return None  # one document per line: any text is documents
    # a JSON object starts with "{"; a malformed one among them is the reader's to count
    lines = [line for line in data.split(b"\n") if line.strip()][:20]
    if any(line.lstrip(b" \t\r\xef\xbb\xbf").startswith(b"{") for line in lines):
        return None
    first = lines[0].decode("utf-8", "replace").strip()
    return (f"text, not JSON lines (line 1: {first[:40]!r})",
            "a document file has one JSON object per line (`{\"text\": ...}`); name plain text *.txt (one document per line)")



@dataclass(slots=True)
class DocRecord:
    id: str
    text: str
    metadata: dict


def iter_documents(path: str | os.PathLike, text_key: str = "text", errors: dict | None = None) -> Iterator[DocRecord]:
    """Yield the documents of one file.

    Malformed JSON lines are counted in `errors` (when given) and skipped; with
    `errors=None` they raise DocumentFileError naming the file and line.
    """
    path = Path(path)
    name = path.name
    if is_table(path):
        yield from _iter_table(path, text_key)
        return
    if name.endswith(".txt"):
        with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
            for i, line in enumerate(f):
                line = line.rstrip("\n")
                if line:
                    yield DocRecord(f"{path.stem}/{i}", line, {})
        return
    for i, line in enumerate(_open_lines(path)):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            text = obj[text_key]
            if not isinstance(text, str):
                raise TypeError(f"{text_key!r} is not a string")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            if errors is None:
                raise DocumentFileError(f"{path}: line {i + 1}: not a JSON document with a {text_key!r} string ({exc})") from None
            errors["malformed_line"] = errors.get("malformed_line", 0) + 1
            continue
        meta = obj.get("metadata") or {}
        doc_id = str(obj.get("id", f"{path.stem}/{i}"))
        yield DocRecord(doc_id, text, meta if isinstance(meta, dict) else {})


def _zstd_chunks(raw, path: Path, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Decompress every zstd frame of `raw`; a file that ends inside a frame is an error
    (a stream reader would end silently there and lose the tail without a word).

    A frame that carries a content checksum (every frame lmforge writes since it recorded
    them: `DocumentWriter` ends a frame every `FRAME_BYTES`) is held back until zstd has
    checked it, so a flipped byte raises before any of that frame's text is used; frames
    without one (files written before) stream as they decompress.
    """
    dctx = zstandard.ZstdDecompressor()
    dobj, head, held = None, b"", []
    while True:
        block = raw.read(chunk_size)
        if not block:
            break
        while block:
            if dobj is None:
                dobj, head, held = dctx.decompressobj(), b"", []
            if len(head) < 5:  # magic + frame header descriptor, whose bit 2 is the checksum flag
                head += block[: 5 - len(head)]
            out = dobj.decompress(block)
            if out:
                if len(head) == 5 and head[:4] == _ZSTD_MAGIC and head[4] & 0x04:
                    held.append(out)
                else:
                    yield out
            if dobj.eof:  # a frame ended (checksum verified): the rest of the block starts the next one
                yield from held
                block, dobj = dobj.unused_data, None
            else:
                block = b""
    if dobj is not None:
        raise DocumentFileError(f"{path}: truncated zstd file (it ends inside a frame); re-create it")


def _split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _open_lines(path: Path) -> Iterator[bytes]:
    try:
        if path.name.endswith(".zst"):
            with open(path, "rb") as raw:
                yield from _split_lines(_zstd_chunks(raw, path))
        elif path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                yield from f
        else:
            with open(path, "rb") as f:
                yield from f
    except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:  # the file, not its bytes
        raise DocumentFileError(f"{path}: cannot read ({exc.strerror or exc}); check the path and its permissions") from None
    except (zstandard.ZstdError, gzip.BadGzipFile, EOFError, OSError) as exc:
        raise DocumentFileError(f"{path}: corrupted or truncated compressed file ({exc}); re-create it (rerun the stage that wrote it)") from None


def _iter_table(path: Path, text_key: str) -> Iterator[DocRecord]:
    """The rows of a Parquet or Arrow IPC file as documents (see the module docstring)."""
    schema, batches = open_table(path, DocumentFileError)
    if text_key not in schema.names:
        raise DocumentFileError(f"{path}: no column {text_key!r} (columns: {', '.join(schema.names)}); pass --text-key")
    import pyarrow as pa

    kind = schema.field(text_key).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or getattr(pa.types, "is_string_view", lambda _t: False)(kind)):
        raise DocumentFileError(f"{path}: column {text_key!r} holds {kind}, not text; pass the text column with --text-key")
    for row, rec in table_rows(path, DocumentFileError, batches):  # null columns are left out of the row
        text = rec.pop(text_key, "")
        doc_id = rec.pop("id", None)
        nested = rec.pop("metadata", None)
        if isinstance(nested, dict):
            rec.update(nested)
        yield DocRecord(str(doc_id) if doc_id is not None else f"{path.stem}/{row}", text, rec)


def read_toml(path: str | os.PathLike, error: type[Exception] = ValueError) -> dict:
    """A TOML file as a dict; a missing, unreadable or invalid file raises `error` with a
    message naming the file (tomllib from Python 3.11, tomli before)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such recipe file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder; give the recipe's .toml file") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text; a recipe is a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc})") from None


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through `PATH.tmp`, fsync, rename: the file is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _named(exc: OSError, path: Path) -> OSError:
    """`exc` with the file it concerns, for errors raised by streams that do not know it."""
    if exc.filename is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path)) if exc.errno is not None else OSError(errno.EIO, str(exc), str(path))


class DocumentWriter:
    """Atomic writer of one `.jsonl.zst` document file.

    Lines go to `PATH.tmp` through a zstd stream (level 3: ~4x smaller than raw JSON at
    ~300 MB/s); `close()` finishes the frame, fsyncs and renames to PATH. A writer that is
    never closed (a killed process) leaves only the `.tmp` file, which the next run
    overwrites.

    Every frame carries zstd's XXH64 content checksum, and a frame ends after each
    `FRAME_BYTES` of JSON lines, so a reader checks each frame before it uses its text while
    holding at most one frame in memory. Frames cost compression: on the shared text (1.8 MB
    of JSON lines) 1 MiB frames are 0.6% larger than one frame per file and 256 KiB ones
    2.9%, so 4 MiB frames cost ~0.2%; reading speed is unchanged (JSON parsing dominates).
    """

    FRAME_BYTES = 4 << 20

    def __init__(self, path: str | os.PathLike, level: int = 3):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = self.path.with_name(self.path.name + ".tmp")
        self._raw = open(self.tmp_path, "wb")
        self._zst = zstandard.ZstdCompressor(level=level, write_checksum=True).stream_writer(self._raw, closefd=False)
        self._frame_bytes = 0
        self.count = 0

    def write(self, doc_id: str, text: str, metadata: dict) -> None:
        self.write_line(orjson.dumps({"id": doc_id, "text": text, "metadata": metadata}, option=orjson.OPT_APPEND_NEWLINE))
        self.count += 1

    def write_line(self, line: bytes) -> None:
        """One raw line (ending in a newline), for files of other records (dedup clusters)."""
        try:
            self._zst.write(line)
        except OSError as exc:  # the zstd stream's errors name no file: name it (a full disk)
            raise _named(exc, self.tmp_path) from exc
        self._frame_bytes += len(line)
        if self._frame_bytes >= self.FRAME_BYTES:
            self._zst.flush(zstandard.FLUSH_FRAME)
            self._frame_bytes = 0

    def close(self) -> None:
        if self._raw.closed:
            return
        try:
            self._zst.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
        except OSError as exc:
            raise _named(exc, self.tmp_path) from exc
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        if not self._raw.closed:
            self._raw.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
