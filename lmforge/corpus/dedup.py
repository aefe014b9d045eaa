"""Near-duplicate (MinHash LSH) and exact duplicate removal, as four stages an executor spreads.

```
documents ─1 signatures─▶ sigs/ shingles/ names/ buckets/SHARD/FILE.npy (tasks over input files)
          ─2 buckets────▶ edges/SHARD.npy                             (tasks over bucket shards)
          ─3 clusters───▶ remove/FILE.npy, OUT/clusters/, clusters.json (one task)
          ─4 filter─────▶ OUT/documents/FILE.jsonl.zst                  (tasks over input files)
```

1. **signatures**: per input file, MinHash signatures (`minhash.MinHasher`, identical to
   datasketch's), a content hash of the lower-cased, whitespace-collapsed text (`--exact`),
   and for every band the 64-bit bucket key, written as `(bucket key, document key)` records
   into `bucket_shards` shard folders by `key % bucket_shards`. A document key is
   `file index << 32 | ordinal in file`, so ordering keys is ordering by input position.
   With `verify="exact"` (the default) it also writes each document's sorted unique shingle
   hashes (the 32-bit hashes the signature is computed from: same n-gram, CJK handling and
   hash) to `shingles/FILE.npy`, with offsets in `shingles/FILE.idx.npy`.
2. **buckets**: a shard's records from every file are sorted; each bucket with two or more
   documents gives edges from its first document to every other and between neighbours
   (first + chain: a star alone would lose B–C when A–C fails verification). Every edge is
   verified (`verify`, Jaccard >= `verify_threshold`, the threshold by default) and the
   shard's verified edges are reduced to connected components written as `(document,
   component root)` pairs: sharded union-find. `verify="exact"` compares the two shingle
   sets (pairs with an estimate below `verify_threshold - 0.2`, LSH false positives, are
   dropped without it; a task compares each pair once, though a pair at J ~0.9 meets in
   ~10 shards); `"estimate"` (`--verify-candidates`) uses the share of equal values of the
   two full signatures, whose standard deviation is ~0.038 at 0.8 with 112 values, so pairs
   at 0.75-0.8 pass; `"none"` (`--no-verify-candidates`) keeps every candidate pair and
   makes each component one cluster (LSH alone, as datasketch's MinHashLSH or datatrove's
   MinHash pipeline do). `benchmarks/dedup_precision.py` (seed 0, real web/news/wiki text
   with planted variants, strict at 0.8): exact gives precision 1.000 / recall 0.997-1.000,
   estimate 0.858-0.885 / 0.948-0.967, none 0.28-0.31 / 0.999-1.000.
3. **clusters**: the shards' `(document, root)` pairs are merged into global components
   (vectorised min-label propagation with pointer jumping; memory is that of the documents
   that have a duplicate, ~40 bytes each, never the corpus). In each component the earliest
   document (input order: sorted file path, then line) is kept and every member whose
   Jaccard (as `verify` measures it) with it is >= `verify_threshold` is removed with it as one cluster; the
   members left over form clusters around *their* earliest member the same way, so a removed
   document always resembles its cluster's survivor, even along a chain A~B~C with A≁C.
4. **filter**: each input file is read again and written without its removed documents.

Locally (and with Ray) the driver runs the stages one after the other and writes
`OUT/stats.json`. With Slurm it submits them at once as a chain of job arrays, each with
`--dependency=afterok:` the previous one (datatrove's `depends=`), plus a fifth one-task job
that writes `OUT/stats.json`, and returns; a task that meets bad input fails, so the rest of
the chain never starts, and a rerun resubmits only the unfinished tasks.

Memory: stage 1 holds one batch of documents; stage 2 one shard (16 bytes x records /
`bucket_shards`), plus with exact verification a chunk of ~1M shingles and the task's
results so far (25 bytes a pair, reset past 20M pairs); stage 3 the documents with
duplicates plus one chunk of their signatures (or shingles).

Cost of exact verification (measured): disk, 4 bytes per unique shingle, ~0.65x the raw
UTF-8 text (web 4.0 MB for 6.1 MB of text, 1.2 MB zstd input, 0.9 MB signatures; wiki 4.8
MB for 7.6 MB); time, `dedup_precision.py`'s wiki set (3,500 documents) 3.1-3.6 s against
2.1-2.5 s with the estimate (sorting each document's shingles in stage 1, reading and
comparing sets in stage 2); `benchmarks/dedup_scale.py` (100k synthetic documents of 400
shingles, 2,000 planted clusters) buckets + clusters 4.0 s, peak RSS 218 MB, against
3.3-4.9 s and 108 MB with the estimate.
Every output is written under a temporary name and renamed, each unit (file, shard, stage 3)
is skipped when its output exists, and every stage is deterministic, so a run killed at any
point and started again writes byte-identical output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import orjson

from lmforge.corpus.minhash import LSHParams, MinHasher, _fmix64, band_keys, minhash_from_hashes, optimal_lsh_params, shingle_hashes
from lmforge.documents import DocumentFileError, DocumentWriter, find_document_files, iter_documents
from lmforge.errors import UserError

_U64 = np.uint64
_KEY_SHIFT = _U64(32)
_ROW_MASK = _U64(0xFFFFFFFF)
#: the stage folders under OUT/.lmforge/dedup
WORK = Path(".lmforge") / "dedup"
VERIFY_MODES = ("exact", "estimate", "none")
#: with verify="exact", pairs whose estimated Jaccard is below verify_threshold - this are not
#: compared exactly (LSH false positives): 0.2 is ~5 standard deviations of a 112-value
#: estimate at 0.8, so a pair at the threshold is skipped with probability < 1e-6
EXACT_PREFILTER = 0.2


class DedupError(UserError):
    """Input or configuration problem; the message names the file or the option to fix."""


@dataclass
class DedupConfig:
    """Settings shared by every dedup stage (like datatrove's MinhashConfig)."""

    #: Jaccard similarity (of word n-gram sets) from which two documents are duplicates
    threshold: float = 0.8
    #: shingle length in words (each CJK/Thai character is a word)
    ngram: int = 5
    num_perm: int = 112
    #: LSH bands and rows; derived from threshold and num_perm when not given
    bands: int | None = None
    rows: int | None = None
    seed: int = 1
    #: "poly" (vectorised polynomial hash) or "sha1" (datasketch's default, slower)
    hash: str = "poly"
    #: how an LSH candidate pair (and a cluster member) is checked before it joins a cluster:
    #: "exact" (Jaccard of the two shingle sets), "estimate" (share of equal signature values,
    #: `--verify-candidates`) or "none" (`--no-verify-candidates`: every pair that shares a band
    #: is a duplicate). True / False are read as "estimate" / "none".
    verify: str | bool = "exact"
    #: the Jaccard (exact or estimated, as `verify` says) a verified pair needs; default: threshold
    verify_threshold: float | None = None
    #: remove near-duplicates (MinHash LSH)
    near: bool = True
    #: remove exact duplicates (hash of lower-cased, whitespace-collapsed text)
    exact: bool = False
    bucket_shards: int = 64
    #: documents per signature batch
    batch_size: int = 2000
    text_key: str = "text"
    #: a bar over the stages (signatures, buckets, clusters, filter) on this machine's runs
    progress: bool = False

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1 (got {self.threshold}); 0.8 is FineWeb's")
        if self.ngram < 1:
            raise ValueError(f"ngram must be >= 1 (got {self.ngram})")
        if self.num_perm < 1:
            raise ValueError(f"num_perm must be >= 1 (got {self.num_perm})")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both --bands and --rows, or neither (they are then derived from --threshold)")
        if self.bands is None:
            params = optimal_lsh_params(self.threshold, self.num_perm)
            self.bands, self.rows = params.bands, params.rows
        if self.bands < 1 or self.rows < 1:
            raise ValueError(f"bands and rows must be >= 1 (got {self.bands} x {self.rows})")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}: raise --num-perm or lower --bands/--rows"
            )
        if isinstance(self.verify, bool):
            self.verify = "estimate" if self.verify else "none"
        if self.verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)} (got {self.verify!r})")
        if self.verify_threshold is None:
            self.verify_threshold = self.threshold
        if not 0.0 <= self.verify_threshold <= 1.0:
            raise ValueError(f"verify_threshold must be between 0 and 1 (got {self.verify_threshold})")
        if self.hash not in ("poly", "sha1"):
            raise ValueError(f"hash must be 'poly' or 'sha1' (got {self.hash!r})")
        if not (self.near or self.exact):
            raise ValueError("nothing to do: enable near-duplicate removal or --exact")
        if self.bucket_shards < 1:
            raise ValueError(f"bucket_shards must be >= 1 (got {self.bucket_shards})")

    @property
    def lsh(self) -> LSHParams:
        return LSHParams(self.bands, self.rows)

    def fingerprint(self) -> dict:
        """The settings that change the output (a rerun must use the same ones)."""
        d = dataclasses.asdict(self)
        for k in ("batch_size", "progress"):
            d.pop(k)
        return d


# ----------------------------------------------------------------------------------------
# small helpers


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_parts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (keys >> _KEY_SHIFT).astype(np.int64), (keys & _ROW_MASK).astype(np.int64)


def _content_hash(text: str) -> int:
    norm = " ".join(text.lower().split()).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(norm, digest_size=8).digest(), "little")


def check_zst(path: str | Path, chunk: int = 1 << 20) -> None:
    """Raise DocumentFileError unless `path` is a sequence of complete zstd frames.

    zstandard's stream reader ends quietly at a truncated frame, so a cut-off file would
    otherwise read as a shorter, valid one. Decompressing to nowhere runs at ~1 GB/s,
    well under 10% of the signature stage's time.
    """
    import zstandard

    dobj = zstandard.ZstdDecompressor().decompressobj()
    offset, in_frame = 0, False
    try:
        with open(path, "rb") as f:
            while data := f.read(chunk):
                offset += len(data)
                while data:
                    dobj.decompress(data)
                    in_frame = not dobj.eof
                    if in_frame:
                        break
                    data = dobj.unused_data  # the next frame starts here
                    dobj = zstandard.ZstdDecompressor().decompressobj()
    except zstandard.ZstdError as exc:
        raise DocumentFileError(f"{path}: corrupted zstd data near byte {offset} ({exc}); re-create the file") from None
    if in_frame:
        raise DocumentFileError(f"{path}: truncated zstd file ({offset} bytes, last frame incomplete); re-create the file")


class _RowStore:
    """Rows of per-file `.npy` arrays gathered by document key, with bounded resident memory.

    Files are memory-mapped; after each chunk the touched pages are dropped from this
    process (MADV_DONTNEED), so gathering from a 4 GB signature folder does not show up as
    4 GB of RSS.
    """

    def __init__(self, folder: Path, chunk: int = 65536):
        self.folder, self.chunk = folder, chunk

    def gather(self, keys: np.ndarray) -> np.ndarray:
        files, rows = _key_parts(keys)
        out = None
        order = np.argsort(keys, kind="stable")
        bounds = np.flatnonzero(np.diff(files[order])) + 1
        for group in np.split(order, bounds):
            if group.size == 0:
                continue
            arr = np.load(self.folder / f"{files[group[0]]:06d}.npy", mmap_mode="r")
            if out is None:
                out = np.empty((len(keys),) + arr.shape[1:], dtype=arr.dtype)
            for lo in range(0, group.size, self.chunk):
                g = group[lo : lo + self.chunk]
                out[g] = arr[rows[g]]
                _drop_pages(arr)
            del arr
        if out is None:
            out = np.empty((0,), dtype=np.uint32)
        return out


def shingle_signatures(hasher: MinHasher, texts: list[str], values: list, counts: list) -> np.ndarray:
    """`hasher.signatures(texts)`, and each document's sorted unique shingle hashes appended to
    `values` (one uint32 array per sub-batch) with their per-document `counts`."""
    out = np.empty((len(texts), hasher.num_perm), dtype=np.uint32)
    for lo in range(0, len(texts), hasher.sub_batch):
        batch = texts[lo : lo + hasher.sub_batch]
        hashes, cnt = shingle_hashes(batch, hasher.ngram, hasher.hash, hasher.backend)
        out[lo : lo + len(batch)] = minhash_from_hashes(hashes, cnt, hasher.a, hasher.b, backend=hasher.backend)
        v, c = unique_per_document(hashes, cnt)
        values.append(v)
        counts.append(c)
    return out


def unique_per_document(hashes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values of each document's run of `hashes`: `(values, counts)`.

    `unique_per_document([5, 3, 5, 9, 9], [3, 2])` -> `([3, 5, 9], [2, 1])`
    """
    doc = np.repeat(np.arange(len(counts), dtype=np.uint64), counts)
    key = np.sort((doc << _KEY_SHIFT) | hashes.astype(np.uint64))
    first = np.concatenate([[True], key[1:] != key[:-1]]) if key.size else np.zeros(0, bool)
    key = key[first]
    return (key & _ROW_MASK).astype(np.uint32), np.bincount((key >> _KEY_SHIFT).astype(np.int64), minlength=len(counts))


class _ShingleStore:
    """Each document's sorted unique shingle hashes by key, from `shingles/FILE.npy` (the values)
    and `shingles/FILE.idx.npy` (offsets, one more than documents), memory-mapped."""

    def __init__(self, folder: Path):
        self.folder = folder

    def lengths(self, keys: np.ndarray) -> np.ndarray:
        files, rows = _key_parts(keys)
        out = np.zeros(len(keys), np.int64)
        for fi in np.unique(files):
            sel = np.flatnonzero(files == fi)
            idx = np.load(self.folder / f"{fi:06d}.idx.npy", mmap_mode="r")
            out[sel] = idx[rows[sel] + 1] - idx[rows[sel]]
        return out

    def gather(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(values, lengths)`: the documents' sets one after the other, in the order of `keys`."""
        files, rows = _key_parts(keys)
        starts = np.zeros(len(keys), np.int64)
        lengths = np.zeros(len(keys), np.int64)
        parts: dict[int, np.ndarray] = {}
        for fi in np.unique(files):
            sel = np.flatnonzero(files == fi)
            idx = np.load(self.folder / f"{fi:06d}.idx.npy", mmap_mode="r")
            starts[sel], lengths[sel] = idx[rows[sel]], idx[rows[sel] + 1] - idx[rows[sel]]
            parts[int(fi)] = sel
        pos = np.zeros(len(keys) + 1, np.int64)
        np.cumsum(lengths, out=pos[1:])
        values = np.empty(int(pos[-1]), np.uint32)
        for fi, sel in parts.items():
            arr = np.load(self.folder / f"{fi:06d}.npy", mmap_mode="r")
            src = _ranges(starts[sel], lengths[sel])
            dst = _ranges(pos[sel], lengths[sel])
            values[dst] = arr[src]
            _drop_pages(arr)
            del arr
        return values, lengths


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift


def exact_jaccard(store: _ShingleStore, a: np.ndarray, b: np.ndarray, chunk_shingles: int = 1_000_000) -> np.ndarray:
    """Exact Jaccard of the shingle sets of documents `a[i]` and `b[i]` (two empty sets: 1.0).

    Pairs go in chunks of about `chunk_shingles` shingles (~40 MB of work arrays): both sets of
    a chunk are tagged with the pair's index, sorted together, and every value that occurs
    twice under one tag is in the intersection.
    """
    out = np.ones(len(a), dtype=np.float64)
    if len(a) == 0:
        return out
    size = store.lengths(a) + store.lengths(b)
    cum = np.cumsum(size)
    lo = 0
    while lo < len(a):
        hi = max(lo + 1, int(np.searchsorted(cum, cum[lo] - size[lo] + chunk_shingles, side="right")))
        va, la = store.gather(a[lo:hi])
        vb, lb = store.gather(b[lo:hi])
        tag = np.concatenate([np.repeat(np.arange(hi - lo, dtype=np.uint64), la), np.repeat(np.arange(hi - lo, dtype=np.uint64), lb)])
        key = np.sort((tag << _KEY_SHIFT) | np.concatenate([va, vb]).astype(np.uint64))
        dup = key[1:] == key[:-1]
        inter = np.bincount((key[1:][dup] >> _KEY_SHIFT).astype(np.int64), minlength=hi - lo)
        union = la + lb - inter
        out[lo:hi] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        lo = hi
    return out


def _drop_pages(arr) -> None:
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # pragma: no cover - platform dependent
            pass


def connected_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Components of the graph with edges `a[i]–b[i]` (uint64 keys).

    Returns `(nodes, roots)`: every node that has an edge (sorted) and the smallest node of
    its component. Vectorised hook-and-compress: each round every edge pulls both ends to the
    smaller label, then labels jump to their label's label until stable; rounds ~ log(diameter).
    `connected_components([1, 2, 7], [2, 3, 9])` -> `([1, 2, 3, 7, 9], [1, 1, 1, 7, 7])`
    """
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    if a.size == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    nodes = np.unique(np.concatenate([a, b]))
    ia = np.searchsorted(nodes, a)
    ib = np.searchsorted(nodes, b)
    label = np.arange(nodes.size, dtype=np.int64)
    while True:
        la, lb = label[ia], label[ib]
        m = np.minimum(la, lb)
        before = label.copy()
        np.minimum.at(label, la, m)
        np.minimum.at(label, lb, m)
        np.minimum.at(label, ia, m)
        np.minimum.at(label, ib, m)
        while True:  # pointer jumping
            nxt = label[label]
            if np.array_equal(nxt, label):
                break
            label = nxt
        if np.array_equal(label, before) and np.array_equal(label[ia], label[ib]):
            break
    return nodes, nodes[label]


# ----------------------------------------------------------------------------------------
# the stages


class _DedupStep:
    """Common base of the stages: a datatrove-style callable `(data, rank, world_size)`."""

    name = "dedup"

    def __init__(self, files: list[str], work: str, output: str, config: DedupConfig):
        self.files, self.work, self.output, self.config = files, Path(work), Path(output), config
        #: raise at the end of a task that met bad input (under Slurm: the task fails, so the
        #: stages that depend on it never start); locally the driver raises after the stage
        self.fail_on_error = False

    @classmethod
    def units(cls, files: list[str], config: DedupConfig) -> int:
        """How many independent pieces of work the stage has (its most useful tasks)."""
        return len(files)

    def _raise_if_failed(self, failed: list[str]) -> None:
        if failed and self.fail_on_error:
            raise DedupError("; ".join(failed))

    def __call__(self, data, rank: int = 0, world_size: int = 1):
        self.run(rank, world_size)
        return iter(())

    def run(self, rank: int, world_size: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _error(self, fi: int, message: str) -> None:
        _atomic_write(self.work / "errors" / f"{fi:06d}.txt", message.encode())


class SignatureStage(_DedupStep):
    """Stage 1: signatures, content hashes, names and bucket records of each input file."""

    name = "signatures"

    def run(self, rank: int, world_size: int) -> None:
        cfg = self.config
        hasher = MinHasher(cfg.num_perm, cfg.seed, cfg.ngram, cfg.hash) if cfg.near else None
        failed = []
        for fi in range(rank, len(self.files), world_size):
            done = self.work / "done" / f"signatures-{fi:06d}"
            if done.exists():
                continue
            try:
                if self.files[fi].endswith(".zst"):
                    check_zst(self.files[fi])
                self._one_file(fi, hasher)
            except DocumentFileError as exc:
                self._error(fi, str(exc))
                failed.append(str(exc))
                continue
            _atomic_write(done, b"")
        self._raise_if_failed(failed)

    def _one_file(self, fi: int, hasher: MinHasher | None) -> None:
        cfg = self.config
        errors: dict = {}
        sigs, exact, names, name_offsets = [], [], [], [0]
        keep_shingles = hasher is not None and cfg.verify == "exact"
        sh_values: list[np.ndarray] = []
        sh_counts: list[np.ndarray] = []
        records: list[list[np.ndarray]] = [[] for _ in range(cfg.bucket_shards)]
        n = 0
        batch: list[str] = []

        def flush():
            nonlocal n, batch
            if batch:
                if keep_shingles:
                    sig = shingle_signatures(hasher, batch, sh_values, sh_counts)
                else:
                    sig = hasher.signatures(batch) if hasher is not None else None
                eh = np.fromiter((_content_hash(t) for t in batch), np.uint64, len(batch)) if cfg.exact else None
                sigs.append(sig)
                exact.append(eh)
                self.add_records(records, fi, n, len(batch), sig, eh)
                n += len(batch)
                batch = []

        for doc in iter_documents(self.files[fi], text_key=cfg.text_key, errors=errors):
            batch.append(doc.text)
            url = doc.metadata.get("url") if isinstance(doc.metadata, dict) else None
            names.append(orjson.dumps([doc.id, url]))
            name_offsets.append(name_offsets[-1] + len(names[-1]))
            if len(batch) >= cfg.batch_size:
                flush()
        flush()
        if n >= 1 << 32:
            raise DocumentFileError(f"{self.files[fi]}: more than 2**32 documents in one file; split it")
        sig = np.concatenate(sigs) if hasher is not None and sigs else np.zeros((0, cfg.num_perm), np.uint32)
        eh = np.concatenate(exact) if cfg.exact and exact else np.zeros(0, np.uint64)
        if keep_shingles:
            counts = np.concatenate(sh_counts) if sh_counts else np.zeros(0, np.int64)
            offsets = np.zeros(n + 1, np.int64)
            np.cumsum(counts, out=offsets[1:])
            values = np.concatenate(sh_values) if sh_values else np.zeros(0, np.uint32)
            _atomic_save(self.work / "shingles" / f"{fi:06d}.npy", values)
            _atomic_save(self.work / "shingles" / f"{fi:06d}.idx.npy", offsets)
        self.save(fi, n, records, sig if hasher is not None else None, eh, b"".join(names), np.array(name_offsets, np.int64), errors)

    def add_records(self, records, fi: int, start: int, count: int, sig: np.ndarray | None, eh: np.ndarray | None) -> None:
        """Append `(bucket key, document key)` records of documents start..start+count to their shards."""
        cfg = self.config
        keys = (_U64(fi) << _KEY_SHIFT) | np.arange(start, start + count, dtype=np.uint64)
        cols = []
        if sig is not None:
            nonempty = (sig != np.uint32(0xFFFFFFFF)).any(axis=1)  # empty documents are never near-duplicates
            bk = band_keys(sig, cfg.bands, cfg.rows)
            cols.append((bk[nonempty], keys[nonempty]))
        if eh is not None:
            # the exact "band": its bucket key is the content hash, mixed so it never meets a minhash band
            cols.append(((eh ^ _U64(0xA5A5A5A5A5A5A5A5))[:, None], keys))
        for bk, k in cols:
            shard = (bk % _U64(cfg.bucket_shards)).astype(np.int64)
            flat_k = np.broadcast_to(k[:, None], bk.shape).ravel()
            flat_b, flat_s = bk.ravel(), shard.ravel()
            order = np.argsort(flat_s, kind="stable")
            bounds = np.searchsorted(flat_s[order], np.arange(cfg.bucket_shards + 1))
            for s in range(cfg.bucket_shards):
                sel = order[bounds[s] : bounds[s + 1]]
                if sel.size:
                    records[s].append(np.stack([flat_b[sel], flat_k[sel]], axis=1))

    def save(self, fi, n, records, sig, eh, names_blob: bytes, name_offsets, errors) -> None:
        """Write one input file's stage outputs (each atomically; the done marker comes after)."""
        cfg, work = self.config, self.work
        for s in range(cfg.bucket_shards):
            rec = np.concatenate(records[s]) if records[s] else np.zeros((0, 2), dtype=np.uint64)
            _atomic_save(work / "buckets" / f"{s:04d}" / f"{fi:06d}.npy", rec)
        if sig is not None:
            _atomic_save(work / "sigs" / f"{fi:06d}.npy", sig)
        _atomic_save(work / "exact" / f"{fi:06d}.npy", eh)
        _atomic_write(work / "names" / f"{fi:06d}.bin", names_blob)
        _atomic_save(work / "names" / f"{fi:06d}.npy", name_offsets)
        _atomic_write(work / "counts" / f"{fi:06d}.json", orjson.dumps({"documents": n, "skipped": errors}))


class BucketStage(_DedupStep):
    """Stage 2: candidate pairs from the buckets of each shard, verified, reduced to components."""

    name = "buckets"

    @classmethod
    def units(cls, files: list[str], config: DedupConfig) -> int:
        return config.bucket_shards

    def run(self, rank: int, world_size: int) -> None:
        for s in range(rank, self.config.bucket_shards, world_size):
            out = self.work / "edges" / f"{s:04d}.npy"
            if out.exists():
                continue
            nodes, roots, stats = self.shard_components(s)
            _atomic_save(out, np.stack([nodes, roots], axis=1))
            _atomic_write(self.work / "edges" / f"{s:04d}.json", orjson.dumps(stats))

    def shard_components(self, s: int):
        folder = self.work / "buckets" / f"{s:04d}"
        parts = [np.load(p) for p in sorted(folder.glob("*.npy"))]
        rec = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.uint64)
        del parts
        order = np.lexsort((rec[:, 1], rec[:, 0]))
        bkey, doc = rec[order, 0], rec[order, 1]
        del rec, order
        if bkey.size < 2:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint64), {"candidates": 0, "estimate": 0, "exact": 0, "verified": 0}
        same = bkey[1:] == bkey[:-1]
        # first document of the bucket each record belongs to
        start = np.concatenate([[True], ~same])
        first = doc[np.maximum.accumulate(np.where(start, np.arange(doc.size), 0))]
        chain_a, chain_b = doc[:-1][same], doc[1:][same]
        in_group = np.concatenate([[False], same])
        star_a, star_b = first[in_group], doc[in_group]
        a = np.concatenate([star_a, chain_a])
        b = np.concatenate([star_b, chain_b])
        del bkey, doc, same, start, first
        keep = a != b
        pairs = np.unique(np.stack([np.minimum(a, b)[keep], np.maximum(a, b)[keep]], axis=1), axis=0)
        if not self.config.near or not len(pairs):
            n = len(pairs)
            return *connected_components(pairs[:, 0], pairs[:, 1]), {"candidates": n, "estimate": n, "exact": n, "verified": n}
        est, owned = self._verify(pairs, s)
        mode, vt = self.config.verify, self.config.verify_threshold
        stats = {"candidates": int(owned.sum()), "estimate": int(((est >= vt) & owned).sum()), "exact": None}
        if mode == "exact":
            ok = est >= vt - EXACT_PREFILTER
            ok[ok] = self._exact_ok(pairs[ok])
            stats["exact"] = int((ok & owned).sum())
        else:
            ok = est >= vt if mode == "estimate" else np.ones(len(pairs), bool)
        stats["verified"] = int((ok & owned).sum())
        pairs = pairs[ok]
        nodes, roots = connected_components(pairs[:, 0], pairs[:, 1])
        return nodes, roots, stats

    #: pairs whose exact result a task remembers (25 bytes each); a pair at J ~0.9 shares most of
    #: the 15 bands, so it is a candidate in ~10 shards, and a task compares it once
    exact_cache_pairs = 20_000_000

    def _exact_ok(self, pairs: np.ndarray) -> np.ndarray:
        """Exact Jaccard >= verify_threshold per pair, each pair compared once per task.

        The cache is sorted by a 64-bit hash of the pair; a hit must also match both keys, so a
        hash collision only costs one more comparison.
        """
        cache = getattr(self, "_cache", None)
        if cache is None or cache[0].size > self.exact_cache_pairs:
            cache = tuple(np.zeros(0, t) for t in (np.uint64, np.uint64, np.uint64, bool))
        ch, ca, cb, cv = cache
        h = _fmix64(pairs[:, 0] ^ _fmix64(pairs[:, 1]))
        pos = np.minimum(np.searchsorted(ch, h), max(ch.size - 1, 0))
        hit = (ch[pos] == h) & (ca[pos] == pairs[:, 0]) & (cb[pos] == pairs[:, 1]) if ch.size else np.zeros(len(pairs), bool)
        ok = np.zeros(len(pairs), bool)
        ok[hit] = cv[pos[hit]]
        new = ~hit
        ok[new] = exact_jaccard(_ShingleStore(self.work / "shingles"), pairs[new, 0], pairs[new, 1]) >= self.config.verify_threshold
        parts = [(ch, h[new]), (ca, pairs[new, 0]), (cb, pairs[new, 1]), (cv, ok[new])]
        merged = [np.concatenate(p) for p in parts]
        order = np.argsort(merged[0], kind="stable")  # two sorted runs: a merge
        self._cache = tuple(m[order] for m in merged)
        return ok

    def _verify(self, pairs: np.ndarray, shard: int, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        """Per pair: the estimated Jaccard, and whether this shard counts the pair.

        A pair that shares k bands is a candidate in up to k shards; it is counted (in stats)
        only in the shard of the first band it shares, so `candidate_pairs` counts pairs.
        """
        cfg = self.config
        store = _RowStore(self.work / "sigs")
        est = np.zeros(len(pairs), dtype=np.float64)
        owned = np.ones(len(pairs), dtype=bool)
        for lo in range(0, len(pairs), chunk):
            p = pairs[lo : lo + chunk]
            sa, sb = store.gather(p[:, 0]), store.gather(p[:, 1])
            est[lo : lo + chunk] = (sa == sb).mean(axis=1)
            ka, kb = band_keys(sa, cfg.bands, cfg.rows), band_keys(sb, cfg.bands, cfg.rows)
            common = ka == kb
            first = np.argmax(common, axis=1)
            owner = (ka[np.arange(len(p)), first] % _U64(cfg.bucket_shards)).astype(np.int64)
            empty = (sa == np.uint32(0xFFFFFFFF)).all(axis=1)  # no minhash bands: met through --exact only
            owned[lo : lo + chunk] = ~common.any(axis=1) | empty | (owner == shard)
        return est, owned


class ClusterStage(_DedupStep):
    """Stage 3 (one task): global components, clusters around survivors, removal lists."""

    name = "clusters"
    #: rounds of center picking per component; members still unassigned after them are kept
    max_rounds = 64

    @classmethod
    def units(cls, files: list[str], config: DedupConfig) -> int:
        return 1

    def run(self, rank: int, world_size: int) -> None:
        if rank != 0 or (self.work / "clusters.json").exists():
            return
        cfg, work = self.config, self.work
        parts = [np.load(work / "edges" / f"{s:04d}.npy") for s in range(cfg.bucket_shards)]
        pairs = np.concatenate(parts) if parts else np.zeros((0, 2), np.uint64)
        del parts
        nodes, roots = connected_components(pairs[:, 0], pairs[:, 1])
        del pairs
        # components as runs of (root, node): nodes are sorted, so stable-sorting by root keeps them in input order
        order = np.argsort(roots, kind="stable")
        nodes, roots = nodes[order], roots[order]
        center = self._assign(nodes, roots)
        removed = center != nodes
        exact_removed = 0
        if cfg.exact and removed.any():
            ex = _RowStore(work / "exact")
            exact_removed = int((ex.gather(nodes[removed]) == ex.gather(center[removed])).sum())
        # removal lists per input file (sorted ordinals)
        rem = np.sort(nodes[removed])
        files, rows = _key_parts(rem)
        for fi in range(len(self.files)):
            lo, hi = np.searchsorted(files, [fi, fi + 1])
            _atomic_save(work / "remove" / f"{fi:06d}.npy", rows[lo:hi].astype(np.uint32))
        n_clusters = self._write_clusters(nodes, center, removed)
        stats = {
            "clusters": n_clusters,
            "duplicates_removed": int(removed.sum()),
            "exact_duplicates_removed": exact_removed,
            "near_duplicates_removed": int(removed.sum()) - exact_removed,
            "documents_with_candidates": int(nodes.size),
        }
        _atomic_write(work / "clusters.json", orjson.dumps(stats))

    def _assign(self, nodes: np.ndarray, roots: np.ndarray, chunk_nodes: int = 200_000) -> np.ndarray:
        """The cluster center (survivor) of every node; a node that is its own center is kept."""
        center = nodes.copy()
        if nodes.size == 0 or not self.config.near or self.config.verify == "none":
            center[:] = roots  # exact-only (identical texts), or unverified: the whole component is one cluster
            return center
        starts = np.flatnonzero(np.concatenate([[True], roots[1:] != roots[:-1]]))
        store = _RowStore(self.work / "sigs")
        lo = 0
        while lo < nodes.size:
            # whole components, about chunk_nodes members (one giant component is a chunk alone)
            j = int(np.searchsorted(starts, lo + chunk_nodes, side="right"))
            hi = int(starts[j]) if j < starts.size else nodes.size
            sig = store.gather(nodes[lo:hi]) if self.config.verify == "estimate" else None
            self._assign_chunk(nodes[lo:hi], roots[lo:hi], sig, center[lo:hi])
            lo = hi
        return center

    def _assign_chunk(self, nodes, roots, sig, center) -> None:
        vt = self.config.verify_threshold
        comp = np.searchsorted(np.unique(roots), roots)  # component index per node, runs in order
        pending = np.ones(nodes.size, dtype=bool)
        for _ in range(self.max_rounds):
            idx = np.flatnonzero(pending)
            if idx.size == 0:
                break
            c = comp[idx]
            first = np.concatenate([[True], c[1:] != c[:-1]])
            # the earliest pending member of each component becomes a center
            head = idx[first][np.cumsum(first) - 1]
            sims = self._similarity(nodes[idx], nodes[head]) if sig is None else (sig[idx] == sig[head]).mean(axis=1)
            joins = (sims >= vt) | (idx == head)
            center[idx[joins]] = nodes[head[joins]]
            pending[idx[joins]] = False
        # members left after the last round stay their own centers (kept)

    def _similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Jaccard of documents a[i] and b[i] as `verify` measures it (exact, or estimated)."""
        if self.config.verify == "exact":
            return exact_jaccard(_ShingleStore(self.work / "shingles"), a, b)
        store = _RowStore(self.work / "sigs")
        return (store.gather(a) == store.gather(b)).mean(axis=1)

    def _write_clusters(self, nodes, center, removed) -> int:
        out = self.output / "clusters" / "clusters-00000.jsonl.zst"
        cl_nodes, cl_center = nodes[removed], center[removed]
        if cl_nodes.size == 0:
            with DocumentWriter(out) as _:
                pass
            return 0
        order = np.lexsort((cl_nodes, cl_center))
        cl_nodes, cl_center = cl_nodes[order], cl_center[order]
        centers, starts = np.unique(cl_center, return_index=True)
        names = _NameStore(self.work / "names")
        sims = None
        bounds = [int(x) for x in starts] + [int(cl_nodes.size)]
        step = 50_000
        with DocumentWriter(out) as zw:  # atomic, and checksummed like every document file
            for lo_c in range(0, centers.size, step):
                hi_c = min(lo_c + step, centers.size)
                lo, hi = bounds[lo_c], bounds[hi_c]
                mem, cen = cl_nodes[lo:hi], cl_center[lo:hi]
                mem_names = names.gather(mem)
                cen_names = names.gather(centers[lo_c:hi_c])
                if self.config.near:
                    sims = self._similarity(mem, cen)
                for k in range(lo_c, hi_c):
                    a, b = bounds[k] - lo, bounds[k + 1] - lo
                    sid, surl = cen_names[k - lo_c]
                    members = []
                    for m in range(a, b):
                        mid, murl = mem_names[m]
                        rec = {"id": mid, "url": murl}
                        if sims is not None:
                            rec["similarity"] = round(float(sims[m]), 4)
                        members.append(rec)
                    zw.write_line(
                        orjson.dumps(
                            {"cluster": k, "size": b - a + 1, "survivor": {"id": sid, "url": surl}, "removed": members},
                            option=orjson.OPT_APPEND_NEWLINE,
                        )
                    )
        return int(centers.size)


class _NameStore:
    """`[id, url]` of documents by key, from the per-file blobs stage 1 wrote."""

    def __init__(self, folder: Path):
        self.folder = folder

    def gather(self, keys: np.ndarray) -> list:
        files, rows = _key_parts(keys)
        out: list = [None] * len(keys)
        for fi in np.unique(files):
            sel = np.flatnonzero(files == fi)
            offsets = np.load(self.folder / f"{fi:06d}.npy", mmap_mode="r")
            with open(self.folder / f"{fi:06d}.bin", "rb") as f:
                blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
                for i in sel:
                    r = rows[i]
                    out[i] = orjson.loads(blob[offsets[r] : offsets[r + 1]])
                if blob:
                    blob.close()
        return out


class FilterStage(_DedupStep):
    """Stage 4: each input file rewritten without its removed documents."""

    name = "filter"

    def run(self, rank: int, world_size: int) -> None:
        failed = []
        for fi in range(rank, len(self.files), world_size):
            stats_path = self.work / "kept" / f"{fi:06d}.json"
            if stats_path.exists():
                continue
            remove = np.load(self.work / "remove" / f"{fi:06d}.npy")
            out = self.output / "documents" / output_name(fi, self.files[fi])
            kept = i = 0
            try:
                with DocumentWriter(out) as w:
                    for i, doc in enumerate(iter_documents(self.files[fi], text_key=self.config.text_key, errors={})):
                        pos = np.searchsorted(remove, i)
                        if pos < remove.size and remove[pos] == i:
                            continue
                        w.write(doc.id, doc.text, doc.metadata)
                        kept += 1
            except DocumentFileError as exc:
                self._error(fi, str(exc))
                failed.append(str(exc))
                continue
            _atomic_write(stats_path, orjson.dumps({"kept": kept}))
        self._raise_if_failed(failed)


class StatsStage(_DedupStep):
    """Stage 5 under Slurm (one task after the filter): `OUT/stats.json`, as the driver writes locally.

    Its `seconds` run from submission (`started`), so they include time spent in the queue.
    """

    name = "stats"

    def __init__(self, files: list[str], work: str, output: str, config: DedupConfig, started: float | None = None):
        super().__init__(files, work, output, config)
        self.started = time.time() if started is None else started

    @classmethod
    def units(cls, files: list[str], config: DedupConfig) -> int:
        return 1

    def run(self, rank: int, world_size: int) -> None:
        if rank != 0:
            return
        stats = _collect_stats(self.files, self.work, self.config, time.time() - self.started)
        _atomic_write(self.output / "stats.json", orjson.dumps(stats, option=orjson.OPT_INDENT_2))


def output_name(fi: int, path: str) -> str:
    """`00003-name.jsonl.zst`: input position first, so names are unique and sort like the input."""
    name = Path(path).name
    for suffix in (".jsonl.zst", ".jsonl.gz", ".jsonl", ".txt", ".parquet"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"{fi:05d}-{name}.jsonl.zst"


# ----------------------------------------------------------------------------------------
# the driver


STAGES = (SignatureStage, BucketStage, ClusterStage, FilterStage)


def run_dedup(inputs: list[str], output_dir: str, config: DedupConfig, executor=None) -> dict:
    """Run the four stages on `inputs` (files, folders, globs) into `output_dir`; return the stats.

    Writes `OUT/documents/*.jsonl.zst` (the kept documents), `OUT/clusters/` (one line per
    cluster: id, size, survivor and removed members with ids, urls and similarity to the
    survivor) and `OUT/stats.json` (returned). Stage work lives in `OUT/.lmforge/dedup/`;
    a rerun skips what is done. Raises DedupError naming the file for unreadable input.
    """
    from lmforge.corpus.execution import ExecutorConfig, check_engine

    executor = executor or ExecutorConfig()
    try:
        check_engine(executor)
    except RuntimeError as exc:
        raise DedupError(str(exc)) from None
    t0 = time.perf_counter()
    # absolute before any executor sees them: a Ray worker resolves a relative path in the
    # folder where `ray start` ran
    inputs = [str(p) if "://" in str(p) else os.path.abspath(p) for p in inputs]
    output_dir = os.path.abspath(output_dir)
    try:
        files = [str(p) for p in find_document_files(inputs)]
    except FileNotFoundError as exc:
        raise DedupError(str(exc)) from None
    out = Path(output_dir)
    work = out / WORK
    work.mkdir(parents=True, exist_ok=True)
    settings = {"config": config.fingerprint(), "inputs": files}
    settings_path = work / "settings.json"
    if settings_path.exists():
        previous = orjson.loads(settings_path.read_bytes())
        if previous != orjson.loads(orjson.dumps(settings)):
            from lmforge.settings import changed_settings, flag, settings_refusal

            old_config = previous.get("config") if isinstance(previous, dict) else None
            changes = changed_settings({flag(k): v for k, v in (old_config or {}).items()},
                                       {flag(k): v for k, v in config.fingerprint().items()})
            old_files = previous.get("inputs") if isinstance(previous, dict) else None
            if old_files != files:
                changes.append(("inputs", f"{len(old_files or [])} files", f"{len(files)} files"
                                + ("" if len(old_files or []) != len(files) else ", other paths")))
            raise DedupError(settings_refusal(out, changes, f"rerun with the same settings and inputs to resume, or use "
                                                            f"another output folder (or delete {out})"))
    else:
        _atomic_write(settings_path, orjson.dumps(settings, option=orjson.OPT_INDENT_2))
    (work / "errors").mkdir(exist_ok=True)
    for p in (work / "errors").glob("*.txt"):  # errors of an earlier run are retried
        p.unlink()
    if executor.executor == "slurm":
        return submit_slurm(files, out, config, executor)
    run_stages(STAGES, files, out, config, executor)
    stats = _collect_stats(files, work, config, time.perf_counter() - t0)
    _atomic_write(out / "stats.json", orjson.dumps(stats, option=orjson.OPT_INDENT_2))
    return stats


def build_executors(stages, files: list[str], out: Path, config: DedupConfig, executor) -> list:
    """One datatrove executor per stage (`make_executor`), each with its own logging dir.

    Under Slurm every executor gets `depends=` the previous one: launching the last submits
    the whole chain at once (datatrove launches unlaunched dependencies first), each stage's
    job array with `--dependency=afterok:PREVIOUS`, so a stage starts only when every task of
    the one before succeeded; stages already complete are skipped and not depended on. Steps
    then raise on bad input (`fail_on_error`) so a failed file stops the chain.
    """
    from lmforge.corpus.execution import make_executor

    work = Path(out) / WORK
    chain: list = []
    for stage in stages:
        tasks = max(1, min(executor.tasks, stage.units(files, config)))
        step = stage(files, str(work), str(out), config)
        ex_cfg = dataclasses.replace(executor, tasks=tasks, workers=min(executor.workers, tasks))
        if executor.executor == "slurm":
            step.fail_on_error = True
            extra = dict(executor.extra)
            if chain:
                extra["depends"] = chain[-1]
            ex_cfg = dataclasses.replace(ex_cfg, extra=extra)
        chain.append(make_executor([step], ex_cfg, _logging_dir(out, stage)))
    return chain


def _logging_dir(out: Path, stage) -> Path:
    return Path(out) / ".lmforge" / f"dedup-{stage.name}"


def submit_slurm(files: list[str], out: Path, config: DedupConfig, executor) -> dict:
    """Submit the five stages as one chain of dependent Slurm job arrays; return their job ids.

    The driver does not wait: the last job (`StatsStage`) writes `OUT/stats.json`. A job id
    of -1 means the stage was already complete and was not submitted again.
    """
    chain = build_executors(STAGES + (StatsStage,), files, out, config, executor)
    chain[-1].run()  # launches its dependencies first, in order
    return {
        "submitted": True,
        "executor": "slurm",
        "jobs": {ex.pipeline[0].name: ex.job_id for ex in chain},
        "stats": str(Path(out) / "stats.json"),
    }


def run_stages(stages, files: list[str], out: Path, config: DedupConfig, executor) -> None:
    """Run `stages` one after the other on this machine (local or Ray executor), each to completion."""
    from lmforge.corpus.execution import release_ray_actors
    from lmforge.corpus.pipeline import failed_tasks_message, tasks_done, unfinished_tasks
    from lmforge.progress import ProgressBar

    try:
        with ProgressBar("corpus dedup", total=len(stages), info=True, elapsed=True, disable=not config.progress) as bar:
            for stage, ex in zip(stages, build_executors(stages, files, out, config, executor)):
                # the stage's tasks done, from their completion markers (its tasks run in other
                # processes, or on Ray's workers, which draw nothing here)
                logs, n = _logging_dir(out, stage), ex.world_size
                with bar.polling(lambda: {"info": f"stage {stage.name} · {tasks_done(logs)}/{n} tasks"}):  # noqa: B023
                    ex.run()
                _raise_input_errors(Path(out) / WORK, _logging_dir(out, stage), files, ex.world_size)
                # a Ray run returns when its tasks end, failed or not: the next stage must not
                # start on a partial one
                if unfinished_tasks(_logging_dir(out, stage), ex.world_size):
                    raise DedupError(f"{stage.name} stage: {failed_tasks_message(_logging_dir(out, stage), ex.world_size)}; "
                                     "run the same command again to resume (finished tasks are skipped)")
                bar.advance()
    finally:
        release_ray_actors()  # the Ray workers served every stage; their CPUs go back to the cluster


def _raise_input_errors(work: Path, logging_dir: Path, files: list[str], world_size: int) -> None:
    errors = sorted((work / "errors").glob("*.txt"))
    if not errors:
        return
    messages = []
    for p in errors:
        fi = int(p.stem)
        messages.append(p.read_text())
        # the task finished (so datatrove marked it complete) but this file is not done: rerun it next time
        (logging_dir / "completions" / f"{fi % world_size:05d}").unlink(missing_ok=True)
    raise DedupError("; ".join(messages))


def _collect_stats(files: list[str], work: Path, config: DedupConfig, seconds: float) -> dict:
    docs, skipped = 0, {}
    for fi in range(len(files)):
        c = orjson.loads((work / "counts" / f"{fi:06d}.json").read_bytes())
        docs += c["documents"]
        for k, v in c["skipped"].items():
            skipped[k] = skipped.get(k, 0) + v
    kept = sum(orjson.loads((work / "kept" / f"{fi:06d}.json").read_bytes())["kept"] for fi in range(len(files)))
    cl = orjson.loads((work / "clusters.json").read_bytes())
    cand = estimate = exact = verified = 0
    for s in range(config.bucket_shards):
        e = orjson.loads((work / "edges" / f"{s:04d}.json").read_bytes())
        cand += e["candidates"]
        estimate += e["estimate"]
        exact += e["exact"] or 0
        verified += e["verified"]
    return {
        "documents_in": docs,
        "skipped": skipped,
        "exact_duplicates_removed": cl["exact_duplicates_removed"],
        "clusters": cl["clusters"],
        "near_duplicates_removed": cl["near_duplicates_removed"],
        "kept": kept,
        "candidate_pairs": cand,
        "estimate_pairs": estimate,
        "exact_pairs": exact if config.verify == "exact" else None,
        "verified_pairs": verified,
        "seconds": round(seconds, 3),
        "docs_per_s": round(docs / seconds, 1) if seconds > 0 else None,
        "bands": config.bands,
        "rows": config.rows,
        "threshold": config.threshold,
        "verify": config.verify,
        "verify_threshold": config.verify_threshold,
        "files": len(files),
    }
