"""Benchmark the lmforge tokenizer against the tools a user would otherwise pick.

On the shared data (`../shared/data`: C4, Wikipedia, cc_net, the alignment sets, the
article-extraction ground truth, and the multilingual and Japanese WARC pages, decoded with
resiliparse), split into a training pool and held-out text per language:

1. training: `lmforge.tokenize.train.train_tokenizer` (sampling + BPE + files) against a bare
   `tokenizers` training call (stock `pre_tokenizers.ByteLevel`) on the same sample, each in
   its own process for its peak RSS; and lmforge again on an input 4x larger with the same
   `--sample-bytes`, to show memory follows the sample, not the input.
2. compression: bytes per token on held-out text per language, lmforge (digits 3 and 2)
   against the stock byte-level BPE of the same vocabulary size trained on the same sample.
3. encoding: MB/s of `Tokenizer.encode_batch` and of `tokenizers`' `encode_batch` (and
   `encode_batch_fast`) on the same texts and the same `tokenizer.json`; identical ids or not.

Usage: python benchmarks/tokenizer.py [--json] [--vocab-size 8192] [--sample-bytes 4000000]
Prints one JSON line last.
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's `tokenize`; drop its folder from the import
# path before anything (linecache, inspect) imports `tokenize` and finds this script instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import gzip
import hashlib
import json
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("LMFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def log(*args, quiet=False):
    if not quiet:
        print(*args, file=sys.stderr, flush=True)


# ---- data ------------------------------------------------------------------------------------


def _warc_texts(path: Path) -> list[str]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    out = []
    try:
        with open(path, "rb") as f:
            for rec in ArchiveIterator(f, record_types=WarcRecordType.response, strict_mode=False):
                body = rec.reader.read()
                head, _, html = body.partition(b"\r\n\r\n")
                text = extract_plain_text(bytes_to_str(html or body, detect_encoding(html or body)), main_content=True)
                if len(text.strip()) > 100:
                    out.append(text)
    except Exception as exc:  # a reader problem must not stop the benchmark
        log(f"warning: {path.name}: {exc}")
    return out


def load_corpus() -> list[tuple[str, str, str]]:
    """(group, source, text) triples; group is the language (LID-176) or 'en:gsm8k'."""
    docs: list[tuple[str, str]] = []  # (source, text)
    text_dir, align = DATA / "text", DATA / "align"
    for line in open(text_dir / "c4-300-docs.jsonl", "rb"):
        docs.append(("c4", json.loads(line)["text"]))
    for line in open(text_dir / "wikipedia-30-articles.txt", encoding="utf-8"):
        if line.strip():
            docs.append(("wikipedia", line.rstrip("\n")))
    with gzip.open(text_dir / "ccnet-cc-main-2020-16-head.jsonl.gz", "rb") as f:
        for line in f:
            docs.append(("cc_net", json.loads(line)["text"]))
    for rec in json.load(open(align / "alpaca-en-999.json", encoding="utf-8")):
        docs.append(("alpaca", "\n".join(x for x in (rec["instruction"], rec.get("input", ""), rec["output"]) if x)))
    with gzip.open(align / "hh-rlhf-harmless-1800.jsonl.gz", "rb") as f:
        for line in f:
            docs.append(("hh-rlhf", json.loads(line)["chosen"]))
    gsm = [json.loads(line) for line in open(align / "gsm8k-train-7473.jsonl", "rb")]
    gsm_docs = [("gsm8k", f"{r['question']}\n{r['answer']}") for r in gsm]
    gt = json.load(open(DATA / "extraction" / "article-extraction-benchmark" / "ground-truth.json", encoding="utf-8"))
    for v in gt.values():
        if v.get("articleBody"):
            docs.append(("articles", v["articleBody"]))
    for name in ("cc-main-2020-34-multilingual.warc.gz", "clueweb09-ja-near-duplicates.warc.gz", "wget-2024-homepages.warc.gz"):
        docs += [(name.split(".")[0], t) for t in _warc_texts(DATA / "warc" / name)]
    try:
        from lmforge.corpus.langid import LanguageIdentifier

        lid = LanguageIdentifier()
        label = lambda t: lid.predict(t)[0]  # noqa: E731
    except Exception as exc:  # pragma: no cover - fastText missing
        log(f"warning: no language ID ({exc}); all text is 'xx'")
        label = lambda t: "xx"  # noqa: E731
    out = [(label(t), s, t) for s, t in docs]
    out += [("en:gsm8k", s, t) for s, t in gsm_docs]
    return out


def split(corpus, english_every: int = 5, other_every: int = 2):
    """Held-out: every 5th English document and every 2nd of other languages, by content hash."""
    by_group = defaultdict(list)
    for g, s, t in corpus:
        by_group[g].append((hashlib.sha1(t.encode()).hexdigest(), s, t))
    train, held = [], defaultdict(list)
    for g, items in sorted(by_group.items()):
        items.sort()
        every = english_every if g.startswith("en") else other_every
        for i, (_, s, t) in enumerate(items):
            if i % every == every - 1:
                held[g].append(t)
            else:
                train.append((g, t))
    return train, dict(held)


# ---- child processes (peak memory of one training run each) --------------------------------

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from lmforge.tokenize.train import TrainConfig, train_tokenizer, sample_documents, build_trainer_tokenizer
mode, inputs, out, vocab, sample_bytes, digits = {args!r}
cfg = TrainConfig(vocab_size=vocab, sample_bytes=sample_bytes, digits=digits)
t0 = time.perf_counter()
if mode == "lmforge":
    res = train_tokenizer(inputs, out, cfg, force=True)
    seconds = time.perf_counter() - t0
    extra = {{"sample_bytes": res.meta["training"]["sample_bytes"], "train_seconds": res.meta["training"]["train_seconds"]}}
else:
    from pathlib import Path
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    sample = sample_documents([Path(p) for p in inputs], sample_bytes, seed=cfg.seed, max_doc_chars=cfg.max_doc_chars)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=cfg.min_frequency, show_progress=False,
                                  special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t0 = time.perf_counter()
    tok.train_from_iterator(sample.texts, trainer=trainer, length=len(sample.texts))
    seconds = time.perf_counter() - t0
    tok.save(out)
    extra = {{"sample_bytes": sample.sample_bytes}}
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(seconds=seconds, peak_rss_bytes=rss, **extra)))
"""


def child_train(mode, inputs, out, vocab, sample_bytes, digits=3) -> dict:
    code = CHILD.format(root=str(ROOT), args=(mode, [str(p) for p in inputs], str(out), vocab, sample_bytes, digits))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"training child ({mode}) failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def write_jsonl(path: Path, texts, copies: int = 1) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for k in range(copies):
            for i, t in enumerate(texts):
                suffix = f"\n(copy {k})" if k else ""  # copies are distinct documents, not duplicates
                f.write(json.dumps({"id": f"{k}-{i}", "text": t + suffix}) + "\n")


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ---- main --------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--sample-bytes", type=int, default=4_000_000)
    ap.add_argument("--repeats", type=int, default=5, help="encode timings: best of N, interleaved")
    args = ap.parse_args(argv)
    quiet = args.json
    if not DATA.is_dir():
        raise SystemExit(f"shared data not found at {DATA} (set LMFORGE_SHARED_DATA)")

    from tokenizers import Tokenizer as HFTokenizer

    from lmforge.tokenize import Tokenizer

    t0 = time.perf_counter()
    corpus = load_corpus()
    train_docs, held = split(corpus)
    log(f"data: {len(corpus)} documents, {sum(len(t.encode()) for _, _, t in corpus) / 1e6:.1f} MB "
        f"({time.perf_counter() - t0:.1f} s); groups: {', '.join(f'{g}:{len(v)}' for g, v in sorted(held.items()))}", quiet=quiet)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_file, big_file = tmp / "train.jsonl", tmp / "train-x4.jsonl"
        write_jsonl(train_file, [t for _, t in train_docs])
        write_jsonl(big_file, [t for _, t in train_docs], copies=4)
        input_bytes = train_file.stat().st_size

        # 1. training
        log("training lmforge (digits 3, 2), bare tokenizers, lmforge on 4x input ...", quiet=quiet)
        ours = child_train("lmforge", [train_file], tmp / "tok3", args.vocab_size, args.sample_bytes, 3)
        ours2 = child_train("lmforge", [train_file], tmp / "tok2", args.vocab_size, args.sample_bytes, 2)
        bare = child_train("bare", [train_file], tmp / "stock.json", args.vocab_size, args.sample_bytes)
        ours_big = child_train("lmforge", [big_file], tmp / "tokbig", args.vocab_size, args.sample_bytes, 3)
        ours_big_sample = child_train("lmforge", [big_file], tmp / "tokbig2", args.vocab_size, 4 * args.sample_bytes, 3)

        tok3, tok2 = Tokenizer.load(tmp / "tok3"), Tokenizer.load(tmp / "tok2")
        stock = HFTokenizer.from_file(str(tmp / "stock.json"))
        hf = HFTokenizer.from_file(str(tmp / "tok3" / "tokenizer.json"))
        hf.encode_special_tokens = True

        # 2. compression per held-out group
        compression = {}
        for g, texts in sorted(held.items()):
            nbytes = sum(len(t.encode()) for t in texts)
            n3 = sum(map(len, tok3.encode_batch(texts)))
            n2 = sum(map(len, tok2.encode_batch(texts)))
            ns = sum(len(e.ids) for e in stock.encode_batch(texts))
            compression[g] = {"documents": len(texts), "bytes": nbytes, "lmforge_bpt": round(nbytes / n3, 3),
                              "lmforge_digits2_bpt": round(nbytes / n2, 3), "stock_bytelevel_bpt": round(nbytes / ns, 3)}
        all_held = [t for texts in held.values() for t in texts]
        nb = sum(len(t.encode()) for t in all_held)
        tot = {k: sum(v["bytes"] / v[k] for v in compression.values()) for k in ("lmforge_bpt", "lmforge_digits2_bpt", "stock_bytelevel_bpt")}
        compression["all"] = {"documents": len(all_held), "bytes": nb, **{k: round(nb / v, 3) for k, v in tot.items()}}

        # 3. encoding speed on every text (training and held-out), same tokenizer.json
        texts = [t for _, _, t in corpus]
        mb = sum(len(t.encode()) for t in texts) / 1e6
        log(f"encoding {mb:.1f} MB, best of {args.repeats} ...", quiet=quiet)
        ours_ids = tok3.encode_batch(texts)
        ref_ids = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
        identical = ours_ids == ref_ids
        mismatched = sum(a != b for a, b in zip(ours_ids, ref_ids))
        del ours_ids, ref_ids
        encoders = {
            "ours": lambda: tok3.encode_batch(texts),
            "ours1": lambda: tok3.encode_batch(texts, num_threads=1),
            "hf": lambda: hf.encode_batch(texts, add_special_tokens=False),
            "hf_fast": lambda: hf.encode_batch_fast(texts, add_special_tokens=False),
            "tt": lambda: tok3._tt.encode_ordinary_batch(texts),
        }
        best = dict.fromkeys(encoders, float("inf"))
        for _ in range(args.repeats):  # interleaved, so a burst of load on a shared machine hits all alike
            for name, fn in encoders.items():
                best[name] = min(best[name], best_time(fn, 1))
        t_ours, t_ours1, t_hf, t_hf_fast, t_tt = (best[k] for k in ("ours", "ours1", "hf", "hf_fast", "tt"))

    result = {
        "benchmark": "tokenize",
        "cpus": os.cpu_count(),
        "vocab_size": args.vocab_size,
        "sample_bytes": ours["sample_bytes"],
        "input_bytes": input_bytes,
        "train_seconds": round(ours["seconds"], 3),
        "train_bpe_seconds": ours["train_seconds"],
        "bare_tokenizers_train_seconds": round(bare["seconds"], 3),
        "train_time_ratio": round(ours["seconds"] / bare["seconds"], 3),
        "peak_rss_mb": round(ours["peak_rss_bytes"] / 2**20, 1),
        "bare_tokenizers_peak_rss_mb": round(bare["peak_rss_bytes"] / 2**20, 1),
        "peak_rss_mb_input_x4": round(ours_big["peak_rss_bytes"] / 2**20, 1),
        "train_seconds_input_x4": round(ours_big["seconds"], 3),
        "peak_rss_mb_input_x4_sample_x4": round(ours_big_sample["peak_rss_bytes"] / 2**20, 1),
        "sample_bytes_x4": ours_big_sample["sample_bytes"],
        "encode_mb": round(mb, 2),
        "encode_mb_s": round(mb / t_ours, 2),
        "encode_mb_s_1_thread": round(mb / t_ours1, 2),
        "tokenizers_encode_batch_mb_s": round(mb / t_hf, 2),
        "tokenizers_encode_batch_fast_mb_s": round(mb / t_hf_fast, 2),
        "tiktoken_encode_ordinary_batch_mb_s": round(mb / t_tt, 2),
        "speedup_vs_encode_batch": round(t_hf / t_ours, 2),
        "speedup_vs_encode_batch_fast": round(t_hf_fast / t_ours, 2),
        "identical_ids": identical,
        "mismatched_documents": mismatched,
        "compression_bytes_per_token": compression,
        "digits3_vs_2_all": [compression["all"]["lmforge_bpt"], compression["all"]["lmforge_digits2_bpt"]],
        "seconds_total": round(time.perf_counter() - t0, 1),
    }
    if not quiet:
        _print_tables(result)
    print(json.dumps(result))
    return result


def _print_tables(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    t = Table(title=f"training (vocab {r['vocab_size']:,}, sample {r['sample_bytes'] / 1e6:.1f} MB)")
    for c in ("", "lmforge", "bare tokenizers", "lmforge, input x4", "lmforge, input x4, sample x4"):
        t.add_column(c, justify="right")
    t.add_row("seconds", f"{r['train_seconds']:.2f}", f"{r['bare_tokenizers_train_seconds']:.2f}", f"{r['train_seconds_input_x4']:.2f}", "")
    t.add_row("peak RSS MB", f"{r['peak_rss_mb']:.0f}", f"{r['bare_tokenizers_peak_rss_mb']:.0f}", f"{r['peak_rss_mb_input_x4']:.0f}",
              f"{r['peak_rss_mb_input_x4_sample_x4']:.0f}")
    console.print(t)
    t = Table(title="held-out bytes per token (higher is better)")
    for c in ("group", "docs", "MB", "lmforge", "lmforge digits 2", "stock ByteLevel"):
        t.add_column(c, justify="left" if c == "group" else "right")
    for g, v in r["compression_bytes_per_token"].items():
        t.add_row(g, str(v["documents"]), f"{v['bytes'] / 1e6:.2f}", f"{v['lmforge_bpt']:.3f}", f"{v['lmforge_digits2_bpt']:.3f}", f"{v['stock_bytelevel_bpt']:.3f}")
    console.print(t)
    t = Table(title=f"encoding {r['encode_mb']:.1f} MB on {r['cpus']} CPUs (identical ids: {r['identical_ids']})")
    t.add_column("encoder")
    t.add_column("MB/s", justify="right")
    for name, key in [("lmforge encode_batch", "encode_mb_s"), ("lmforge encode_batch, 1 thread", "encode_mb_s_1_thread"),
                      ("tokenizers encode_batch", "tokenizers_encode_batch_mb_s"), ("tokenizers encode_batch_fast", "tokenizers_encode_batch_fast_mb_s"),
                      ("tiktoken encode_ordinary_batch", "tiktoken_encode_ordinary_batch_mb_s")]:
        t.add_row(name, f"{r[key]:.2f}")
    console.print(t)


if __name__ == "__main__":
    main()
