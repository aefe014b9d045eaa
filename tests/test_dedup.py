"""The dedup pipeline: planted clusters, quality on real text, resume, bad input, the command."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import zstandard
from click.testing import CliRunner
from conftest import shared_path

from lmforge.corpus.dedup import DedupConfig, DedupError, connected_components, run_dedup
from lmforge.corpus.dedup_cli import dedup
from lmforge.corpus.minhash import shingles
from lmforge.documents import DocumentWriter, iter_documents

C4 = ("text", "c4-300-docs.jsonl")


def c4_texts() -> list[str]:
    return [orjson.loads(line)["text"] for line in shared_path(*C4).read_bytes().splitlines()]


def jaccard(a: str, b: str, ngram: int = 5) -> float:
    sa, sb = set(shingles(a, ngram)), set(shingles(b, ngram))
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def write_docs(path: Path, docs: list[tuple[str, str]]) -> None:
    with DocumentWriter(path) as w:
        for doc_id, text in docs:
            w.write(doc_id, text, {"url": f"https://example.com/{doc_id}"})


def read_ids(out: Path) -> list[str]:
    return [d.id for p in sorted((out / "documents").glob("*.jsonl.zst")) for d in iter_documents(p)]


def read_clusters(out: Path) -> list[dict]:
    raw = zstandard.ZstdDecompressor().stream_reader(open(out / "clusters" / "clusters-00000.jsonl.zst", "rb")).read()
    return [orjson.loads(line) for line in raw.splitlines()]


def output_bytes(out: Path) -> dict:
    files = sorted(out.glob("documents/*.jsonl.zst")) + sorted(out.glob("clusters/*"))
    stats = orjson.loads((out / "stats.json").read_bytes())
    for k in ("seconds", "docs_per_s"):
        stats.pop(k)
    return {"files": {p.relative_to(out).as_posix(): p.read_bytes() for p in files}, "stats": stats}


def mutate(text: str, fraction: float, rng: random.Random) -> str:
    """Replace `fraction` of the words with fresh ones (Jaccard of word 5-grams falls ~5x as fast)."""
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, int(len(words) * fraction))):
        words[i] = f"w{rng.randrange(10**9)}"
    return " ".join(words)


# ----------------------------------------------------------------------------------------


def test_connected_components():
    nodes, roots = connected_components(np.array([1, 2, 7, 20, 30], np.uint64), np.array([2, 3, 9, 30, 2], np.uint64))
    assert nodes.tolist() == [1, 2, 3, 7, 9, 20, 30]
    assert roots.tolist() == [1, 1, 1, 7, 7, 1, 1]
    # a long path converges too
    n = 1000
    perm = np.random.default_rng(0).permutation(n).astype(np.uint64)
    nodes, roots = connected_components(perm[:-1], perm[1:])
    assert (roots == 0).all()


def test_planted_clusters_are_recovered(tmp_path):
    texts = [t for t in c4_texts() if len(t.split()) > 150][:60]
    rng = random.Random(0)
    docs, planted = [], {}
    for i, t in enumerate(texts):
        docs.append((f"orig{i:03d}", t))
    for i, t in enumerate(texts[:20]):  # 20 clusters of 1-3 near copies each
        for j in range(1 + i % 3):
            docs.append((f"copy{i:03d}-{j}", mutate(t, 0.01, rng)))
            planted[f"copy{i:03d}-{j}"] = f"orig{i:03d}"
    rng.shuffle(docs)
    # the originals go first, so the earliest document of each cluster is the original
    docs.sort(key=lambda d: not d[0].startswith("orig"))
    write_docs(tmp_path / "in" / "documents" / "part-0.jsonl.zst", docs[:50])
    write_docs(tmp_path / "in" / "documents" / "part-1.jsonl.zst", docs[50:])
    stats = run_dedup([str(tmp_path / "in")], str(tmp_path / "out"), DedupConfig())
    kept = set(read_ids(tmp_path / "out"))
    assert kept == {d for d, _ in docs if d.startswith("orig")}
    assert stats["clusters"] == 20 and stats["near_duplicates_removed"] == len(planted)
    assert stats["documents_in"] == len(docs) and stats["kept"] == 60
    for cluster in read_clusters(tmp_path / "out"):
        survivor = cluster["survivor"]["id"]
        assert cluster["size"] == len(cluster["removed"]) + 1
        assert all(planted[m["id"]] == survivor for m in cluster["removed"])
        assert all(m["url"].endswith(m["id"]) and m["similarity"] >= 0.7 for m in cluster["removed"])
    assert (tmp_path / "out" / "stats.json").exists()


def test_quality_on_real_text_with_known_near_duplicates(tmp_path):
    """Recall >= 0.95 on pairs with Jaccard >= 0.8, precision >= 0.99, pairs <= 0.2 never clustered.

    Families: a real C4 document and 8 variants at graded distances (word replacements from
    0.2% to 60%, a dropped paragraph, an appended footer); true word 5-gram Jaccard is computed
    exactly for every pair within a family (C4 documents are unrelated to one another).
    """
    texts = [t for t in c4_texts() if len(t.split()) > 200][:80]
    rng = random.Random(1)
    families = []
    for i, t in enumerate(texts):
        fam = [(f"f{i:03d}-orig", t)]
        for j, frac in enumerate([0.002, 0.01, 0.02, 0.03, 0.05, 0.1, 0.3, 0.6]):
            fam.append((f"f{i:03d}-v{j}", mutate(t, frac, rng)))
        paras = t.split("\n")
        if len(paras) > 3:
            fam.append((f"f{i:03d}-cut", "\n".join(paras[:-1])))
        fam.append((f"f{i:03d}-footer", t + "\nShare this page on social media. Copyright 2019, all rights reserved."))
        families.append(fam)
    docs = [d for fam in families for d in fam]
    rng.shuffle(docs)
    write_docs(tmp_path / "in" / "documents" / "all.jsonl.zst", docs)
    run_dedup([str(tmp_path / "in")], str(tmp_path / "out"), DedupConfig())
    kept = set(read_ids(tmp_path / "out"))
    survivor = {m["id"]: c["survivor"]["id"] for c in read_clusters(tmp_path / "out") for m in c["removed"]}
    text = dict(docs)
    high = low = recalled = low_kept = 0
    for fam in families:
        for (a, ta), (b, tb) in itertools.combinations(fam, 2):
            j = jaccard(ta, tb)
            if j >= 0.8:
                high += 1
                recalled += a not in kept or b not in kept
            elif j <= 0.2:
                low += 1
                # never deduplicated against each other: not in one cluster
                low_kept += survivor.get(a, a) != survivor.get(b, b)
    removed = [d for d, _ in docs if d not in kept]
    precise = sum(jaccard(text[d], text[survivor[d]]) >= 0.7 and survivor[d] in kept for d in removed)
    recall, precision = recalled / high, precise / len(removed)
    print(f"pairs >= 0.8: {high}, recall {recall:.4f}; removed {len(removed)}, precision {precision:.4f}; pairs <= 0.2: {low}, not clustered together {low_kept}")
    assert high > 300 and low > 50
    assert recall >= 0.95
    assert precision >= 0.99
    assert low_kept == low


def _ja_documents() -> list[tuple[str, str]]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    docs = []
    with open(shared_path("warc", "clueweb09-ja-near-duplicates.warc.gz"), "rb") as f:
        for rec in ArchiveIterator(f, record_types=WarcRecordType.response):
            body = rec.reader.read()
            html = body.split(b"\r\n\r\n", 1)[-1] if body.startswith(b"HTTP/") else body
            text = extract_plain_text(HTMLTree.parse(html.decode("euc-jp", "replace")), main_content=True)
            docs.append((rec.headers.get("WARC-TREC-ID") or rec.record_id, text))
    return docs


def test_japanese_near_duplicates_are_found(tmp_path):
    docs = _ja_documents()
    assert len(docs) == 29
    write_docs(tmp_path / "in" / "documents" / "ja.jsonl.zst", docs)
    stats = run_dedup([str(tmp_path / "in")], str(tmp_path / "out"), DedupConfig())
    kept = set(read_ids(tmp_path / "out"))
    pairs = [(a, b, jaccard(ta, tb)) for (a, ta), (b, tb) in itertools.combinations(docs, 2)]
    # pairs verified at estimated Jaccard >= 0.8 (sd ~0.04 with 112 permutations): a pair at
    # exactly 0.80 (ja0016-50-00026/28 here, estimated 0.786) is a coin flip; from 0.85 none is missed
    high = [(a, b) for a, b, j in pairs if j >= 0.85]
    assert high, "the pages are near-duplicates in character 5-grams"
    assert all(a not in kept or b not in kept for a, b in high)
    assert stats["near_duplicates_removed"] >= 4
    # whitespace words would not work: Japanese has few spaces, so "5 words" span whole lines
    whitespace = [len(set(t.split())) for _, t in docs]
    assert np.median(whitespace) < 0.2 * np.median([len(shingles(t)) for _, t in docs])
    # a lower threshold gathers the whole shop's template pages into clusters
    stats = run_dedup([str(tmp_path / "in")], str(tmp_path / "out5"), DedupConfig(threshold=0.5))
    assert stats["near_duplicates_removed"] > stats["documents_in"] / 2


def test_exact_duplicates_alone_and_with_near(tmp_path):
    texts = c4_texts()[:30]
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    docs += [("upper0", texts[0].upper()), ("spaces1", "  " + "   ".join(texts[1].split())), ("near2", mutate(texts[2], 0.01, random.Random(0)))]
    write_docs(tmp_path / "in.jsonl.zst", docs)
    stats = run_dedup([str(tmp_path / "in.jsonl.zst")], str(tmp_path / "exact"), DedupConfig(exact=True, near=False))
    assert stats["exact_duplicates_removed"] == 2 and stats["near_duplicates_removed"] == 0
    assert set(read_ids(tmp_path / "exact")) == {d for d, _ in docs} - {"upper0", "spaces1"}
    stats = run_dedup([str(tmp_path / "in.jsonl.zst")], str(tmp_path / "both"), DedupConfig(exact=True))
    assert stats["exact_duplicates_removed"] == 2 and stats["near_duplicates_removed"] == 1
    assert stats["kept"] == 30


def test_empty_and_one_document_inputs(tmp_path):
    write_docs(tmp_path / "empty.jsonl.zst", [])
    stats = run_dedup([str(tmp_path / "empty.jsonl.zst")], str(tmp_path / "o1"), DedupConfig())
    assert stats["documents_in"] == 0 and stats["kept"] == 0 and stats["clusters"] == 0
    assert read_ids(tmp_path / "o1") == []
    write_docs(tmp_path / "one.jsonl.zst", [("only", "a single short document")])
    stats = run_dedup([str(tmp_path / "one.jsonl.zst")], str(tmp_path / "o2"), DedupConfig(exact=True))
    assert stats["documents_in"] == 1 and stats["kept"] == 1
    assert read_ids(tmp_path / "o2") == ["only"]
    # empty texts are never near-duplicates of one another (they have no shingles)
    write_docs(tmp_path / "blank.jsonl.zst", [("a", ""), ("b", ""), ("c", "...")])
    stats = run_dedup([str(tmp_path / "blank.jsonl.zst")], str(tmp_path / "o3"), DedupConfig())
    assert stats["kept"] == 3


def test_same_output_for_any_number_of_tasks(tmp_path):
    texts = c4_texts()[:40]
    rng = random.Random(3)
    for k in range(4):
        docs = [(f"p{k}-{i}", t if rng.random() < 0.5 else mutate(t, 0.01, rng)) for i, t in enumerate(texts[k * 10 : k * 10 + 20])]
        write_docs(tmp_path / "in" / "documents" / f"p{k}.jsonl.zst", docs)
    from lmforge.corpus.execution import ExecutorConfig

    cfg = DedupConfig(bucket_shards=5)
    run_dedup([str(tmp_path / "in")], str(tmp_path / "a"), cfg)
    run_dedup([str(tmp_path / "in")], str(tmp_path / "b"), cfg, ExecutorConfig(tasks=3, workers=2))
    assert output_bytes(tmp_path / "a") == output_bytes(tmp_path / "b")


_RUN_SCRIPT = """
import sys
from lmforge.corpus.dedup import DedupConfig, run_dedup
run_dedup([sys.argv[1]], sys.argv[2], DedupConfig(exact=True, batch_size=50, bucket_shards=8))
"""


def test_killed_run_resumes_to_identical_output(tmp_path):
    texts = c4_texts()
    rng = random.Random(4)
    for k in range(6):
        docs = [(f"p{k}-{i}", mutate(t, 0.01, rng) if rng.random() < 0.3 else t) for i, t in enumerate(texts[k * 40 : k * 40 + 60])]
        write_docs(tmp_path / "in" / "documents" / f"p{k}.jsonl.zst", docs)
    script = tmp_path / "run.py"
    script.write_text(_RUN_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))

    def run(out: Path, kill_after: float | None):
        if kill_after is None:  # to the end: in this process, as _RUN_SCRIPT runs it (only a killed run needs its own)
            run_dedup([str(tmp_path / "in")], str(out), DedupConfig(exact=True, batch_size=50, bucket_shards=8))
            return
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "in"), str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(kill_after)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    run(tmp_path / "ref", None)
    reference = output_bytes(tmp_path / "ref")
    for i, delay in enumerate([0.8, 1.6, 2.4, 3.2]):
        out = tmp_path / f"killed{i}"
        run(out, delay)
        run(out, delay / 2)  # killed again while resuming
        run(out, None)
        assert output_bytes(out) == reference, f"killed after {delay}s"


def test_malformed_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "text": "first document here"}\nnot json\n{"id": "b"}\n{"id": "c", "text": "third one"}\n')
    stats = run_dedup([str(path)], str(tmp_path / "out"), DedupConfig())
    assert stats["documents_in"] == 2 and stats["skipped"] == {"malformed_line": 2}
    assert read_ids(tmp_path / "out") == ["a", "c"]


def test_corrupted_zst_is_an_error_naming_the_file(tmp_path):
    write_docs(tmp_path / "in" / "good.jsonl.zst", [(f"d{i}", t) for i, t in enumerate(c4_texts()[:20])])
    data = (tmp_path / "in" / "good.jsonl.zst").read_bytes()
    (tmp_path / "in" / "bad.jsonl.zst").write_bytes(data[: len(data) // 2] + b"\x00garbage" * 10)
    with pytest.raises(DedupError, match="bad.jsonl.zst"):
        run_dedup([str(tmp_path / "in")], str(tmp_path / "out"), DedupConfig())
    result = CliRunner().invoke(dedup, [str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "bad.jsonl.zst" in result.output and "Traceback" not in result.output
    # fixed input: the rerun finishes
    (tmp_path / "in" / "bad.jsonl.zst").unlink()
    result = CliRunner().invoke(dedup, [str(tmp_path / "in"), "-o", str(tmp_path / "out2")])
    assert result.exit_code == 0, result.output


def test_command_prints_summary_and_help(tmp_path):
    write_docs(tmp_path / "in" / "documents" / "x.jsonl.zst", [(f"d{i}", t) for i, t in enumerate(c4_texts()[:10])] + [("dup", c4_texts()[0])])
    runner = CliRunner()
    result = runner.invoke(dedup, [str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--exact", "--no-progress"])
    assert result.exit_code == 0, result.output
    for label in ("documents in", "exact duplicates removed", "clusters", "near-duplicates removed", "kept", "docs/s"):
        assert label in result.output
    assert orjson.loads((tmp_path / "out" / "stats.json").read_bytes())["kept"] == 10
    help_text = runner.invoke(dedup, ["--help"]).output
    assert "Example" in help_text and "lmforge corpus dedup" in help_text
    explain = runner.invoke(dedup, ["x", "-o", "y", "--explain"]).output
    assert "15 bands x 7 rows" in explain and "0.97" in explain


def test_command_errors_are_clear(tmp_path):
    runner = CliRunner()
    result = runner.invoke(dedup, [str(tmp_path / "missing"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "missing" in result.output and "Traceback" not in result.output
    result = runner.invoke(dedup, ["x", "-o", "y", "--bands", "20", "--rows", "20"])
    assert result.exit_code == 2 and "num_perm" in result.output
    result = runner.invoke(dedup, ["x", "-o", "y", "--bands", "20"])
    assert result.exit_code == 2 and "--rows" in result.output


def test_rerun_with_other_settings_is_refused(tmp_path):
    write_docs(tmp_path / "in.jsonl.zst", [("a", "some text here to dedup")])
    run_dedup([str(tmp_path / "in.jsonl.zst")], str(tmp_path / "out"), DedupConfig())
    with pytest.raises(DedupError, match=r"other settings: --threshold 0\.\d+ \(asked 0\.6\)"):
        run_dedup([str(tmp_path / "in.jsonl.zst")], str(tmp_path / "out"), DedupConfig(threshold=0.6))


def _band_collision_below_threshold(base: str, config: DedupConfig, rng: random.Random) -> str:
    """A variant of `base` that shares an LSH band with it but whose estimated Jaccard is < threshold."""
    from lmforge.corpus.minhash import MinHasher, band_keys

    hasher = MinHasher(config.num_perm, config.seed, config.ngram, config.hash)
    for _ in range(2000):
        variant = mutate(base, rng.uniform(0.04, 0.12), rng)
        sig = hasher.signatures([base, variant])
        keys = band_keys(sig, config.bands, config.rows)
        if (keys[0] == keys[1]).any() and (sig[0] == sig[1]).mean() < config.threshold - 0.1:
            return variant
    raise AssertionError("no band collision found")  # pragma: no cover


@pytest.mark.parametrize("executor_tasks", [1, 3])
def test_candidates_are_verified_before_they_join_a_cluster(tmp_path, executor_tasks):
    """An LSH false positive (one band in common, estimated Jaccard < 0.7) is dropped; a true
    near-duplicate is kept in its cluster; stats and the summary count candidates and verified pairs."""
    from lmforge.corpus.execution import ExecutorConfig

    texts = [t for t in c4_texts() if len(t.split()) > 300][:12]
    cfg = DedupConfig()
    rng = random.Random(7)
    false_positive = _band_collision_below_threshold(texts[0], cfg, rng)
    near = mutate(texts[1], 0.005, rng)
    assert jaccard(texts[0], false_positive) < 0.7 and jaccard(texts[1], near) > 0.9
    docs = [(f"doc{i}", t) for i, t in enumerate(texts)] + [("collides", false_positive), ("near", near)]
    write_docs(tmp_path / "in" / "documents" / "a.jsonl.zst", docs[:7])
    write_docs(tmp_path / "in" / "documents" / "b.jsonl.zst", docs[7:])
    ex = ExecutorConfig(tasks=executor_tasks, workers=1)
    verified = run_dedup([str(tmp_path / "in")], str(tmp_path / "out"), cfg, ex)
    assert set(read_ids(tmp_path / "out")) == {d for d, _ in docs} - {"near"}
    assert verified["candidate_pairs"] == 2 and verified["verified_pairs"] == 1
    assert verified["verify"] == "exact" and verified["verify_threshold"] == 0.8
    # LSH alone: the collision is removed as a "duplicate" of a document it does not resemble
    unverified = run_dedup([str(tmp_path / "in")], str(tmp_path / "raw"), DedupConfig(verify=False), ex)
    assert set(read_ids(tmp_path / "raw")) == {d for d, _ in docs} - {"near", "collides"}
    assert unverified["candidate_pairs"] == 2 and unverified["verified_pairs"] == 2
    # the command: the flag, and both counts in the summary table
    runner = CliRunner()
    r = runner.invoke(dedup, [str(tmp_path / "in"), "-o", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    assert "candidate pairs (LSH)" in r.output and "pairs with estimated Jaccard >= 0.8" in r.output
    assert "pairs with exact Jaccard >= 0.8" in r.output and "verified pairs (exact)" in r.output
    r = runner.invoke(dedup, [str(tmp_path / "in"), "-o", str(tmp_path / "cli-raw"), "--no-verify-candidates"])
    assert r.exit_code == 0 and "not verified" in r.output
    assert orjson.loads((tmp_path / "cli-raw" / "stats.json").read_bytes())["near_duplicates_removed"] == 2
    assert "--no-verify-candidates" in runner.invoke(dedup, ["--help"]).output


def _estimate_above_exact_below(base: str, config: DedupConfig, rng: random.Random) -> str:
    """A variant of `base` that shares an LSH band with it, whose estimated Jaccard (112 values)
    is >= the threshold while its exact Jaccard is below it (0.72-0.79)."""
    from lmforge.corpus.minhash import MinHasher, band_keys

    hasher = MinHasher(config.num_perm, config.seed, config.ngram, config.hash)
    for _ in range(2000):
        variant = mutate(base, rng.uniform(0.02, 0.035), rng)
        if not 0.72 <= jaccard(base, variant) < config.threshold - 0.01:
            continue
        sig = hasher.signatures([base, variant])
        keys = band_keys(sig, config.bands, config.rows)
        if (keys[0] == keys[1]).any() and (sig[0] == sig[1]).mean() >= config.threshold:
            return variant
    raise AssertionError("no variant with estimate >= threshold > exact found")  # pragma: no cover


@pytest.mark.parametrize("executor_tasks", [1, 3])
def test_exact_verification_drops_pairs_the_estimate_overrates(tmp_path, executor_tasks):
    """A pair whose estimated Jaccard is >= 0.8 but exact < 0.8 is removed with --verify
    estimate and kept with --verify exact (the default); true near-duplicates (exact >= 0.85)
    are removed by both; stats count candidates, pairs passing the estimate and exact."""
    from lmforge.corpus.execution import ExecutorConfig

    texts = [t for t in c4_texts() if len(t.split()) > 300][:10]
    rng = random.Random(3)
    over = _estimate_above_exact_below(texts[0], DedupConfig(), rng)
    near = [mutate(texts[1], 0.008, rng), mutate(texts[2], 0.014, rng)]
    assert all(jaccard(texts[i + 1], t) >= 0.85 for i, t in enumerate(near))
    docs = [(f"doc{i}", t) for i, t in enumerate(texts)] + [("over", over), ("near1", near[0]), ("near2", near[1])]
    write_docs(tmp_path / "in" / "documents" / "a.jsonl.zst", docs[:6])
    write_docs(tmp_path / "in" / "documents" / "b.jsonl.zst", docs[6:])
    ex = ExecutorConfig(tasks=executor_tasks, workers=1)
    exact = run_dedup([str(tmp_path / "in")], str(tmp_path / "exact"), DedupConfig(), ex)
    assert set(read_ids(tmp_path / "exact")) == {d for d, _ in docs} - {"near1", "near2"}
    assert (exact["candidate_pairs"], exact["estimate_pairs"], exact["exact_pairs"], exact["verified_pairs"]) == (3, 3, 2, 2)
    # the clusters file reports the exact Jaccard of the shingle sets
    sims = {m["id"]: m["similarity"] for c in read_clusters(tmp_path / "exact") for m in c["removed"]}
    assert sims == {"near1": round(jaccard(texts[1], near[0]), 4), "near2": round(jaccard(texts[2], near[1]), 4)}
    estimate = run_dedup([str(tmp_path / "in")], str(tmp_path / "estimate"), DedupConfig(verify="estimate"), ex)
    assert set(read_ids(tmp_path / "estimate")) == {d for d, _ in docs} - {"near1", "near2", "over"}
    assert (estimate["estimate_pairs"], estimate["exact_pairs"], estimate["verified_pairs"]) == (3, None, 3)
    # the old flag is an alias of --verify estimate
    r = CliRunner().invoke(dedup, [str(tmp_path / "in"), "-o", str(tmp_path / "cli"), "--verify-candidates"])
    assert r.exit_code == 0, r.output
    assert orjson.loads((tmp_path / "cli" / "stats.json").read_bytes())["verify"] == "estimate"
    assert "over" not in read_ids(tmp_path / "cli")


def test_verify_modes_are_validated():
    assert DedupConfig(verify=True).verify == "estimate" and DedupConfig(verify=False).verify == "none"
    with pytest.raises(ValueError, match="verify must be one of exact, estimate, none"):
        DedupConfig(verify="approx")


# ----------------------------------------------------------------------------------------
# Slurm: the stages as one chain of dependent job arrays (no real Slurm: sbatch is faked)


class FakeSbatch:
    """Stands in for datatrove's `launch_slurm_job`: records each submission, returns job ids."""

    def __init__(self):
        self.jobs: list[dict] = []

    def __call__(self, contents: str, job_id_retriever, *args) -> str:
        job_id = str(1000 + len(self.jobs))
        dependency = [a.split("=", 1)[1] for a in args if a.startswith("--dependency=")]
        dependency += [line.split("=", 1)[1] for line in contents.splitlines() if line.startswith("#SBATCH --dependency=")]
        self.jobs.append({"id": job_id, "merge_stats": "merge_stats" in contents, "dependency": dependency})
        return job_id


def _slurm_input(tmp_path: Path) -> Path:
    texts = c4_texts()[:30]
    rng = random.Random(5)
    docs = [(f"d{i}", t) for i, t in enumerate(texts)] + [(f"c{i}", mutate(t, 0.01, rng)) for i, t in enumerate(texts[:8])]
    write_docs(tmp_path / "in" / "documents" / "a.jsonl.zst", docs[:20])
    write_docs(tmp_path / "in" / "documents" / "b.jsonl.zst", docs[20:])
    return tmp_path / "in"


def test_slurm_executors_are_chained_stage_after_stage(tmp_path):
    from datatrove.executor import SlurmPipelineExecutor

    from lmforge.corpus.dedup import STAGES, StatsStage, build_executors
    from lmforge.corpus.execution import ExecutorConfig

    files = ["a.jsonl.zst", "b.jsonl.zst", "c.jsonl.zst"]
    ex = ExecutorConfig(executor="slurm", tasks=8, workers=4, slurm_partition="cpu")
    stages = STAGES + (StatsStage,)
    chain = build_executors(stages, files, tmp_path / "out", DedupConfig(bucket_shards=16), ex)
    assert all(isinstance(e, SlurmPipelineExecutor) for e in chain)
    assert [type(e.pipeline[0]) for e in chain] == list(stages)
    assert chain[0].depends is None
    assert all(later.depends is earlier for earlier, later in zip(chain, chain[1:]))
    # tasks: files (3), bucket shards (16, capped at --tasks), one clusters task, files, one stats task
    assert [e.tasks for e in chain] == [3, 8, 1, 3, 1]
    assert all(e.partition == "cpu" and e.pipeline[0].fail_on_error for e in chain)
    assert len({str(e.logging_dir.path) for e in chain}) == len(chain)  # completions kept apart per stage


def test_slurm_run_submits_the_whole_chain_at_once_and_in_order(tmp_path, monkeypatch):
    import datatrove.executor.slurm as slurm

    from lmforge.corpus.execution import ExecutorConfig

    sbatch = FakeSbatch()
    monkeypatch.setattr("lmforge.corpus.execution.check_engine", lambda config: None)  # no sbatch on this machine
    monkeypatch.setattr(slurm, "launch_slurm_job", sbatch)
    ex = ExecutorConfig(executor="slurm", tasks=4, slurm_partition="cpu")
    result = run_dedup([str(_slurm_input(tmp_path))], str(tmp_path / "out"), DedupConfig(bucket_shards=4), ex)
    arrays = [j for j in sbatch.jobs if not j["merge_stats"]]
    assert list(result["jobs"]) == ["signatures", "buckets", "clusters", "filter", "stats"]
    assert list(result["jobs"].values()) == [j["id"] for j in arrays]
    assert arrays[0]["dependency"] == []
    for earlier, later in zip(arrays, arrays[1:]):
        assert later["dependency"] == [f"afterok:{earlier['id']}"]
    # the driver waited for nothing and computed nothing
    assert not (tmp_path / "out" / "stats.json").exists()
    assert not (tmp_path / "out" / ".lmforge" / "dedup" / "clusters.json").exists()


def test_slurm_chain_run_task_by_task_equals_a_local_run(tmp_path, monkeypatch):
    """Play Slurm: run every submitted array task in dependency order from its pickled executor."""
    import dill
    import datatrove.executor.slurm as slurm

    from lmforge.corpus.execution import ExecutorConfig

    inp = _slurm_input(tmp_path)
    cfg = DedupConfig(bucket_shards=4)
    run_dedup([str(inp)], str(tmp_path / "local"), cfg)
    monkeypatch.setattr(slurm, "launch_slurm_job", FakeSbatch())
    monkeypatch.setattr("lmforge.corpus.execution.check_engine", lambda config: None)  # no sbatch on this machine
    ex = ExecutorConfig(executor="slurm", tasks=3, slurm_partition="cpu")
    result = run_dedup([str(inp)], str(tmp_path / "slurm"), cfg, ex)
    monkeypatch.setenv("SLURM_NODELIST", "node1")
    monkeypatch.setattr(slurm, "expand_slurm_nodelist", lambda nodelist: [nodelist])  # no scontrol here
    for stage in result["jobs"]:
        folder = tmp_path / "slurm" / ".lmforge" / f"dedup-{stage}"
        executor = dill.loads((folder / "executor.pik").read_bytes())
        for array_index in range(len(orjson.loads((folder / "ranks_to_run.json").read_bytes()))):
            monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(array_index))
            executor.run()
    assert output_bytes(tmp_path / "slurm") == output_bytes(tmp_path / "local")
    # resubmitting a finished run submits nothing
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    sbatch = FakeSbatch()
    monkeypatch.setattr("lmforge.corpus.execution.check_engine", lambda config: None)  # no sbatch on this machine
    monkeypatch.setattr(slurm, "launch_slurm_job", sbatch)
    again = run_dedup([str(inp)], str(tmp_path / "slurm"), cfg, ex)
    assert sbatch.jobs == [] and set(again["jobs"].values()) == {-1}


def test_slurm_task_with_bad_input_fails_so_later_stages_never_start(tmp_path):
    from lmforge.corpus.dedup import WORK, SignatureStage

    (tmp_path / "bad.jsonl.zst").write_bytes(b"\x00garbage" * 10)
    out = tmp_path / "out"
    (out / WORK / "errors").mkdir(parents=True)
    step = SignatureStage([str(tmp_path / "bad.jsonl.zst")], str(out / WORK), str(out), DedupConfig())
    step.run(0, 1)  # locally: recorded, the driver raises after the stage
    assert (out / WORK / "errors" / "000000.txt").exists()
    step.fail_on_error = True  # under Slurm: the task fails, afterok holds the next job
    with pytest.raises(DedupError, match="bad.jsonl.zst"):
        step.run(0, 1)


def test_command_reports_slurm_submission(tmp_path, monkeypatch):
    import datatrove.executor.slurm as slurm

    monkeypatch.setattr(slurm, "launch_slurm_job", FakeSbatch())
    monkeypatch.setattr("lmforge.corpus.execution.check_engine", lambda config: None)  # no sbatch on this machine
    args = [str(_slurm_input(tmp_path)), "-o", str(tmp_path / "out"), "--executor", "slurm", "--slurm-partition", "cpu"]
    result = CliRunner().invoke(dedup, args)
    assert result.exit_code == 0, result.output
    assert "submitted to Slurm" in result.output and "signatures 1000" in result.output
