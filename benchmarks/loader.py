"""Shard compression and loader speed, side by side with plain zstd and a raw uint16 memmap.

With no arguments, on ../shared/data/text: trains an 8k and a 32k tokenizer (seconds),
builds shards for two sources (C4 + cc_net, Wikipedia), writes a 50/50 manifest, then
measures:

- `ratio_8k`, `ratio_32k`: shard bytes on disk (index included) / raw uint16 bytes.
- `loader_tokens_per_s`: windows of `--seq-len + 1` tokens read through `ShardReader` in the
  order a trainer reads them: each window's source drawn by manifest weight from a seeded
  RNG, each source read sequentially from its cursor through `train_ranges()`, wrapping
  around (epochs).
- `zstd_decompress_tokens_per_s`: `ZstdDecompressor().decompress` of every frame of the same
  shards, bytes already in memory: the floor for reading compressed shards.
- `raw_memmap_tokens_per_s`: nanoGPT's loader on the same tokens as an uncompressed uint16
  `.bin`: a memmap re-created per batch, random window offsets, each window copied out.

Prints one JSON line last (`--json`: only that line).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("LMFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def prepare(work: Path, vocab: int, quiet: bool) -> Path:
    from lmforge.tokenize.build import BuildConfig, build_shards
    from lmforge.tokenize.mix import MixRecipe, SourceSpec, build_manifest
    from lmforge.tokenize.train import TrainConfig, train_tokenizer

    text = SHARED / "text"
    if not text.is_dir():
        sys.exit(f"error: {text}: shared data not found (set LMFORGE_SHARED_DATA)")
    tok = work / f"tok{vocab}"
    # min_frequency 0: the shared text is too small for 32k merges that each occur twice
    train_tokenizer([text], tok, TrainConfig(vocab_size=vocab, min_frequency=0))
    web = build_shards([text / "c4-300-docs.jsonl", text / "ccnet-cc-main-2020-16-head.jsonl.gz"], tok, work / f"web{vocab}", BuildConfig())
    wiki = build_shards([text / "wikipedia-30-articles.txt"], tok, work / f"wiki{vocab}", BuildConfig())
    log(f"vocab {vocab}: web {web.source['tokens']:,} tokens, wiki {wiki.source['tokens']:,} tokens", quiet)
    budget = web.source["tokens"] + wiki.source["tokens"]
    recipe = MixRecipe([SourceSpec("web", str(work / f"web{vocab}"), weight=0.5), SourceSpec("wiki", str(work / f"wiki{vocab}"), weight=0.5)], budget)
    return build_manifest(recipe, work / f"mix{vocab}.json").path


def ratio(manifest) -> tuple[float, int, int]:
    from lmforge.tokenize.shards import ShardReader

    tokens = sum(s.tokens for src in manifest.sources for s in src.shards)
    nbytes = sum(s.bytes for src in manifest.sources for s in src.shards)
    with ShardReader(manifest.sources[0].shards[0].path) as r:
        itemsize = 2  # the baseline is always raw uint16 (what nanoGPT's train.bin holds)
        del r
    return nbytes / (tokens * itemsize), tokens, nbytes


def bench_loader(manifest, total_tokens: int, seq_len: int, seed: int) -> tuple[float, int]:
    """Tokens/s of windows read in trainer order; returns (rate, checksum)."""
    from lmforge.tokenize.shards import ShardReader

    rng = np.random.default_rng(seed)
    sources = manifest.sources
    weights = np.array([s.weight for s in sources])
    readers: dict[tuple[int, int], ShardReader] = {}
    ranges = [s.train_ranges() for s in sources]
    cursor = [[0, 0] for _ in sources]  # (range index, offset inside it)
    w = seq_len + 1
    n_windows = total_tokens // w
    picks = rng.choice(len(sources), size=n_windows, p=weights / weights.sum())
    check = 0
    t0 = time.perf_counter()
    for si in picks.tolist():
        ri, off = cursor[si]
        shard_i, start, end = ranges[si][ri]
        if start + off + w > end:  # the rest of this range is shorter than a window: next range
            ri = (ri + 1) % len(ranges[si])
            off = 0
            shard_i, start, end = ranges[si][ri]
        key = (si, shard_i)
        r = readers.get(key)
        if r is None:
            r = readers[key] = ShardReader(sources[si].shards[shard_i].path)
        window = r[start + off : start + off + w]
        check += int(window[-1])
        cursor[si] = [ri, off + w]
    dt = time.perf_counter() - t0
    for r in readers.values():
        r.close()
    return n_windows * w / dt, check


def bench_zstd(manifest, total_tokens: int) -> float:
    import zstandard

    from lmforge.tokenize.shards import ShardReader

    frames = []
    tokens = 0
    for src in manifest.sources:
        for s in src.shards:
            with ShardReader(s.path) as r:
                offs = r.frame_offsets.tolist()
            data = Path(s.path).read_bytes()
            frames.extend(data[offs[k] : offs[k + 1]] for k in range(len(offs) - 1))
            tokens += s.tokens
    dctx = zstandard.ZstdDecompressor()
    reps = max(1, total_tokens // tokens)
    t0 = time.perf_counter()
    for _ in range(reps):
        for f in frames:
            dctx.decompress(f)
    return reps * tokens / (time.perf_counter() - t0)


def bench_memmap(manifest, work: Path, total_tokens: int, seq_len: int, seed: int, batch: int = 8) -> float:
    from lmforge.tokenize.shards import ShardReader

    path = work / "train.bin"
    with open(path, "wb") as f:
        for src in manifest.sources:
            for s in src.shards:
                with ShardReader(s.path) as r:
                    f.write(r[:].astype(np.uint16).tobytes())
    n = path.stat().st_size // 2
    rng = np.random.default_rng(seed)
    w = seq_len + 1
    steps = total_tokens // (w * batch)
    t0 = time.perf_counter()
    for _ in range(steps):
        data = np.memmap(path, dtype=np.uint16, mode="r")  # nanoGPT re-creates it every batch
        ix = rng.integers(0, n - w, size=batch)
        x = np.stack([np.array(data[i : i + w]) for i in ix])
        del data, x
    return steps * batch * w / (time.perf_counter() - t0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print only the JSON result line")
    ap.add_argument("--tokens", type=int, default=20_000_000, help="tokens to read per loader measurement")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="keep tokenizers/shards here (default: a temporary folder)")
    args = ap.parse_args(argv)
    from lmforge.tokenize.mix import load_manifest

    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="lmforge-loader-")
        work = Path(tmp.name)
    q = args.json
    result: dict = {"bench": "loader", "seq_len": args.seq_len, "data": str(SHARED / "text")}
    for vocab, key in ((8192, "8k"), (32768, "32k")):
        m = load_manifest(prepare(work, vocab, q))
        rt, tokens, nbytes = ratio(m)
        result[f"ratio_{key}"] = round(rt, 4)
        result[f"tokens_{key}"] = tokens
        result[f"shard_bytes_{key}"] = nbytes
        log(f"vocab {vocab}: {nbytes:,} shard bytes for {tokens:,} tokens = {rt:.3f} of raw uint16", q)
        if vocab == 8192:
            loader, _ = bench_loader(m, args.tokens, args.seq_len, args.seed)
            zst = bench_zstd(m, args.tokens)
            raw = bench_memmap(m, work, args.tokens, args.seq_len, args.seed)
            result["loader_tokens_per_s"] = round(loader)
            result["zstd_decompress_tokens_per_s"] = round(zst)
            result["raw_memmap_tokens_per_s"] = round(raw)
            result["loader_vs_zstd"] = round(loader / zst, 3)
            log(f"loader {loader / 1e6:.0f}M tokens/s, zstd alone {zst / 1e6:.0f}M tokens/s ({loader / zst:.2f}x), raw memmap {raw / 1e6:.0f}M tokens/s", q)
    result["goal_ratio_8k_le_0.75"] = result["ratio_8k"] <= 0.75
    result["goal_loader_ge_half_zstd"] = result["loader_vs_zstd"] >= 0.5
    result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if tmp is not None:
        tmp.cleanup()
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
