"""MinHash signatures/s: lmforge's bulk MinHasher vs datasketch as a user runs it.

datasketch baseline: one `MinHash(num_perm, seed)` per document with its default sha1 hash,
shingles made in Python (`" ".join(words[i:i+n])`, the same tokenisation lmforge uses),
`update_batch`. Identity: lmforge's signatures against `MinHash(..., hashfunc=shingle_hash32)`
on every document, and with `--hash sha1` semantics against datasketch's default hash.
lmforge runs with numba when installed (`backend`); the numpy fallback is timed too.

    python benchmarks/minhash.py            # C4 documents from ../shared/data, repeated
    python benchmarks/minhash.py --json     # only the JSON line
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's tokenize (numpy/scipy need it)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import json
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.corpus.minhash import MinHasher, shingle_hash32, shingles  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "text" / "c4-300-docs.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--docs", type=int, default=6000, help="documents timed for lmforge (the file repeated)")
    ap.add_argument("--baseline-docs", type=int, default=1500, help="documents timed for datasketch")
    ap.add_argument("--num-perm", type=int, default=112)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()
    from datasketch import MinHash

    texts = [orjson.loads(line)["text"] for line in Path(args.data).read_bytes().splitlines() if line.strip()]
    corpus = (texts * (args.docs // len(texts) + 1))[: args.docs]
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))

    def rate(hasher: MinHasher) -> float:
        hasher.signatures(texts[:10])  # code point table and compiled kernels, once per process
        t0 = time.perf_counter()
        for i in range(0, len(corpus), args.batch):
            hasher.signatures(corpus[i : i + args.batch])
        return len(corpus) / (time.perf_counter() - t0)

    hasher = MinHasher(args.num_perm, 1, args.ngram)
    lm_rate = rate(hasher)
    log(f"lmforge ({hasher.backend}): {lm_rate:,.0f} docs/s")
    numpy_rate = rate(MinHasher(args.num_perm, 1, args.ngram, backend="numpy")) if hasher.backend != "numpy" else lm_rate
    log(f"lmforge (numpy fallback): {numpy_rate:,.0f} docs/s")

    base = corpus[: args.baseline_docs]
    t0 = time.perf_counter()
    for text in base:
        m = MinHash(num_perm=args.num_perm, seed=1)
        m.update_batch(shingles(text, args.ngram))
    ds_rate = len(base) / (time.perf_counter() - t0)
    log(f"datasketch (sha1, update_batch): {ds_rate:,.0f} docs/s")

    sig = hasher.signatures(texts)
    identical = True
    for text, row in zip(texts, sig):
        m = MinHash(num_perm=args.num_perm, seed=1, hashfunc=shingle_hash32)
        m.update_batch(shingles(text, args.ngram))
        identical &= bool(np.array_equal(m.hashvalues, row))
    sha = MinHasher(args.num_perm, 1, args.ngram, hash="sha1").signatures(texts[:50])
    for text, row in zip(texts[:50], sha):
        m = MinHash(num_perm=args.num_perm, seed=1)
        m.update_batch(shingles(text, args.ngram))
        identical &= bool(np.array_equal(m.hashvalues, row))
    print(json.dumps({
        "benchmark": "minhash",
        "documents": len(corpus),
        "num_perm": args.num_perm,
        "ngram": args.ngram,
        "backend": hasher.backend,
        "lmforge_docs_per_s": round(lm_rate, 1),
        "lmforge_numpy_docs_per_s": round(numpy_rate, 1),
        "datasketch_docs_per_s": round(ds_rate, 1),
        "speedup": round(lm_rate / ds_rate, 2),
        "identical_to_datasketch": identical,
        "identity_checked_on": len(texts),
    }))


if __name__ == "__main__":
    main()
