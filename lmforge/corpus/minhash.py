"""MinHash signatures computed in bulk, value for value equal to datasketch's, and LSH banding.

A document becomes a set of shingles, each shingle a 32-bit hash, and its signature is, for
every permutation `(a, b)`, the minimum of `a * fmix32(h) + b mod 2**32` over its shingles:
exactly what `datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash32)` (datasketch >= 2.0,
its default `affine32` scheme) computes after `update_batch(shingles(text, ngram))`.
`tests/test_minhash.py` checks that equality against datasketch on random and real texts.

Where the time goes and what this module does about it (C4 documents, 112 permutations,
one core; `benchmarks/minhash.py`):

- **Shingling**: text is lower-cased and cut into words with one compiled regex; a word is a
  run of letters/digits, and every character of a script written without spaces (Han, kana,
  Thai, Lao, Khmer, Myanmar) is a word by itself. Word n-grams therefore become character
  n-grams inside Japanese or Chinese text and stay word n-grams elsewhere, in the same
  document (the FineWeb default, word 5-grams, then means character 5-grams for Japanese,
  the unit the ClueWeb09 near-duplicate set is labelled in). The shingle is the n words
  joined by single spaces, UTF-8 encoded.
- **Hashing**: instead of one SHA-1 call per shingle, a polynomial hash over the bytes of a
  whole batch of documents is computed with three vectorised passes (prefix sums of
  `byte * B**-i`), and every shingle's hash is a difference of two prefixes; the 64-bit value
  is finalised with MurmurHash3's fmix64 and its high 32 bits are the shingle hash.
  `shingle_hash32(bytes)` is the same function one shingle at a time, for datasketch.
  (`hash="sha1"` gives datasketch's default hash instead, at datasketch's hashing speed.)
- **Permutations**: `a * fmix32(h) + b` in uint32 (the wrap-around multiply is the mod 2**32
  of datasketch's default `affine32` scheme; its pre-2.0 `legacy` scheme, mod the Mersenne
  prime 2**61 - 1, is not reproduced), minimum per document.

Two backends compute the same values: **numba** (default when installed) runs tokenising +
hashing as one compiled pass over the code points and the permutations as a loop whose 112
running minima stay in vector registers; **numpy** (the fallback) does the hashing with the
prefix-sum passes above and the permutations as blocks of ~512 shingles x all permutations
(~230 KB, in L2 cache) reduced with `np.minimum.reduceat`. Measured on C4 documents, 112
permutations, one core of a shared 2-core machine (busy .. quiet): numba 23,000-45,000
docs/s (permutations ~15% of it; `str.lower` and the UTF-32 encode are now about half),
numpy 7,500-14,000 docs/s (permutations ~55%), datasketch (sha1, `update_batch`)
1,400-2,300 docs/s: numba ~14-22x datasketch, numpy ~5-6x.

Polynomial hashing modulo 2**64 has known adversarial collisions (Thue-Morse strings); for
deduplication a collision only merges two shingles, like any 32-bit hash does.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import struct
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Iterable, Sequence

import numpy as np

#: scripts written without spaces between words: each character is a token by itself
_NO_SPACE_SCRIPTS = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
TOKEN_RE = re.compile(f"[{_NO_SPACE_SCRIPTS}]|[^\\W{_NO_SPACE_SCRIPTS}]+")

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1
#: polynomial base (odd, so invertible mod 2**64) and its inverse
_BASE = 0x100000001B3 * 0x9E3779B97F4A7C15 & _M64 | 1
_BASE_INV = pow(_BASE, -1, 1 << 64)
_LEN_MIX = 0xC2B2AE3D27D4EB4F
_SPACE = 32


def tokens(text: str) -> list[str]:
    """Lower-cased words; each CJK/Thai character is a word of its own.

    `tokens("Hello, World! 東京都")` -> `['hello', 'world', '東', '京', '都']`
    """
    return TOKEN_RE.findall(text.lower())


def normalize(text: str) -> str:
    """The text as this module sees it: its tokens joined by single spaces."""
    return " ".join(tokens(text))


def shingles(text: str, ngram: int = 5) -> list[bytes]:
    """The reference shingling, one document at a time (what datasketch is fed in tests).

    Shingles are `ngram` consecutive tokens joined by spaces; a document with fewer tokens
    than `ngram` (but at least one) is one shingle of all its tokens; an empty one has none.
    `shingles("a b c d", 3)` -> `[b'a b c', b'b c d']`
    """
    toks = tokens(text)
    if not toks:
        return []
    if len(toks) < ngram:
        return [" ".join(toks).encode()]
    return [" ".join(toks[i : i + ngram]).encode() for i in range(len(toks) - ngram + 1)]


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = h * 0xFF51AFD7ED558CCD & _M64
    h ^= h >> 33
    h = h * 0xC4CEB9FE1A85EC53 & _M64
    return h ^ (h >> 33)


def shingle_hash32(data: bytes) -> int:
    """lmforge's 32-bit shingle hash, one shingle at a time: pass it to datasketch as `hashfunc`.

    `fmix64(poly(cps) + len(cps) * C) >> 32`, where `cps` are the Unicode code points of the
    UTF-8 shingle and `poly` is `sum(cp_i * B**(n-1-i)) mod 2**64`; equal, shingle for
    shingle, to what `shingle_hashes` computes in bulk.
    """
    h = 0
    text = data.decode("utf-8", "surrogatepass")
    for ch in text:
        h = (h * _BASE + ord(ch)) & _M64
    return _fmix64_int((h + len(text) * _LEN_MIX) & _M64) >> 32


def sha1_hash32(data: bytes) -> int:
    """datasketch's default hash (first 4 bytes of SHA-1, little-endian)."""
    return struct.unpack("<I", hashlib.sha1(data).digest()[:4])[0]


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters `(a, b)` for `seed` (uint32, `a` odd)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


class _Tables:
    """Lazily built, process-wide: code point classes and powers of B mod 2**64.

    The classes are built per block of 4,096 code points, the first time a text holds one of
    the block: an English book needs 1-2 blocks (~3 ms each); all 272 blocks at once took
    ~1.9 s of Python `isalnum` calls, which `corpus ingest books` on two books paid in full.
    """

    BLOCK_BITS = 12

    def __init__(self):
        self._classes = np.zeros(0x110000, dtype=np.uint8)
        self._built = np.zeros(0x110000 >> self.BLOCK_BITS, dtype=bool)
        self.pow = np.ones(1, dtype=np.uint64)
        self.inv = np.ones(1, dtype=np.uint64)

    def classes_for(self, cp: np.ndarray) -> np.ndarray:
        """uint8 per code point: 0 separator, 1 word character (regex `\\w`), 2 no-space script;
        the table is complete for every code point in `cp`."""
        blocks = cp >> self.BLOCK_BITS
        missing = blocks[~self._built[blocks]]  # one gather per code point: no sort on the hot path once built
        for block in np.unique(missing).tolist():
            self._build(block)
        return self._classes

    @property
    def classes(self) -> np.ndarray:
        """The whole table (every block built)."""
        return self.classes_for(np.arange(0, 0x110000, 1 << self.BLOCK_BITS, dtype=np.uint32))

    def _build(self, block: int) -> None:
        lo, hi = block << self.BLOCK_BITS, (block + 1) << self.BLOCK_BITS
        points = np.arange(lo, hi, dtype=np.uint32)
        points[(points >= 0xD800) & (points < 0xE000)] = 32  # surrogates: not characters
        chars = points.tobytes().decode("utf-32-le")
        table = self._classes[lo:hi]
        table[[i for i, c in enumerate(chars) if c.isalnum()]] = 1
        if lo <= ord("_") < hi:
            table[ord("_") - lo] = 1
        for a, b in re.findall(r"(.)-(.)", _NO_SPACE_SCRIPTS):
            a, b = max(ord(a), lo), min(ord(b), hi - 1)
            if a <= b:
                table[a - lo : b - lo + 1] = 2
        self._built[block] = True

    def ensure(self, n: int) -> None:
        """Make `pow[i] = B**i` and `inv[i] = B**-i` available for i < n."""
        if len(self.pow) >= n:
            return
        n = max(n, 2 * len(self.pow))
        with np.errstate(over="ignore"):
            self.pow = np.concatenate([[np.uint64(1)], np.cumprod(np.full(n - 1, _BASE, dtype=np.uint64), dtype=np.uint64)])
            self.inv = np.concatenate([[np.uint64(1)], np.cumprod(np.full(n - 1, _BASE_INV, dtype=np.uint64), dtype=np.uint64)])


_TABLES = _Tables()


def shingle_hashes(texts: Sequence[str], ngram: int = 5, hash: str = "poly", backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All shingle hashes of a batch of documents: `(hashes uint32, counts per document)`.

    The hashes of document i are `hashes[offsets[i]:offsets[i+1]]` with `offsets` the
    cumulative `counts`; they equal `[shingle_hash32(s) for s in shingles(texts[i], ngram)]`.
    Tokenisation runs on the code points of the whole batch at once (`classes` table lookup,
    run boundaries) and gives the same tokens as `TOKEN_RE`; a token's hash is a difference of
    two prefix hashes and a shingle's hash combines its tokens' (`H(x + " " + y) =
    (H(x) * B + 32) * B**len(y) + H(y)`). With numba (`backend`, default: numba when
    installed) one compiled pass over the code points does the same (`_shingle_kernel`).
    """
    n_docs = len(texts)
    if hash == "sha1":
        counts = np.zeros(n_docs, dtype=np.int64)
        out: list[int] = []
        for i, t in enumerate(texts):
            sh = shingles(t, ngram)
            counts[i] = len(sh)
            out.extend(sha1_hash32(s) for s in sh)
        return np.array(out, dtype=np.uint32), counts
    if hash != "poly":
        raise ValueError(f"hash must be 'poly' or 'sha1', not {hash!r}")
    if resolve_backend(backend) == "numba":
        return _shingle_hashes_numba(texts, ngram)
    lowered = [t.lower() for t in texts]
    lengths = np.fromiter(map(len, lowered), dtype=np.int64, count=n_docs)
    # documents joined by one separator character, so no token spans two documents
    cp = np.frombuffer("\0".join(lowered).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    empty = (np.zeros(0, dtype=np.uint32), np.zeros(n_docs, dtype=np.int64))
    if cp.size == 0:
        return empty
    cls = _TABLES.classes_for(cp)[cp]
    word = cls == 1
    prev_word = np.concatenate([[False], word[:-1]])
    next_word = np.concatenate([word[1:], [False]])
    single = cls == 2
    t_start = np.flatnonzero(single | (word & ~prev_word))
    t_end = np.flatnonzero(single | (word & ~next_word)) + 1
    if t_start.size == 0:
        return empty
    doc_start = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    t_doc = np.searchsorted(doc_start, t_start, side="right") - 1
    ntok = np.bincount(t_doc, minlength=n_docs)
    first_tok = np.concatenate([[0], np.cumsum(ntok)[:-1]])
    counts = np.where(ntok >= ngram, ntok - ngram + 1, np.minimum(ntok, 1)).astype(np.int64)
    total = int(counts.sum())
    _TABLES.ensure(cp.size + 1)
    pw = _TABLES.pow
    with np.errstate(over="ignore"):
        # prefix hashes: P[i] = sum_{j<i} c_j B**(i-1-j) = B**(i-1) * sum_{j<i} c_j B**-j
        acc = np.cumsum(cp.astype(np.uint64) * _TABLES.inv[: cp.size], dtype=np.uint64)
        prefix = np.zeros(cp.size + 1, dtype=np.uint64)
        np.multiply(acc, pw[: cp.size], out=prefix[1:])
        t_len = t_end - t_start
        t_hash = prefix[t_end] - prefix[t_start] * pw[t_len]
        # shingle i of a document covers tokens fw .. min(fw + ngram - 1, last token)
        sh_doc = np.repeat(np.arange(n_docs), counts)
        sh_off = np.concatenate([[0], np.cumsum(counts)[:-1]])
        fw = first_tok[sh_doc] + (np.arange(total) - sh_off[sh_doc])
        last = first_tok[sh_doc] + ntok[sh_doc] - 1
        h = t_hash[fw]
        length = t_len[fw].copy()
        space = np.uint64(_SPACE)
        base = np.uint64(_BASE)
        for k in range(1, ngram):
            idx = fw + k
            valid = idx <= last
            idx = np.where(valid, idx, fw)
            tl = t_len[idx]
            joined = (h * base + space) * pw[tl] + t_hash[idx]
            h = np.where(valid, joined, h)
            length += np.where(valid, tl + 1, 0)
        h += length.astype(np.uint64) * np.uint64(_LEN_MIX)
        h = _fmix64(h)
    return (h >> np.uint64(32)).astype(np.uint32), counts


def minhash_from_hashes(
    hashes: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray, block: int = 512, backend: str | None = None
) -> np.ndarray:
    """Signatures `(n_docs, num_perm)` uint32 from shingle hashes grouped by `counts`.

    A document without shingles gets datasketch's empty value, 2**32 - 1 everywhere.
    """
    n_docs = len(counts)
    num_perm = len(a)
    sig = np.full((n_docs, num_perm), _M32, dtype=np.uint32)
    if hashes.size == 0:
        return sig
    if resolve_backend(backend) == "numba":
        _kernels().minhash(
            np.ascontiguousarray(hashes, dtype=np.uint32),
            np.ascontiguousarray(counts, dtype=np.int64),
            np.ascontiguousarray(a, dtype=np.uint32),
            np.ascontiguousarray(b, dtype=np.uint32),
            sig,
        )
        return sig
    hv = _fmix32(hashes.astype(np.uint32))
    has = counts > 0
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    docs = np.flatnonzero(has)
    # process shingles in blocks aligned to document boundaries
    ends = offsets[docs] + counts[docs]
    start_doc = 0
    a_row, b_row = a[None, :], b[None, :]
    while start_doc < len(docs):
        lo = offsets[docs[start_doc]]
        stop = int(np.searchsorted(ends, lo + block, side="right"))
        stop = max(stop, start_doc + 1)
        hi = ends[stop - 1]
        chunk = hv[lo:hi, None] * a_row
        chunk += b_row
        sig[docs[start_doc:stop]] = np.minimum.reduceat(chunk, offsets[docs[start_doc:stop]] - lo, axis=0)
        start_doc = stop
    return sig


# ----------------------------------------------------------------------------------------
# numba backend: the same arithmetic as the numpy code above, as two compiled loops


BACKENDS = ("numba", "numpy")


@functools.lru_cache(maxsize=None)
def _numba_available() -> bool:
    """numba imports (it can be installed and still refuse a NumPy newer than it supports)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str | None = None) -> str:
    """`"numba"` or `"numpy"`; None means `$LMFORGE_MINHASH_BACKEND`, else numba when installed.

    Both give identical values; numba is ~3x faster end to end (`benchmarks/minhash.py`).
    """
    backend = backend or os.environ.get("LMFORGE_MINHASH_BACKEND") or ("numba" if _numba_available() else "numpy")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "numba" and not _numba_available():
        raise ValueError("the numba backend needs numba: pip install numba (or use backend='numpy')")
    return backend


_BASE_U64 = np.uint64(_BASE)
_LEN_MIX_U64 = np.uint64(_LEN_MIX)
_SPACE_U64 = np.uint64(_SPACE)


def _shingle_kernel(cp, doc_ends, classes, ngram, out, counts):  # pragma: no cover - compiled by numba
    """Tokens, their polynomial hashes and the shingle hashes in one pass over code points.

    `cp`: the batch's code points, documents separated by one `\0`, document d ending at
    `doc_ends[d]`. Writes shingle hashes to `out` and per-document counts; returns how many.
    The last `ngram` tokens sit in a ring (token t at slot t % ngram) with their hash, their
    B**len and their length, so a shingle's hash is combined from them as in `shingle_hashes`.
    """
    tok_h = np.zeros(ngram, dtype=np.uint64)
    tok_p = np.zeros(ngram, dtype=np.uint64)
    tok_l = np.zeros(ngram, dtype=np.int64)
    total = 0
    start = 0
    for d in range(doc_ends.shape[0]):
        end = doc_ends[d]
        ntok = 0
        i = start
        while True:
            while i < end and classes[cp[i]] == 0:
                i += 1
            got = i < end
            if got:
                if classes[cp[i]] == 2:  # a no-space script character is a token by itself
                    h = np.uint64(cp[i])
                    pw = _BASE_U64
                    ln = 1
                    i += 1
                else:
                    h = np.uint64(0)
                    pw = np.uint64(1)
                    ln = 0
                    while i < end and classes[cp[i]] == 1:
                        h = h * _BASE_U64 + np.uint64(cp[i])
                        pw = pw * _BASE_U64
                        ln += 1
                        i += 1
                slot = ntok % ngram
                tok_h[slot] = h
                tok_p[slot] = pw
                tok_l[slot] = ln
                ntok += 1
            # a full window after a new token, or at the end the short document's one shingle
            if got and ntok >= ngram:
                first, m = ntok - ngram, ngram
            elif not got and 0 < ntok < ngram:
                first, m = 0, ntok
            elif got:
                continue
            else:
                break
            s = first % ngram
            hs = tok_h[s]
            length = tok_l[s]
            for j in range(1, m):
                t = (first + j) % ngram
                hs = (hs * _BASE_U64 + _SPACE_U64) * tok_p[t] + tok_h[t]
                length += tok_l[t] + 1
            hs = hs + np.uint64(length) * _LEN_MIX_U64
            hs ^= hs >> np.uint64(33)  # fmix64
            hs = hs * np.uint64(0xFF51AFD7ED558CCD)
            hs ^= hs >> np.uint64(33)
            hs = hs * np.uint64(0xC4CEB9FE1A85EC53)
            hs ^= hs >> np.uint64(33)
            out[total] = np.uint32(hs >> np.uint64(32))
            total += 1
            if not got:
                break
        counts[d] = ntok - ngram + 1 if ntok >= ngram else min(ntok, 1)
        start = end + 1
    return total


def _minhash_kernel(hashes, counts, a, b, sig):  # pragma: no cover - compiled by numba
    """`sig[d, p] = min(a[p] * fmix32(h) + b[p] mod 2**32)` over document d's shingle hashes.

    The permutation loop is innermost: its 112 running minima stay in vector registers and
    LLVM vectorises multiply, add and min (~0.1 ns per shingle x permutation, ~10x the
    numpy block formulation, which writes and re-reads the whole product).
    """
    num_perm = a.shape[0]
    acc = np.empty(num_perm, dtype=np.uint32)
    pos = 0
    for d in range(counts.shape[0]):
        n = counts[d]
        if n == 0:
            continue
        for p in range(num_perm):
            acc[p] = np.uint32(0xFFFFFFFF)
        for i in range(pos, pos + n):
            h = hashes[i]
            h ^= h >> np.uint32(16)  # fmix32, datasketch's affine32 pre-mix
            h = np.uint32(h * np.uint32(0x85EBCA6B))
            h ^= h >> np.uint32(13)
            h = np.uint32(h * np.uint32(0xC2B2AE35))
            h ^= h >> np.uint32(16)
            for p in range(num_perm):
                v = np.uint32(a[p] * h + b[p])
                if v < acc[p]:
                    acc[p] = v
        for p in range(num_perm):
            sig[d, p] = acc[p]
        pos += n


@functools.lru_cache(maxsize=None)
def _kernels() -> SimpleNamespace:
    """The kernels compiled on first use (~2 s, then cached on disk by numba: ~0.5 s a process)."""
    import numba

    jit = numba.njit(cache=True, nogil=True, boundscheck=False)
    return SimpleNamespace(shingles=jit(_shingle_kernel), minhash=jit(_minhash_kernel))


def _shingle_hashes_numba(texts: Sequence[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    n_docs = len(texts)
    lowered = [t.lower() for t in texts]
    lengths = np.fromiter(map(len, lowered), dtype=np.int64, count=n_docs)
    cp = np.frombuffer("\0".join(lowered).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    doc_ends = np.cumsum(lengths + 1) - 1
    out = np.empty(cp.size, dtype=np.uint32)  # a shingle per token at most
    counts = np.zeros(n_docs, dtype=np.int64)
    total = _kernels().shingles(cp, doc_ends, _TABLES.classes_for(cp), ngram, out, counts)
    return out[:total], counts


class MinHasher:
    """Bulk MinHash: `MinHasher(num_perm, seed, ngram).signatures(texts) -> (n, num_perm) uint32`.

    Row i equals `datasketch.MinHash(num_perm, seed=seed, hashfunc=shingle_hash32)` after
    `update_batch(shingles(texts[i], ngram))` (with `hash="sha1"`: datasketch's default
    hashfunc).
    """

    def __init__(self, num_perm: int = 112, seed: int = 1, ngram: int = 5, hash: str = "poly", backend: str | None = None):
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1 (got {num_perm})")
        if ngram < 1:
            raise ValueError(f"ngram must be >= 1 (got {ngram})")
        self.num_perm, self.seed, self.ngram, self.hash = num_perm, seed, ngram, hash
        self.backend = resolve_backend(backend)
        self.a, self.b = permutations(num_perm, seed)

    #: documents hashed together: the numpy backend's arrays (~40 bytes x characters) stay in cache
    sub_batch = 128

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.num_perm), dtype=np.uint32)
        for lo in range(0, len(texts), self.sub_batch):
            batch = texts[lo : lo + self.sub_batch]
            hashes, counts = shingle_hashes(batch, self.ngram, self.hash, self.backend)
            out[lo : lo + self.sub_batch] = minhash_from_hashes(hashes, counts, self.a, self.b, backend=self.backend)
        return out

    def hashfunc(self):
        """The per-shingle hash to give datasketch for identical signatures."""
        return shingle_hash32 if self.hash == "poly" else sha1_hash32


# ----------------------------------------------------------------------------------------
# LSH banding


def candidate_probability(s: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """Probability that a pair of Jaccard similarity `s` shares at least one band: 1-(1-s^r)^b."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


@dataclass(frozen=True)
class LSHParams:
    bands: int
    rows: int

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    def probability(self, s):
        return candidate_probability(s, self.bands, self.rows)

    def threshold(self) -> float:
        """The similarity where the S-curve is steepest, about (1/b)^(1/r)."""
        return (1.0 / self.bands) ** (1.0 / self.rows)


def _integral(f, a: float, b: float, n: int = 1001) -> float:
    x = np.linspace(a, b, n)
    return float(np.trapezoid(f(x), x)) if hasattr(np, "trapezoid") else float(np.trapz(f(x), x))


def optimal_lsh_params(threshold: float, num_perm: int, min_recall: float = 0.97) -> LSHParams:
    """Bands and rows (b * r <= num_perm) for a Jaccard `threshold`.

    Among the (b, r) that make a pair *at* the threshold a candidate with probability at least
    `min_recall`, the one with the smallest false-positive area `integral_0^t P(s) ds` (ties:
    fewer permutations). Recall is favoured over the usual balanced choice (datasketch's
    `_optimal_param` gives 11 x 10 for 0.8 / 112, which finds only 71% of pairs at 0.8) because
    every candidate pair is then verified on its estimated Jaccard, so a false positive costs
    one signature comparison. For threshold 0.8 and 112 permutations: 15 bands x 7 rows (105
    permutations banded, all 112 used to verify), a pair at 0.8 is a candidate with probability
    0.971, at 0.9 0.99994, at 0.5 0.11, at 0.2 0.0002.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (got {threshold})")
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1 (got {num_perm})")
    best, best_key = None, None
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p_at = float(candidate_probability(threshold, b, r))
            fp = _integral(lambda s: candidate_probability(s, b, r), 0.0, threshold)
            # feasible first, then smallest false-positive area, then fewest permutations
            key = (0, fp, b * r) if p_at >= min_recall else (1, -p_at, b * r)
            if best_key is None or key < best_key:
                best, best_key = LSHParams(b, r), key
    return best


def explain_lsh(params: LSHParams, threshold: float, points: Iterable[float] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)) -> list[tuple[float, float]]:
    """`(similarity, probability of becoming a candidate)` rows of the S-curve."""
    return [(float(s), float(params.probability(s))) for s in points]


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """64-bit bucket keys `(n_docs, bands)`: a hash of the band index and its `rows` values.

    Two documents share bucket `k` of band `j` iff their `rows` values in band `j` are equal
    (up to a 64-bit hash collision, about 1 in 10**19 per pair).
    """
    n = sig.shape[0]
    out = np.empty((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(bands):
            block = sig[:, j * rows : (j + 1) * rows].astype(np.uint64)
            h = np.full(n, np.uint64(j + 1) * np.uint64(0x9E3779B97F4A7C15), dtype=np.uint64)
            for k in range(rows):
                h = _fmix64(h ^ block[:, k]) + np.uint64(k + 1)
            out[:, j] = h
    return out


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal signature values (row by row): an unbiased Jaccard estimate."""
    return (sig_a == sig_b).mean(axis=-1)
