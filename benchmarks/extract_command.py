"""The whole `lmforge corpus extract` command against trafilatura called as a library, on the same pages.

Pages: the shared news benchmark (181 pages) and every development-set family built by
`benchmarks/devsets.py` (cache folder, or `--devsets`). They are written once into one WARC
file (gzip per record, an HTTP response each, as a crawl holds them), so the command does
what it does on a crawl: read the WARC, decode, extract (fast path, trafilatura fallback on
low-confidence pages), identify the language, write zstd JSONL.

  * lmforge: `lmforge corpus extract PAGES.warc.gz -o OUT --tasks 1 --workers 1` in a fresh
    process, timed from start to exit (interpreter start, imports and the LID model load
    included);
  * trafilatura: the same pages' bytes decoded as the benchmark decodes them, then
    `trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)`
    (datatrove's arguments) in a loop, after a warm-up page: extraction only, no WARC
    reading, no language ID, no writing, so the comparison favours trafilatura.

One core each. Prints one JSON line last (`--json`: only that): pages/s of both, the ratio,
and the command's `extract_paths` (pages per path: fast, fallback) from its stats.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LMFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
NEWS = SHARED / "extraction" / "article-extraction-benchmark"
DEVSETS = Path.home() / ".cache" / "lmforge" / "devsets"


def pages(devsets: Path) -> list[tuple[str, bytes]]:
    """(url, raw HTML bytes) of the news benchmark and every built dev-set family."""
    out = []
    if (NEWS / "html").is_dir():
        for path in sorted((NEWS / "html").iterdir()):
            raw = path.read_bytes()
            out.append((f"https://news.example/{path.name}", gzip.decompress(raw) if path.suffix == ".gz" else raw))
    for family in sorted(p for p in devsets.glob("*") if (p / "truth.jsonl").is_file()):
        for path in sorted((family / "pages").iterdir()):
            out.append((f"https://{family.name}.example/{path.name}", path.read_bytes()))
    return out


def write_warc(path: Path, items: list[tuple[str, bytes]]) -> None:
    with open(path, "wb") as f:
        for i, (url, body) in enumerate(items):
            http = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{i:012d}>\r\n"
                    f"WARC-Date: 2026-01-01T00:00:00Z\r\nWARC-Target-URI: {url}\r\nContent-Type: application/http; msgtype=response\r\n"
                    f"Content-Length: {len(http)}\r\n\r\n").encode()
            f.write(gzip.compress(head + http + b"\r\n\r\n", mtime=0))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devsets", type=Path, default=DEVSETS)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from extract import decode_html  # the same decoding as the extraction benchmark

    items = pages(args.devsets)
    if not items:
        sys.exit(f"no pages: neither {NEWS} nor {args.devsets} holds any")
    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "pages.warc.gz"
        write_warc(warc, items)
        out = Path(tmp) / "out"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "lmforge.cli", "corpus", "extract", str(warc), "-o", str(out), "--tasks", "1", "--workers", "1"]
        t = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lmforge_s = time.perf_counter() - t
        if done.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        stats = json.loads((out / "stats.json").read_text())
        log(f"lmforge corpus extract: {len(items)} pages in {lmforge_s:.1f} s")
    import trafilatura

    htmls = [decode_html(body) for _, body in items]
    trafilatura.extract(htmls[0], favor_precision=True, include_comments=False, deduplicate=True)
    t = time.perf_counter()
    for html in htmls:
        trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)
    trafilatura_s = time.perf_counter() - t
    log(f"trafilatura.extract: {len(items)} pages in {trafilatura_s:.1f} s")
    summary = stats.get("summary", stats)
    result = {
        "benchmark": "extract_command", "pages": len(items),
        "lmforge_pages_per_s": round(len(items) / lmforge_s, 1), "trafilatura_pages_per_s": round(len(items) / trafilatura_s, 1),
        "speedup": round(trafilatura_s / lmforge_s, 2), "extract_paths": summary.get("extract_paths"),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
