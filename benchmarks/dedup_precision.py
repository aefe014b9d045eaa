"""Near-duplicate precision and recall on held-out real text with planted near-duplicates.

Development sets, one per kind of real text in ../shared/data:

- `web`: the 300 C4 documents (`text/c4-300-docs.jsonl`) and the 10 cc_net documents;
- `news`: the 181 article bodies of `extraction/article-extraction-benchmark/ground-truth.json`;
- `wiki`: the 30 Wikipedia articles cut into passages of ~300 words (at sentence ends).

Every real document of >= 40 words is a *family root*; each root gets 6 planted variants,
each from the root or from an earlier variant (so variants are also near-duplicates of one
another), by one edit, its rate drawn uniformly (not tuned to any threshold):

- word substitutions, insertions or deletions at a rate in [0, 8%] of the words (substitutes
  and insertions are real words of other documents of the kind), or all three at once;
- boilerplate: a header and/or footer of real-looking site chrome (navigation, cookie and
  share lines) of 0-40% of the document's length added, replaced or removed.

Word 5-gram Jaccard of every pair within a family is computed exactly (the shingles
`lmforge.corpus.minhash.shingles` makes, the ground truth) and spans 0.3-1.0 around the 0.8
threshold; documents of different families are unrelated (any pair predicted across families
is scored by its exact Jaccard too). The documents are shuffled into input order.

Metrics, at threshold t = 0.8 (`--threshold`):

- **precision** (removal level): of the removed documents, the share whose exact Jaccard with
  the document kept in its place (its cluster's survivor) is >= t - `tolerance`; tolerance 0
  is strict, 0.1 is the gray zone the old test used (a 112-permutation estimate has a standard
  deviation of ~0.04 at 0.8: a pair at 0.79 is a coin flip for any MinHash method).
- **recall** (pair level): of the pairs with exact Jaccard >= t + `tolerance`, the share with at
  least one document removed (a pair with both kept is a duplicate left in the corpus).

Methods, all at 112 permutations, word 5-grams, threshold 0.8:

- `lmforge`: `lmforge corpus dedup` as shipped (15 x 7 LSH bands, every candidate pair and
  cluster member verified on the exact Jaccard of the two shingle sets, `--verify exact`);
- `lmforge_estimate`: verified on the estimated Jaccard (share of equal signature values)
  >= threshold (`--verify estimate`, the default before exact verification);
- `lmforge_previous`: verified at estimated Jaccard >= threshold - 0.05 (the default before that);
- `lmforge_unverified`: the same with `--verify none` (LSH alone);
- `datasketch`: `MinHashLSH(threshold=0.8, num_perm=112)` (its own 11 x 10 bands), the
  documents' query results joined by union-find, the earliest of each component kept;
- `datatrove`: datatrove's MinHash pipeline with its defaults (14 x 8 = 112 hashes, its own
  word tokenizer and normalisation; sha1 hashing, since its default xxhash is another
  package), its clusters and removals read from stage 3.

Goal (issue 14): precision >= 0.995 at recall >= 0.98. Measured (seed 0, 2 busy cores, ~7 min;
P@tol / R@tol as defined above; seconds include numba compilation for the first method):

| kind (docs, pairs >= 0.8)  | method             | P@0   | R@0   | P@0.05 | R@0.05 | P@0.1  | R@0.1 | removals < 0.7 | s     |
| -------------------------- | ------------------ | ----- | ----- | ------ | ------ | ------ | ----- | -------------- | ----- |
| web (2044, 850)            | lmforge (exact)    | 1.000 | 0.997 | 1.000  | 1.000  | 1.000  | 1.000 | 0              | 7.9   |
|                            | lmforge_estimate   | 0.871 | 0.965 | 0.984  | 1.000  | 1.000  | 1.000 | 0              | 2.8   |
|                            | lmforge_previous   | 0.688 | 0.995 | 0.908  | 1.000  | 0.984  | 1.000 | 12             | 3.0   |
|                            | lmforge_unverified | 0.277 | 0.999 | 0.389  | 1.000  | 0.480  | 1.000 | 671            | 3.1   |
|                            | datasketch         | 0.643 | 0.912 | 0.777  | 0.973  | 0.875  | 0.997 | 87             | 7.5   |
|                            | datatrove          | 0.421 | 0.995 | 0.550  | 1.000  | 0.648  | 1.000 | 405            | 85.4  |
| news (1260, 607)           | lmforge (exact)    | 1.000 | 1.000 | 1.000  | 1.000  | 1.000  | 1.000 | 0              | 7.5   |
|                            | lmforge_estimate   | 0.885 | 0.967 | 0.988  | 1.000  | 0.998  | 1.000 | 1              | 6.0   |
|                            | lmforge_previous   | 0.703 | 1.000 | 0.903  | 1.000  | 0.972  | 1.000 | 14             | 7.5   |
|                            | lmforge_unverified | 0.314 | 1.000 | 0.431  | 1.000  | 0.549  | 1.000 | 369            | 8.5   |
|                            | datasketch         | 0.660 | 0.918 | 0.793  | 0.961  | 0.859  | 0.996 | 67             | 20.6  |
|                            | datatrove          | 0.443 | 0.997 | 0.581  | 1.000  | 0.689  | 1.000 | 230            | 89.3  |
| wiki (3500, 1503)          | lmforge (exact)    | 1.000 | 0.999 | 1.000  | 1.000  | 1.000  | 1.000 | 0              | 15.7  |
|                            | lmforge_estimate   | 0.858 | 0.948 | 0.980  | 0.999  | 0.999  | 1.000 | 1              | 9.0   |
|                            | lmforge_previous   | 0.677 | 0.996 | 0.883  | 1.000  | 0.983  | 1.000 | 23             | 9.7   |
|                            | lmforge_unverified | 0.281 | 0.999 | 0.383  | 1.000  | 0.491  | 1.000 | 1159           | 7.4   |
|                            | datasketch         | 0.667 | 0.906 | 0.794  | 0.966  | 0.877  | 0.993 | 153            | 18.3  |
|                            | datatrove          | 0.433 | 0.993 | 0.554  | 1.000  | 0.669  | 1.000 | 664            | 130.3 |

With exact verification the goal holds strictly on every kind (precision 1.000, recall
0.997-1.000; 15 x 7 bands make a pair at 0.8 a candidate with probability 0.971). With the estimate it holds only with the 0.1 gray zone: a share of
equal values among 112 has a standard deviation of ~0.038 at 0.8, so a pair at 0.77 passes
an estimated >= 0.8 about 1 time in 5, and these sets put many pairs there on purpose; the
same noise drops true pairs at 0.80-0.83 (strict recall 0.95-0.97). LSH alone (lmforge,
datasketch, datatrove) joins chains A~B~C into one cluster, so it removes documents that
resemble their survivor little (Jaccard down to 0.2). Candidate pairs (LSH) / passing the
estimate / passing exact: web 2071 / 841 / 803, news 1358 / 599 / 556, wiki 3732 / 1539 / 1429.

    python benchmarks/dedup_precision.py            # tables (and datatrove's logs) on stderr, JSON last on stdout
    python benchmarks/dedup_precision.py --json     # only the JSON line
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's tokenize
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import gzip  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.corpus.minhash import shingles  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
VARIANTS = 6
MIN_WORDS = 40
EDITS = ("substitute", "insert", "delete", "mixed", "boilerplate")
MAX_WORD_RATE = 0.08
MAX_BOILERPLATE = 0.4
TOLERANCES = (0.0, 0.05, 0.1)

BOILERPLATE = [
    "Home | About us | Contact | Privacy policy | Terms of use",
    "Skip to main content",
    "This website uses cookies to improve your experience. By continuing to browse the site you agree to our use of cookies.",
    "Share this article: Facebook Twitter LinkedIn Email Print",
    "Subscribe to our newsletter to get the latest updates delivered to your inbox every week.",
    "Copyright 2019 All rights reserved. Reproduction without permission is prohibited.",
    "Related posts: you might also like these stories from our archive",
    "Leave a comment. Your email address will not be published. Required fields are marked",
    "Posted in News, Features and Opinion by the editorial team",
    "Advertisement. Continue reading below the advertisement.",
    "Sign in or register to save articles and follow topics you care about.",
    "Follow us on Instagram, YouTube and Pinterest for more.",
    "Menu Search Close Back to top",
    "Read more: the most popular stories this week in politics, business, sport and culture",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- the real documents ------------------------------------------------------------------------


def load_kinds() -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    web = [json.loads(line)["text"] for line in (DATA / "text" / "c4-300-docs.jsonl").read_text().splitlines() if line.strip()]
    ccnet = DATA / "text" / "ccnet-cc-main-2020-16-head.jsonl.gz"
    if ccnet.exists():
        with gzip.open(ccnet, "rt") as f:
            web += [json.loads(line)["text"] for line in f if line.strip()]
    kinds["web"] = web
    gt = DATA / "extraction" / "article-extraction-benchmark" / "ground-truth.json"
    if gt.exists():
        kinds["news"] = [v["articleBody"] for _, v in sorted(json.loads(gt.read_text()).items()) if v.get("articleBody")]
    wiki = DATA / "text" / "wikipedia-30-articles.txt"
    if wiki.exists():
        passages = []
        for article in wiki.read_text().splitlines():
            sentences = re.split(r"(?<=[.!?])\s+", article.strip())
            cur: list[str] = []
            for s in sentences:
                cur.append(s)
                if sum(len(x.split()) for x in cur) >= 300:
                    passages.append(" ".join(cur))
                    cur = []
            if sum(len(x.split()) for x in cur) >= MIN_WORDS:
                passages.append(" ".join(cur))
        kinds["wiki"] = passages
    return {k: [t for t in v if len(t.split()) >= MIN_WORDS] for k, v in kinds.items()}


# ---- planted near-duplicates -------------------------------------------------------------------


def edit_words(text: str, edit: str, rate: float, vocab: list[str], rng: random.Random) -> str:
    words = text.split()
    k = round(len(words) * rate)
    ops = [edit] * k if edit != "mixed" else [rng.choice(("substitute", "insert", "delete")) for _ in range(k)]
    for op in ops:
        i = rng.randrange(len(words))
        if op == "substitute":
            words[i] = rng.choice(vocab)
        elif op == "insert":
            words.insert(i, rng.choice(vocab))
        elif len(words) > 1:
            del words[i]
    return " ".join(words)


def boilerplate(n_words: int, rng: random.Random) -> str:
    lines: list[str] = []
    while sum(len(x.split()) for x in lines) < n_words:
        lines.append(rng.choice(BOILERPLATE))
    return "\n".join(lines)


def edit_boilerplate(text: str, rate: float, rng: random.Random) -> str:
    """Add, replace or remove a header and/or footer of ~rate x the document's words."""
    n = max(1, round(len(text.split()) * rate))
    where = rng.choice(("header", "footer", "both"))
    head = boilerplate(n // (2 if where == "both" else 1), rng) if where != "footer" else ""
    foot = boilerplate(n // (2 if where == "both" else 1), rng) if where != "header" else ""
    body = text
    if rng.random() < 0.3:  # remove the chrome an earlier variant added (lines that are boilerplate)
        body = "\n".join(line for line in text.split("\n") if line not in BOILERPLATE)
    return "\n".join(x for x in (head, body, foot) if x)


def build_set(texts: list[str], seed: int) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Documents (id, text) in input order and each one's family."""
    rng = random.Random(seed)
    vocab = [w for t in texts for w in t.split()[:200]]
    docs, family = [], {}
    for f, root in enumerate(texts):
        fam = [(f"k{f:04d}-root", root)]
        for v in range(VARIANTS):
            _, parent = rng.choice(fam)
            edit = rng.choice(EDITS)
            if edit == "boilerplate":
                text = edit_boilerplate(parent, rng.uniform(0, MAX_BOILERPLATE), rng)
            else:
                text = edit_words(parent, edit, rng.uniform(0, MAX_WORD_RATE), vocab, rng)
            fam.append((f"k{f:04d}-v{v}-{edit}", text))
        for doc_id, text in fam:
            family[doc_id] = f
        docs.extend(fam)
    rng.shuffle(docs)
    return docs, family


class Truth:
    """Exact word 5-gram Jaccard, shingle sets cached."""

    def __init__(self, docs: list[tuple[str, str]]):
        self.text = dict(docs)
        self._sets: dict[str, set] = {}

    def shingles(self, d: str) -> set:
        if d not in self._sets:
            self._sets[d] = set(shingles(self.text[d], 5))
        return self._sets[d]

    def jaccard(self, a: str, b: str) -> float:
        sa, sb = self.shingles(a), self.shingles(b)
        return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


# ---- the methods -------------------------------------------------------------------------------


def write_input(docs, folder: Path) -> Path:
    from lmforge.documents import DocumentWriter

    path = folder / "in" / "documents" / "part-00000.jsonl.zst"
    with DocumentWriter(path) as w:
        for doc_id, text in docs:
            w.write(doc_id, text, {})
    return path


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def run_lmforge(docs, folder: Path, threshold: float, verify: str, verify_threshold: float | None = None) -> dict[str, str]:
    """removed id -> survivor id, from `run_dedup`'s clusters file."""
    import orjson
    import zstandard

    from lmforge.corpus.dedup import DedupConfig, run_dedup

    out = folder / f"lmforge-{verify}-{verify_threshold}"
    stats = run_dedup([str(folder / "in")], str(out), DedupConfig(threshold=threshold, verify=verify, verify_threshold=verify_threshold))
    raw = zstandard.ZstdDecompressor().stream_reader(open(out / "clusters" / "clusters-00000.jsonl.zst", "rb")).read()
    survivor = {}
    for line in raw.splitlines():
        c = orjson.loads(line)
        for m in c["removed"]:
            survivor[m["id"]] = c["survivor"]["id"]
    work = out / ".lmforge" / "dedup"
    survivor["__stats__"] = {k: stats[k] for k in ("candidate_pairs", "estimate_pairs", "exact_pairs", "verified_pairs")}
    survivor["__stats__"].update(text_bytes=sum(len(t.encode()) for _, t in docs), input_bytes=_bytes(folder / "in"), signature_bytes=_bytes(work / "sigs"), shingle_bytes=_bytes(work / "shingles"))
    return survivor


def _components(edges, order: dict[str, int]) -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            if order[ra] < order[rb]:
                parent[rb] = ra
            else:
                parent[ra] = rb
    return {x: find(x) for x in list(parent) if find(x) != x}


def run_datasketch(docs, threshold: float) -> dict[str, str]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=112)
    sigs = {}
    for doc_id, text in docs:
        m = MinHash(num_perm=112, seed=1)
        m.update_batch(shingles(text, 5))
        sigs[doc_id] = m
        lsh.insert(doc_id, m)
    edges = [(d, c) for d, m in sigs.items() for c in lsh.query(m) if c != d]
    return _components(edges, {d: i for i, (d, _) in enumerate(docs)})


def run_datatrove(docs, folder: Path) -> dict[str, str]:
    import struct

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupSignature
    from datatrove.pipeline.readers import JsonlReader

    src = folder / "datatrove-in"
    src.mkdir(parents=True, exist_ok=True)
    with open(src / "docs.jsonl", "w") as f:
        for doc_id, text in docs:
            f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    from datatrove.utils.hashing import HashConfig

    # 5-grams, 14 buckets x 8 hashes = 112; sha1 (its default xxhash needs one more package)
    cfg = MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"))
    work = folder / "datatrove"
    read = JsonlReader(str(src), glob_pattern="*.jsonl")
    for name, pipeline, tasks in (
        ("sig", [read, MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg)], 1),
        ("buckets", [MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)], cfg.num_buckets),
        ("clusters", [MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove"), config=cfg, save_cluster_id=True)], 1),
    ):
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(work / f"logs-{name}")).run()

    def ints(path: Path) -> list[int]:
        data = path.read_bytes() if path.exists() else b""
        return list(struct.unpack(f"<{len(data) // 4}I", data))

    removed = set(ints(work / "remove" / "000000.remove"))
    pairs = ints(work / "remove" / "000000.clusters")
    cluster = dict(zip(pairs[0::2], pairs[1::2]))
    keeper = {c: d for d, c in cluster.items() if d not in removed}
    ids = [d for d, _ in docs]
    return {ids[d]: ids[keeper[cluster[d]]] for d in removed if cluster.get(d) in keeper}


# ---- scoring -----------------------------------------------------------------------------------


def score(survivor: dict[str, str], docs, family: dict[str, int], truth: Truth, threshold: float) -> dict:
    survivor = {k: v for k, v in survivor.items() if not k.startswith("__")}
    removed = set(survivor)
    sims = [truth.jaccard(d, s) for d, s in survivor.items()]
    fams: dict[int, list[str]] = {}
    for d, _ in docs:
        fams.setdefault(family[d], []).append(d)
    pair_j = [(a, b, truth.jaccard(a, b)) for members in fams.values() for a, b in itertools.combinations(members, 2)]
    out = {"removed": len(removed), "true_pairs": sum(j >= threshold for _, _, j in pair_j)}
    for tol in TOLERANCES:
        good = sum(j >= threshold - tol for j in sims)
        wanted = [(a, b) for a, b, j in pair_j if j >= threshold + tol]
        found = sum(a in removed or b in removed for a, b in wanted)
        out[f"precision@{tol:g}"] = round(good / len(sims), 4) if sims else 1.0
        out[f"recall@{tol:g}"] = round(found / len(wanted), 4) if wanted else 1.0
    out["worst_removal_jaccard"] = round(min(sims), 3) if sims else None
    out["removals_below_0.7"] = sum(j < 0.7 for j in sims)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="lmforge,lmforge_estimate,lmforge_previous,lmforge_unverified,datasketch,datatrove")
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    methods = args.methods.split(",")
    result: dict = {"threshold": args.threshold, "variants_per_document": VARIANTS, "kinds": {}}
    for kind, texts in load_kinds().items():
        docs, family = build_set(texts, args.seed)
        truth = Truth(docs)
        entry: dict = {"roots": len(texts), "documents": len(docs)}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_input(docs, folder)
            for method in methods:
                t = time.perf_counter()
                if method == "lmforge":
                    surv = run_lmforge(docs, folder, args.threshold, verify="exact")
                elif method == "lmforge_estimate":
                    surv = run_lmforge(docs, folder, args.threshold, verify="estimate")
                elif method == "lmforge_previous":
                    surv = run_lmforge(docs, folder, args.threshold, verify="estimate", verify_threshold=round(args.threshold - 0.05, 6))
                elif method == "lmforge_unverified":
                    surv = run_lmforge(docs, folder, args.threshold, verify="none")
                elif method == "datasketch":
                    surv = run_datasketch(docs, args.threshold)
                elif method == "datatrove":
                    try:
                        surv = run_datatrove(docs, folder)
                    except Exception as exc:  # noqa: BLE001 - optional baseline
                        entry[method] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                        continue
                else:
                    sys.exit(f"unknown method {method!r}")
                entry[method] = score(surv, docs, family, truth, args.threshold)
                if "__stats__" in surv:
                    entry[method].update(surv["__stats__"])
                entry[method]["seconds"] = round(time.perf_counter() - t, 2)
        entry["true_pairs"] = entry[methods[0]].get("true_pairs")
        result["kinds"][kind] = entry
        if not args.json:
            log(f"\n{kind}: {len(texts)} real documents + {len(docs) - len(texts)} planted variants, {entry['true_pairs']} pairs >= {args.threshold}")
            log(f"  {'method':<20}{'removed':>8}  " + "  ".join(f"P@{t:g}  R@{t:g}" for t in TOLERANCES) + "   worst J  <0.7")
            for method in methods:
                m = entry[method]
                if "error" in m:
                    log(f"  {method:<20}{m['error']}")
                    continue
                log(f"  {method:<20}{m['removed']:>8}  " + "  ".join(f"{m[f'precision@{t:g}']:.4f} {m[f'recall@{t:g}']:.4f}" for t in TOLERANCES)
                    + f"   {m['worst_removal_jaccard']}  {m['removals_below_0.7']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
