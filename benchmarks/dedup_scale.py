"""Banding + clustering at scale: time and peak memory on N synthetic signatures with planted clusters.

Signatures are generated (not computed from text) straight into the signature stage's
output format: random 112-value signatures, and planted clusters of 2-5 members that copy
a base signature with 5% of values replaced (estimated Jaccard ~0.9), members spread over
all files. With `--verify exact` (the default) every document also gets a shingle set of
`--shingles` random 32-bit values (a ~400-word document), members copying their cluster's
base set with 3% of values replaced (exact Jaccard ~0.89). Then the bucket and cluster stages run as `lmforge corpus dedup` runs them, in
this process (local executor, one task), and the process's peak RSS is reported; the
generation runs in a child process so it does not count.

    python benchmarks/dedup_scale.py                 # 100,000 documents
    python benchmarks/dedup_scale.py --docs 1000000 --json
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's tokenize
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.corpus.dedup import WORK, BucketStage, ClusterStage, DedupConfig, SignatureStage, run_stages  # noqa: E402
from lmforge.corpus.execution import ExecutorConfig  # noqa: E402
from lmforge.corpus.minhash import _fmix64  # noqa: E402

DUP_EVERY = 50  # one planted cluster per 50 documents


def plan(n_docs: int):
    """Cluster sizes (2..5) and the permutation that places members among all documents."""
    k = n_docs // DUP_EVERY
    sizes = 2 + np.arange(k) % 4
    ends = np.cumsum(sizes)
    a = 2654435761 % n_docs or 1
    while np.gcd(a, n_docs) != 1:
        a += 1
    return sizes, ends, a


def _hash(x: np.ndarray, salt: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _fmix64(x.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt))


class SyntheticSignatures(SignatureStage):
    """Stage 1 with generated signatures instead of documents."""

    n_docs = 0
    per_file = 0
    shingles = 400

    def _one_file(self, fi: int, hasher) -> None:
        cfg, n_docs = self.config, self.n_docs
        sizes, ends, a = plan(n_docs)
        members = int(ends[-1]) if len(ends) else 0
        lo = fi * self.per_file
        hi = min(lo + self.per_file, n_docs)
        g = np.arange(lo, hi, dtype=np.int64)
        p = np.arange(cfg.num_perm, dtype=np.uint64)
        rank = (a * g) % n_docs  # a bijection: member rank of each document
        is_member = rank < members
        cluster = np.searchsorted(ends, rank, side="right")
        # base value of a cluster / own value of a document, per permutation
        own = (_hash(g[:, None] * cfg.num_perm + p[None, :].astype(np.int64), 1) >> np.uint64(32)).astype(np.uint32)
        base = (_hash(cluster[:, None] * cfg.num_perm + p[None, :].astype(np.int64), 2) >> np.uint64(32)).astype(np.uint32)
        noise = (_hash(g[:, None] * cfg.num_perm + p[None, :].astype(np.int64), 3) % np.uint64(100)) < 5
        sig = np.where(is_member[:, None] & ~noise, base, own)
        records = [[] for _ in range(cfg.bucket_shards)]
        for s in range(0, hi - lo, 100_000):
            self.add_records(records, fi, s, min(100_000, hi - lo - s), sig[s : s + 100_000], None)
        names = [json.dumps([f"g{x}", None]).encode() for x in g] if hi - lo <= 2_000_000 else []
        offsets = np.concatenate([[0], np.cumsum([len(x) for x in names])]).astype(np.int64)
        if cfg.verify == "exact":
            self._shingles(fi, g, is_member, cluster)
        self.save(fi, hi - lo, records, sig, np.zeros(0, np.uint64), b"".join(names), offsets, {})

    def _shingles(self, fi: int, g: np.ndarray, is_member: np.ndarray, cluster: np.ndarray) -> None:
        from lmforge.corpus.dedup import _atomic_save, unique_per_document

        k = np.arange(self.shingles, dtype=np.int64)
        values, counts = [], []
        for s in range(0, g.size, 10_000):
            gs, ms, cs = g[s : s + 10_000], is_member[s : s + 10_000], cluster[s : s + 10_000]
            own = (_hash(gs[:, None] * self.shingles + k, 4) >> np.uint64(32)).astype(np.uint32)
            base = (_hash(cs[:, None] * self.shingles + k, 5) >> np.uint64(32)).astype(np.uint32)
            noise = (_hash(gs[:, None] * self.shingles + k, 6) % np.uint64(100)) < 3
            v, c = unique_per_document(np.where(ms[:, None] & ~noise, base, own).ravel(), np.full(gs.size, self.shingles))
            values.append(v)
            counts.append(c)
        offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
        _atomic_save(self.work / "shingles" / f"{fi:06d}.npy", np.concatenate(values))
        _atomic_save(self.work / "shingles" / f"{fi:06d}.idx.npy", offsets)


def generate(out: Path, n_docs: int, per_file: int, config: DedupConfig) -> None:
    files = [f"synthetic-{i:05d}" for i in range((n_docs + per_file - 1) // per_file)]
    SyntheticSignatures.n_docs, SyntheticSignatures.per_file = n_docs, per_file
    step = SyntheticSignatures(files, str(out / WORK), str(out), config)
    step.run(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--per-file", type=int, default=100_000)
    ap.add_argument("--bucket-shards", type=int, default=64)
    ap.add_argument("--verify", choices=["exact", "estimate", "none"], default="exact")
    ap.add_argument("--shingles", type=int, default=400, help="shingles per document (with --verify exact)")
    ap.add_argument("--workdir", default=None, help="where the signatures go (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    config = DedupConfig(bucket_shards=args.bucket_shards, verify=args.verify)
    SyntheticSignatures.shingles = args.shingles
    if args.generate_only:
        generate(Path(args.workdir), args.docs, args.per_file, config)
        return
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    out = Path(args.workdir or tempfile.mkdtemp(prefix="dedup-scale-"))
    try:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate-only", "--docs", str(args.docs), "--per-file", str(args.per_file),
                        "--bucket-shards", str(args.bucket_shards), "--verify", args.verify, "--shingles", str(args.shingles),
                        "--workdir", str(out)], check=True)
        gen_s = time.perf_counter() - t0
        log(f"generated {args.docs:,} signatures in {gen_s:.1f}s")
        files = [f"synthetic-{i:05d}" for i in range((args.docs + args.per_file - 1) // args.per_file)]
        t0 = time.perf_counter()
        run_stages((BucketStage, ClusterStage), files, out, config, ExecutorConfig())
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stats = json.loads((out / WORK / "clusters.json").read_text())
        sizes, ends, _ = plan(args.docs)
        result = {
            "benchmark": "dedup_scale",
            "docs": args.docs,
            "bands": config.bands,
            "rows": config.rows,
            "bucket_shards": args.bucket_shards,
            "verify": args.verify,
            "signature_mb": round(sum(f.stat().st_size for f in (out / WORK / "sigs").glob("*.npy")) / 2**20, 1),
            "shingle_mb": round(sum(f.stat().st_size for f in (out / WORK / "shingles").glob("*.npy")) / 2**20, 1),
            "seconds": round(seconds, 2),
            "generate_seconds": round(gen_s, 2),
            "peak_rss_mb": round(peak, 1),
            "clusters_found": stats["clusters"],
            "clusters_planted": int(len(sizes)),
            "duplicates_removed": stats["duplicates_removed"],
            "duplicates_planted": int(sizes.sum() - len(sizes)),
        }
        print(json.dumps(result))
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
