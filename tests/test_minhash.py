"""Bulk MinHash against datasketch (the reference), the tokenizer against its regex, LSH arithmetic."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest
from conftest import shared_path
from datasketch import MinHash

from lmforge.corpus import minhash
from lmforge.corpus.minhash import (
    TOKEN_RE,
    LSHParams,
    MinHasher,
    band_keys,
    candidate_probability,
    minhash_from_hashes,
    optimal_lsh_params,
    permutations,
    resolve_backend,
    sha1_hash32,
    shingle_hash32,
    shingle_hashes,
    shingles,
    tokens,
)

#: both implementations are compared with datasketch; numba's only where it is installed
BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not minhash._numba_available(), reason="numba not installed"))]

ALPHABET = "abcdefgh  XYZ,.!\n\t0123é東京都のテストです。ไทยภาษา한국어_-'\u3000"


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "one", "two words", "東京", "a b c d e", "a b c d e f"]
    while len(texts) < n:
        texts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 300))))
    return texts


def reference(text: str, num_perm: int, seed: int, ngram: int, hashfunc) -> np.ndarray:
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=hashfunc)
    m.update_batch(shingles(text, ngram))
    return m.hashvalues


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_perm,seed,ngram", [(112, 1, 5), (128, 42, 3), (7, 3, 1), (16, 5, 2)])
def test_signatures_equal_datasketch_on_random_texts(num_perm, seed, ngram, backend):
    texts = random_texts(120)
    sig = MinHasher(num_perm, seed, ngram, backend=backend).signatures(texts)
    for text, row in zip(texts, sig):
        assert np.array_equal(row, reference(text, num_perm, seed, ngram, shingle_hash32)), text


@pytest.mark.parametrize("backend", BACKENDS)
def test_signatures_equal_datasketch_with_its_default_sha1(backend):
    texts = random_texts(40, seed=1)
    sig = MinHasher(64, 1, 5, hash="sha1", backend=backend).signatures(texts)
    for text, row in zip(texts, sig):
        m = MinHash(num_perm=64, seed=1)  # datasketch's default hashfunc
        m.update_batch(shingles(text, 5))
        assert np.array_equal(row, m.hashvalues)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signatures_equal_datasketch_on_real_text(backend):
    path = shared_path("text", "c4-300-docs.jsonl")
    texts = [orjson.loads(line)["text"] for line in path.read_bytes().splitlines()][:100]
    sig = MinHasher(112, 1, 5, backend=backend).signatures(texts)
    for text, row in zip(texts, sig):
        assert np.array_equal(row, reference(text, 112, 1, 5, shingle_hash32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ngram", [1, 4])
def test_bulk_hashes_equal_one_at_a_time(backend, ngram):
    # long runs, a token longer than any table of powers, separators only, mixed scripts
    texts = random_texts(80, seed=2) + ["x" * 5000, "é" * 700 + " 東京 a", "\u3000\t\n", "一 two 三 four five"]
    hashes, counts = shingle_hashes(texts, ngram, backend=backend)
    expected = [shingle_hash32(s) for t in texts for s in shingles(t, ngram)]
    assert hashes.tolist() == expected
    assert counts.tolist() == [len(shingles(t, ngram)) for t in texts]


def test_backends_agree_on_real_text_in_uneven_batches():
    if not minhash._numba_available():
        pytest.skip("numba not installed")
    path = shared_path("text", "c4-300-docs.jsonl")
    texts = [orjson.loads(line)["text"] for line in path.read_bytes().splitlines()]
    fast, slow = MinHasher(112, backend="numba"), MinHasher(112, backend="numpy")
    fast.sub_batch = 37
    assert np.array_equal(fast.signatures(texts), slow.signatures(texts))


def test_numpy_fallback_where_numba_cannot_be_imported():
    import os
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numba'] = None  # import numba raises ImportError\n"
        "from lmforge.corpus.minhash import MinHasher, shingle_hash32, shingles\n"
        "from datasketch import MinHash\n"
        "h = MinHasher(16)\n"
        "assert h.backend == 'numpy', h.backend\n"
        "m = MinHash(num_perm=16, seed=1, hashfunc=shingle_hash32)\n"
        "m.update_batch(shingles('one two three four five six seven', 5))\n"
        "assert (h.signatures(['One two three four five six seven'])[0] == m.hashvalues).all()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LMFORGE_MINHASH_BACKEND"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("LMFORGE_MINHASH_BACKEND", raising=False)
    assert resolve_backend("numpy") == "numpy"
    monkeypatch.setenv("LMFORGE_MINHASH_BACKEND", "numpy")
    assert MinHasher(8).backend == "numpy"
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("cuda")
    monkeypatch.setattr(minhash, "_numba_available", lambda: False)
    monkeypatch.delenv("LMFORGE_MINHASH_BACKEND")
    assert resolve_backend() == "numpy"  # the fallback where numba is not importable
    with pytest.raises(ValueError, match="pip install numba"):
        resolve_backend("numba")



@pytest.mark.parametrize("backend", BACKENDS)
def test_tokens_match_regex_and_split_cjk_into_characters(backend):
    assert tokens("Hello, World! 東京都") == ["hello", "world", "東", "京", "都"]
    assert tokens("ภาษาไทย") == list("ภาษาไทย")
    assert tokens("한국어 텍스트") == ["한국어", "텍스트"]  # Korean is written with spaces
    assert shingles("a b c d", 3) == [b"a b c", b"b c d"]
    assert shingles("a b", 5) == [b"a b"]
    assert shingles("  ,. ", 5) == []
    # the bulk tokenizer (code point table) agrees with the regex on every text
    for text in random_texts(60, seed=3):
        norm_tokens = TOKEN_RE.findall(text.lower())
        hashes, counts = shingle_hashes([text], 1, backend=backend)
        assert hashes.tolist() == [shingle_hash32(t.encode()) for t in norm_tokens]


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_document_signature_is_datasketchs_empty_value(backend):
    sig = MinHasher(16, backend=backend).signatures(["", "..."])
    assert np.array_equal(sig[0], MinHash(num_perm=16).hashvalues)
    assert (sig == np.uint32(0xFFFFFFFF)).all()


def test_permutations_are_datasketchs():
    a, b = permutations(50, 7)
    ref = MinHash(num_perm=50, seed=7).permutations
    assert np.array_equal(a, ref[0]) and np.array_equal(b, ref[1])


def test_sha1_hash_is_datasketchs():
    from datasketch.hashfunc import sha1_hash32 as ds_sha1

    assert sha1_hash32(b"shingle") == ds_sha1(b"shingle")


def _pair_with_jaccard(rng: np.random.Generator, s: float, size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Two sets of 32-bit elements with Jaccard exactly s (|A|=|B|, shared k: k / (2n - k) = s)."""
    shared = int(round(2 * size * s / (1 + s)))
    pool = rng.choice(2**32 - 1, size=2 * size, replace=False).astype(np.uint32)
    a = pool[:size]
    b = np.concatenate([a[:shared], pool[size : 2 * size - shared]])
    return a, b


@pytest.mark.parametrize("s", [0.3, 0.5, 0.7, 0.8, 0.9])
def test_candidate_probability_matches_formula(s):
    """The fraction of pairs at similarity s sharing a band is 1 - (1 - s^r)^b."""
    bands, rows, n_pairs = 16, 7, 600
    rng = np.random.default_rng(int(s * 100))
    a_perm, b_perm = permutations(bands * rows, 5)
    hashes, counts = [], []
    for _ in range(n_pairs):
        x, y = _pair_with_jaccard(rng, s)
        hashes += [x, y]
        counts += [len(x), len(y)]
    sig = minhash_from_hashes(np.concatenate(hashes), np.array(counts), a_perm, b_perm)
    keys = band_keys(sig, bands, rows)
    hit = (keys[0::2] == keys[1::2]).any(axis=1)
    p = float(candidate_probability(s, bands, rows))
    tolerance = 4 * np.sqrt(p * (1 - p) / n_pairs) + 0.01
    assert abs(hit.mean() - p) <= tolerance
    # and the signature estimate of Jaccard is unbiased
    est = (sig[0::2] == sig[1::2]).mean()
    assert abs(est - s) < 0.02


def test_candidate_probability_formula_values():
    assert candidate_probability(1.0, 14, 8) == 1.0
    assert candidate_probability(0.0, 14, 8) == 0.0
    assert candidate_probability(0.8, 14, 8) == pytest.approx(1 - (1 - 0.8**8) ** 14)
    assert LSHParams(14, 8).threshold() == pytest.approx((1 / 14) ** (1 / 8))


@pytest.mark.parametrize("threshold,num_perm", [(0.8, 112), (0.7, 128), (0.9, 64), (0.5, 256)])
def test_optimal_params_reach_recall_within_permutations(threshold, num_perm):
    p = optimal_lsh_params(threshold, num_perm)
    assert p.bands * p.rows <= num_perm
    assert p.probability(threshold) >= 0.97
    assert p.probability(threshold / 3) < 0.05


def test_optimal_params_reject_bad_threshold():
    with pytest.raises(ValueError, match="between 0 and 1"):
        optimal_lsh_params(1.5, 112)


def test_band_keys_equal_iff_band_values_equal():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, size=(4, 12), dtype=np.uint32)
    sig[1, :4] = sig[0, :4]  # share band 0 only
    keys = band_keys(sig, 3, 4)
    assert keys[0, 0] == keys[1, 0]
    assert (keys[0, 1:] != keys[1, 1:]).all()
    # the same values in different bands give different keys
    sig[2] = np.tile(sig[2, :4], 3)
    k2 = band_keys(sig, 3, 4)[2]
    assert len(set(k2.tolist())) == 3


def test_code_point_classes_built_per_block_as_a_whole_table_would_be():
    """The classes table is built per block of 4,096 code points on first use; each block
    holds what a scan of every code point gives (regex \\w -> 1, no-space scripts -> 2)."""
    import re

    tables = minhash._Tables()
    text = "Grüße, naïve café 東京タワー ภาษาไทย x_y 123 😀"
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    classes = tables.classes_for(cp)
    assert tables._built.sum() == len(set((cp >> tables.BLOCK_BITS).tolist()))  # only the blocks the text needs
    no_space = [(ord(a), ord(b)) for a, b in re.findall(r"(.)-(.)", minhash._NO_SPACE_SCRIPTS)]
    for c in text:
        want = 2 if any(a <= ord(c) <= b for a, b in no_space) else int(re.fullmatch(r"\w", c) is not None)
        assert classes[ord(c)] == want, c
