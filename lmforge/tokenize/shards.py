"""Token shards: zstd-compressed token arrays that can still be read at random.

## The lmforge shard format (`*.tokens.zst`, version 1)

A shard holds the token ids of whole documents, one after another, each document starting
with the BOS id (0). It is a sequence of **zstd frames**, so `zstd -dc shard.tokens.zst >
tokens.bin` (or any zstd library reading across frames) gives the raw little-endian token
array and `numpy.fromfile("tokens.bin", "<u2")` reads it; lmforge's metadata sits in
zstd *skippable frames*, which every zstd decoder ignores.

```
offset 0   header      skippable frame (magic 0x184D2A50, 24-byte payload)
                       payload: b"LMFSHARD" | version u32 | itemsize u32 (2 or 4) | frame_tokens u64
32         frame 0     zstd frame: tokens [0, F) as little-endian uint16/uint32, content size
...                    and XXH64 content checksum in the frame header/footer (standard zstd)
           frame k     tokens [kF, min((k+1)F, tokens)); every frame but the last holds exactly F
           index       skippable frame (magic 0x184D2A51): see below
end - 40   trailer     skippable frame (magic 0x184D2A52, 32-byte payload)
                       payload: b"LMFS" | version u32 | index_offset u64 | index_length u64 |
                                index_crc32 u32 | reserved u32
```

All integers are little-endian. `index_offset` is the file offset of the index frame's
payload and `index_length` its length; `index_crc32` is zlib's CRC-32 of that payload.
The index payload is `json_length u32`, a UTF-8 JSON object, zero padding to a multiple of
8, then the arrays it lists. The JSON object:

```
{"format": "lmforge-shard", "version": 1,
 "dtype": "uint16" | "uint32",      # uint16 while the vocabulary has <= 65536 ids
 "tokens": int, "documents": int, "frames": int, "frame_tokens": int,
 "fingerprint": "sha256:…",          # the tokenizer's fingerprint (sha256 of tokenizer.json)
 "vocab_size": int, "bos_id": 0, "zstd_level": int,
 "arrays": {name: {"offset": int, "dtype": "<u8" | "<u4", "count": int}},  # offset from payload start
 ...}                                # writers may add fields (lmforge adds "input", "doc_range")
```

The arrays are `frame_offsets` (`<u8`, frames + 1 entries: the file offset of each zstd
frame, then the offset just past the last one), `frame_crc32` (`<u4`, frames entries: CRC-32
of each compressed frame's bytes, so `verify` finds a bad byte without decompressing) and
`doc_starts` (`<u8`, documents entries: the token offset where each document, i.e. its BOS,
begins). Reading tokens `[a, b)` is: frames `a // F` to `(b - 1) // F`, decompress each,
concatenate, cut.

## Measured choices (on `../shared/data/text`, 1.86 MB of text, tokenizers trained on it)

Shard size over the raw uint16 array (`tokens * 2` bytes); lower is better.

| vocabulary | frame 8Ki tokens, level 3 | 64Ki, level 3 | **64Ki, level 9** | 64Ki, level 19 | 64Ki, level 9, byte planes split |
| --- | --- | --- | --- | --- | --- |
| 8k  (3.80 bytes/token)  | 0.699 | 0.699 | **0.653** | 0.644 | 0.742 |
| 32k (4.57 bytes/token)  | 0.739 | 0.750 | **0.704** | 0.694 | 0.799 |

- Frames of 65536 tokens at zstd level 9 (the default): level 9 compresses the uint16
  stream at ~45 MB/s on one core, far faster than tokenisation, and is 0.05 smaller than
  level 3; level 19 gains another 0.01 at 7 MB/s. Smaller frames cost compression (8Ki
  tokens: +0.04 at level 9) and buy cheaper random windows; the trainer reads windows
  sequentially, so it decompresses each frame once (`ShardReader` caches a few frames).
- Splitting high and low bytes into two planes *hurts* (+0.04 to +0.09): token streams
  compress through repeated multi-token sequences, which zstd finds as 2-byte-aligned
  matches in the interleaved array and loses when the planes are separated.
- A trained zstd dictionary (8–110 KB, trained on one half, measured on the other half) gains
  at most 0.015 at 64Ki-token frames before its own bytes are counted, and loses once they
  are; not used. Remapping ids by frequency rank gains 0.02 at the cost of a gather on every
  read; not used. The order-0 entropy of the 8k stream is 10.6 bits/token (0.66 of 16 bits):
  zstd's byte-wise Huffman coder plus its match finder land close to that.
- The index costs 8 bytes per document (~0.5% for 800-token documents).

`benchmarks/loader.py` (no arguments, shared text, 2-core machine, 1024-token windows):
shards are 0.664 of raw uint16 at 8k and 0.720 at 32k (index and headers included; the
tokenizers trained with `min_frequency=0` on the same text); the loader reads
200M tokens/s in trainer order against 286M tokens/s for zstd decompressing the same frames
alone (0.70x) and 53M tokens/s for nanoGPT's per-batch memmap of the raw uint16 file; peak
memory 107 MB for the whole benchmark, the reader itself holding at most `cache_frames`
decompressed frames per open shard.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson
import zstandard

from lmforge.errors import UserError

SHARD_SUFFIX = ".tokens.zst"
FORMAT = "lmforge-shard"
VERSION = 1
HEADER_MAGIC = 0x184D2A50
INDEX_MAGIC = 0x184D2A51
TRAILER_MAGIC = 0x184D2A52
HEADER_TAG = b"LMFSHARD"
TRAILER_TAG = b"LMFS"
HEADER_SIZE = 32
TRAILER_SIZE = 40
DEFAULT_FRAME_TOKENS = 65536
DEFAULT_LEVEL = 9
BOS_ID = 0  # lmforge.tokenize.tokenizer.BOS_ID; every document starts with it

_HEADER = struct.Struct("<II8sIIQ")  # magic, size, tag, version, itemsize, frame_tokens
_TRAILER = struct.Struct("<II4sIQQII")  # magic, size, tag, version, index_offset, index_length, crc, reserved


class ShardError(UserError):
    """A shard that cannot be read or fails a check; the message names the file (and frame)."""


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (vocab_size <= 65536), else uint32."""
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---- writing -------------------------------------------------------------------------------


class ShardWriter:
    """Write one shard atomically: tokens stream into frames of `frame_tokens`, `close()`
    appends the index and trailer, fsyncs, and renames `PATH.tmp` to PATH.

    >>> with ShardWriter("a.tokens.zst", fingerprint=tok.fingerprint, vocab_size=8192) as w:
    ...     w.add_document(tok.encode(text, bos=True))

    Output bytes depend only on the documents and the settings, so a rerun is byte-identical.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fingerprint: str,
        vocab_size: int,
        frame_tokens: int = DEFAULT_FRAME_TOKENS,
        level: int = DEFAULT_LEVEL,
        extra: dict | None = None,
    ):
        if frame_tokens < 1:
            raise ValueError(f"frame_tokens={frame_tokens}: must be at least 1 (65536 is the default)")
        self.path = Path(path)
        self.tmp_path = self.path.with_name(self.path.name + ".tmp")
        self.dtype = dtype_for_vocab(vocab_size)
        self.fingerprint = fingerprint
        self.vocab_size = vocab_size
        self.frame_tokens = frame_tokens
        self.level = level
        self.extra = dict(extra or {})
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.tmp_path, "wb")
        self._f.write(_HEADER.pack(HEADER_MAGIC, 24, HEADER_TAG, VERSION, self.dtype.itemsize, frame_tokens))
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._offsets: list[int] = [HEADER_SIZE]
        self._crcs: list[int] = []
        self._doc_starts: list[int] = []
        self.tokens = 0

    @property
    def documents(self) -> int:
        return len(self._doc_starts)

    def add_document(self, ids) -> None:
        """Append one document; it must start with BOS (id 0)."""
        arr = np.asarray(ids, dtype=self.dtype)
        if arr.size == 0 or arr[0] != BOS_ID:
            raise ValueError("a shard document must start with the BOS id 0 (encode(text, bos=True))")
        self._doc_starts.append(self.tokens)
        self.tokens += arr.size
        self._pending.append(arr)
        self._pending_n += arr.size
        if self._pending_n >= self.frame_tokens:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        buf = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        n_full = (buf.size // self.frame_tokens) * self.frame_tokens
        cut = buf.size if final else n_full
        for i in range(0, cut, self.frame_tokens):
            frame = self._cctx.compress(buf[i : min(i + self.frame_tokens, cut)].tobytes())
            self._f.write(frame)
            self._crcs.append(zlib.crc32(frame))
            self._offsets.append(self._offsets[-1] + len(frame))
        rest = buf[cut:]
        self._pending = [rest] if rest.size else []
        self._pending_n = rest.size

    def close(self) -> dict:
        """Finish the file; returns its index JSON (tokens, documents, frames, ...)."""
        if self._f.closed:
            raise ValueError(f"{self.path}: writer already closed")
        self._flush(final=True)
        index_offset = self._offsets[-1] + 8
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "dtype": self.dtype.name,
            "tokens": self.tokens,
            "documents": self.documents,
            "frames": len(self._crcs),
            "frame_tokens": self.frame_tokens,
            "fingerprint": self.fingerprint,
            "vocab_size": self.vocab_size,
            "bos_id": BOS_ID,
            "zstd_level": self.level,
            **self.extra,
        }
        arrays = [
            ("frame_offsets", np.asarray(self._offsets, dtype="<u8")),
            ("frame_crc32", np.asarray(self._crcs, dtype="<u4")),
            ("doc_starts", np.asarray(self._doc_starts, dtype="<u8")),
        ]
        payload = _pack_index(meta, arrays)
        self._f.write(struct.pack("<II", INDEX_MAGIC, len(payload)))
        self._f.write(payload)
        self._f.write(
            _TRAILER.pack(TRAILER_MAGIC, 32, TRAILER_TAG, VERSION, index_offset, len(payload), zlib.crc32(payload), 0)
        )
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp_path, self.path)
        return meta

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _pack_index(meta: dict, arrays: list[tuple[str, np.ndarray]]) -> bytes:
    # The JSON names each array's offset, which depends on the JSON's own length: iterate
    # until the padded length is stable (twice at most in practice).
    base = 0
    for _ in range(8):
        layout, pos = {}, base
        for name, arr in arrays:
            layout[name] = {"offset": pos, "dtype": arr.dtype.str, "count": int(arr.size)}
            pos += arr.nbytes
            pos += -pos % 8
        js = orjson.dumps({**meta, "arrays": layout}, option=orjson.OPT_SORT_KEYS)
        head = 4 + len(js)
        new_base = head + (-head % 8)
        if new_base == base:
            break
        base = new_base
    parts = [struct.pack("<I", len(js)), js, b"\0" * (base - 4 - len(js))]
    for _name, arr in arrays:
        parts.append(arr.tobytes())
        parts.append(b"\0" * (-arr.nbytes % 8))
    return b"".join(parts)


# ---- reading -------------------------------------------------------------------------------


@dataclass
class FrameProblem:
    frame: int | None
    message: str


class ShardReader:
    """Random access to a shard: `len(r)` tokens, `r[a:b]` a numpy array, `r.doc_starts`.

    The file is memory-mapped; `r[a:b]` decompresses only the frames that overlap `[a, b)`
    and keeps the last `cache_frames` decompressed frames (4 x 128 KiB for uint16 by
    default), so windows read in order decompress each frame once and memory does not grow
    with the shard. Reads are thread-safe: each thread gets its own zstd decompressor and
    the frame cache is behind a lock. Returned arrays are fresh copies the caller may write.

    >>> with ShardReader("shards/00000-c4-0000.tokens.zst") as r:
    ...     window = r[0:2049]                      # uint16 array
    ...     first_doc = r.document(0)              # starts with BOS (0)
    """

    def __init__(self, path: str | os.PathLike, *, cache_frames: int = 4):
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            raise ShardError(f"{self.path}: no such shard file") from None
        except OSError as exc:
            raise ShardError(f"{self.path}: cannot open ({exc})") from None
        try:
            size = os.fstat(self._file.fileno()).st_size
            if size < HEADER_SIZE + TRAILER_SIZE:
                raise ShardError(f"{self.path}: {size} bytes, too short to be a shard (truncated?); rebuild it with `lmforge shards build`")
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self._parse(size)
        except BaseException:
            self._file.close()
            raise
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.cache_frames = max(1, cache_frames)

    def _parse(self, size: int) -> None:
        mm = self._mm
        magic, hsize, tag, version, itemsize, frame_tokens = _HEADER.unpack_from(mm, 0)
        if magic != HEADER_MAGIC or tag != HEADER_TAG or hsize != HEADER_SIZE - 8:
            raise ShardError(f"{self.path}: not an lmforge shard (bad header)")
        if itemsize not in (2, 4) or frame_tokens < 1:
            raise ShardError(f"{self.path}: bad header (itemsize {itemsize}, frame_tokens {frame_tokens}); the shard is corrupted")
        if version != VERSION:
            raise ShardError(f"{self.path}: shard format version {version}; this lmforge reads version {VERSION}, upgrade lmforge")
        tmagic, tsize, ttag, tver, index_offset, index_length, index_crc, reserved = _TRAILER.unpack_from(mm, size - TRAILER_SIZE)
        if tmagic != TRAILER_MAGIC or ttag != TRAILER_TAG:
            raise ShardError(f"{self.path}: no shard trailer (file truncated or still being written?); rebuild it")
        if tsize != TRAILER_SIZE - 8 or tver != version or reserved != 0:
            raise ShardError(f"{self.path}: corrupted trailer; rebuild the shard")
        if index_offset < HEADER_SIZE + 8 or index_offset + index_length != size - TRAILER_SIZE:
            raise ShardError(f"{self.path}: trailer points outside the index (corrupted trailer or extra bytes at the end)")
        imagic, ilen = struct.unpack_from("<II", mm, index_offset - 8)
        if imagic != INDEX_MAGIC or ilen != index_length:
            raise ShardError(f"{self.path}: corrupted index frame header; rebuild the shard")
        payload = memoryview(mm)[index_offset : index_offset + index_length]
        if zlib.crc32(payload) != index_crc:
            payload.release()
            raise ShardError(f"{self.path}: index checksum mismatch (corrupted index); rebuild the shard")
        (js_len,) = struct.unpack_from("<I", payload, 0)
        try:
            meta = orjson.loads(bytes(payload[4 : 4 + js_len]))
        except orjson.JSONDecodeError as exc:
            payload.release()
            raise ShardError(f"{self.path}: unreadable index JSON ({exc})") from None
        self.meta: dict = meta
        self.dtype = np.dtype(meta["dtype"]).newbyteorder("<")
        if self.dtype.itemsize != itemsize:
            raise ShardError(f"{self.path}: header itemsize {itemsize} disagrees with index dtype {meta['dtype']}")
        arrays = {}
        for name, spec in meta["arrays"].items():
            start = index_offset + spec["offset"]
            arrays[name] = np.frombuffer(mm, dtype=np.dtype(spec["dtype"]), count=spec["count"], offset=start)
        payload.release()
        self.frame_offsets: np.ndarray = arrays["frame_offsets"]
        self.frame_crc32: np.ndarray = arrays["frame_crc32"]
        self._doc_starts_u8: np.ndarray = arrays["doc_starts"]
        self.frame_tokens: int = int(frame_tokens)
        self.tokens: int = int(meta["tokens"])
        self.n_frames: int = int(meta["frames"])
        self.fingerprint: str = meta["fingerprint"]
        self.vocab_size: int = int(meta["vocab_size"])
        self._offsets_list = self.frame_offsets.tolist()  # python ints: fast slicing in the hot path
        if self.n_frames != -(-self.tokens // frame_tokens) or len(self._offsets_list) != self.n_frames + 1:
            raise ShardError(f"{self.path}: index lists {self.n_frames} frames for {self.tokens} tokens (corrupted index)")

    # ---- the reading API -------------------------------------------------------------------
    def __len__(self) -> int:
        return self.tokens

    @property
    def doc_starts(self) -> np.ndarray:
        """Token offsets (int64) where each document's BOS is; read-only, backed by the map."""
        return self._doc_starts_u8.view(np.int64) if self._doc_starts_u8.dtype == np.dtype("<u8") else self._doc_starts_u8.astype(np.int64)

    @property
    def documents(self) -> int:
        return len(self._doc_starts_u8)

    @property
    def compressed_bytes(self) -> int:
        return self._offsets_list[-1] - self._offsets_list[0]

    def __getitem__(self, key) -> np.ndarray | int:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.tokens)
            if step == 1:
                return self.read(start, stop)
            idx = np.arange(start, stop, step)
            if idx.size == 0:
                return np.empty(0, dtype=self.dtype)
            lo = int(idx.min())
            return self.read(lo, int(idx.max()) + 1)[idx - lo]
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if i < 0:
                i += self.tokens
            if not 0 <= i < self.tokens:
                raise IndexError(f"token {key} out of range for a shard of {self.tokens} tokens")
            return int(self.read(i, i + 1)[0])
        raise TypeError(f"shard indices must be ints or slices, not {type(key).__name__}")

    def read(self, start: int, stop: int) -> np.ndarray:
        """Tokens `[start, stop)` (clipped to the shard) as a new array of `self.dtype`."""
        if start < 0:
            start = 0
        if stop > self.tokens:
            stop = self.tokens
        if stop <= start:
            return np.empty(0, dtype=self.dtype)
        F = self.frame_tokens
        first, last = start // F, (stop - 1) // F
        if first == last:
            base = first * F
            return self._frame(first)[start - base : stop - base].copy()
        out = np.empty(stop - start, dtype=self.dtype)
        pos = 0
        for k in range(first, last + 1):
            frame = self._frame(k)
            lo = max(start - k * F, 0)
            hi = min(stop - k * F, frame.size)
            out[pos : pos + hi - lo] = frame[lo:hi]
            pos += hi - lo
        return out

    def document(self, i: int) -> np.ndarray:
        """The tokens of document `i` (BOS first)."""
        n = self.documents
        asked = i
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"document {asked} out of range for a shard of {n} documents (0..{n - 1}, or -1..-{n} from the end)")
        starts = self._doc_starts_u8
        end = int(starts[i + 1]) if i + 1 < n else self.tokens
        return self.read(int(starts[i]), end)

    def iter_documents(self) -> Iterator[np.ndarray]:
        for i in range(self.documents):
            yield self.document(i)

    def _frame(self, k: int) -> np.ndarray:
        cache = self._cache
        with self._lock:
            arr = cache.get(k)
            if arr is not None:
                cache.move_to_end(k)
                return arr
        arr = self._decompress(k)
        with self._lock:
            cache[k] = arr
            while len(cache) > self.cache_frames:
                cache.popitem(last=False)
        return arr

    def _decompress(self, k: int) -> np.ndarray:
        dctx = getattr(self._local, "dctx", None)
        if dctx is None:
            dctx = self._local.dctx = zstandard.ZstdDecompressor()
        lo, hi = self._offsets_list[k], self._offsets_list[k + 1]
        expect = min(self.frame_tokens, self.tokens - k * self.frame_tokens)
        try:
            raw = dctx.decompress(self._mm[lo:hi])
        except zstandard.ZstdError as exc:
            raise ShardError(f"{self.path}: frame {k} (bytes {lo}..{hi}) does not decompress ({exc}); the shard is corrupted, rebuild it") from None
        if len(raw) != expect * self.dtype.itemsize:
            raise ShardError(f"{self.path}: frame {k} holds {len(raw)} bytes, expected {expect * self.dtype.itemsize} (corrupted)")
        return np.frombuffer(raw, dtype=self.dtype)

    # ---- checks ----------------------------------------------------------------------------
    def verify(self, *, decompress: bool = True) -> list[FrameProblem]:
        """Every check the format allows; returns the problems found (empty when sound).

        Per frame: CRC-32 of the compressed bytes, then (with `decompress`) zstd's own
        XXH64 content checksum and the frame's token count. Then: documents start with BOS
        at increasing offsets, and the frames tile the file without gaps.
        """
        problems: list[FrameProblem] = []
        offs = self._offsets_list
        if offs[0] != HEADER_SIZE:
            problems.append(FrameProblem(None, f"first frame at byte {offs[0]}, expected {HEADER_SIZE}"))
        dctx = zstandard.ZstdDecompressor()
        starts = self._doc_starts_u8
        bos_ok = True
        for k in range(self.n_frames):
            lo, hi = offs[k], offs[k + 1]
            if zlib.crc32(self._mm[lo:hi]) != int(self.frame_crc32[k]):
                problems.append(FrameProblem(k, f"frame {k} (bytes {lo}..{hi}): CRC-32 mismatch"))
                continue
            if decompress:
                try:
                    raw = dctx.decompress(self._mm[lo:hi])
                except zstandard.ZstdError as exc:
                    problems.append(FrameProblem(k, f"frame {k} (bytes {lo}..{hi}): does not decompress ({exc})"))
                    continue
                frame = np.frombuffer(raw, dtype=self.dtype)
                expect = min(self.frame_tokens, self.tokens - k * self.frame_tokens)
                if frame.size != expect:
                    problems.append(FrameProblem(k, f"frame {k}: {frame.size} tokens, expected {expect}"))
                    continue
                base = k * self.frame_tokens
                i0, i1 = np.searchsorted(starts, [base, base + frame.size])
                if i1 > i0 and np.any(frame[(starts[i0:i1] - base).astype(np.int64)] != BOS_ID):
                    bos_ok = False
                    problems.append(FrameProblem(k, f"frame {k}: a document start is not the BOS id {BOS_ID}"))
                if int(frame.max(initial=0)) >= self.vocab_size:
                    problems.append(FrameProblem(k, f"frame {k}: token id {int(frame.max())} >= vocab_size {self.vocab_size}"))
        if starts.size:
            if int(starts[0]) != 0 and self.tokens:
                problems.append(FrameProblem(None, "the first document does not start at token 0"))
            if starts.size > 1 and np.any(np.diff(starts.astype(np.int64)) <= 0):
                problems.append(FrameProblem(None, "document starts are not increasing"))
        elif self.tokens:
            problems.append(FrameProblem(None, f"{self.tokens} tokens but no document starts"))
        del bos_ok
        return problems

    def close(self) -> None:
        if getattr(self, "_mm", None) is not None and not self._file.closed:
            # numpy views of the map (index arrays) may still exist; drop ours first
            self.frame_offsets = self.frame_crc32 = self._doc_starts_u8 = None  # type: ignore[assignment]
            self._cache.clear()
            try:
                self._mm.close()
            except BufferError:  # a caller still holds doc_starts: the map closes with it
                pass
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"ShardReader({str(self.path)!r}, tokens={self.tokens}, documents={self.documents}, dtype={self.dtype.name})"


def read_shard_meta(path: str | os.PathLike) -> dict:
    """The index JSON of a shard without keeping it open (header checks included)."""
    with ShardReader(path) as r:
        return dict(r.meta)


def find_shards(path: str | os.PathLike) -> list[Path]:
    """Shard files under a folder (sorted), or the file itself."""
    p = Path(path)
    if p.is_dir():
        return sorted(q for q in p.rglob(f"*{SHARD_SUFFIX}") if q.is_file())
    if p.is_file():
        return [p]
    raise FileNotFoundError(f"{p}: no such shard file or folder")
