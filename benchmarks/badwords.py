"""lmforge's C4 bad-words filter vs datatrove 0.10.1's `C4BadWordsFilter`, on real text.

datatrove downloads the LDNOOBW lists from GitHub; here it reads the lists lmforge ships
(its download function is pointed at `lmforge/corpus/filters/ldnoobw/`), so the comparison
is of the two implementations on the same lists. Documents: the 300 C4 documents and 30
Wikipedia articles of shared data (English) and the pages `lmforge corpus extract` takes from
the shared WARCs, each under its LID-176 language (pages in a language with no list pass on
both sides). Prints agreement, pages dropped per language on each side and CPU seconds (best
of --repeat) of each filter, then one JSON line.

    .venv/bin/python benchmarks/badwords.py          # table + JSON line
    .venv/bin/python benchmarks/badwords.py --json   # JSON line only
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from datatrove.data import Document  # noqa: E402

SHARED = Path(os.environ.get("LMFORGE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_documents(shared: Path = SHARED) -> list[tuple[str, str, str]]:
    """(source, language, text) of every document."""
    from lmforge.documents import find_document_files, iter_documents

    docs = [("c4", "en", json.loads(line)["text"]) for line in (shared / "text" / "c4-300-docs.jsonl").open(encoding="utf-8")]
    wiki = (shared / "text" / "wikipedia-30-articles.txt").read_text(encoding="utf-8")
    docs += [("wikipedia", "en", line) for line in wiki.splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        warcs = sorted(glob.glob(str(shared / "warc" / "*.warc.gz")))
        subprocess.run([sys.executable, "-m", "lmforge.cli", "corpus", "extract", *warcs, "-o", tmp, "--no-progress"],
                       check=True, stdout=subprocess.DEVNULL)
        for path in find_document_files([Path(tmp) / "documents"]):
            for rec in iter_documents(path):
                docs.append(("warc", rec.metadata.get("language") or "?", rec.text))
    return docs


def datatrove_filter():
    """datatrove's filter reading lmforge's list files instead of downloading them."""
    import datatrove.pipeline.filters.c4_filters as c4_filters
    from importlib import resources

    folder = resources.files("lmforge.corpus.filters").joinpath("ldnoobw")
    c4_filters.cached_asset_path_or_download = lambda url, **kw: str(folder.joinpath(url.rsplit("/", 1)[1] + ".txt"))
    return c4_filters.C4BadWordsFilter(fail_on_missing_language=False)


def decide(flt, lang: str, text: str) -> bool:
    result = flt.filter(Document(text=text, id="0", metadata={"language": lang}))
    return bool(result[0]) if isinstance(result, tuple) else bool(result)


def cpu_seconds(flt, docs, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _, lang, text in docs:
            decide(flt, lang, text)
        best = min(best, time.process_time() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs; the best is kept")
    args = parser.parse_args(argv)
    from lmforge.corpus.filters import C4BadWordsFilter

    docs = load_documents()
    ours, theirs = C4BadWordsFilter(fail_on_missing_language=False), datatrove_filter()
    dropped = collections.defaultdict(lambda: [0, 0, 0])  # (source, lang) -> docs, dropped ours, dropped theirs
    disagree = []
    for i, (source, lang, text) in enumerate(docs):
        a, b = decide(ours, lang, text), decide(theirs, lang, text)
        row = dropped[(source, lang)]
        row[0] += 1
        row[1] += not a
        row[2] += not b
        if a != b:
            disagree.append(i)
    t_ours, t_theirs = cpu_seconds(ours, docs, args.repeat), cpu_seconds(theirs, docs, args.repeat)
    result = {
        "benchmark": "badwords",
        "docs": len(docs),
        "mb": round(sum(len(t.encode()) for _, _, t in docs) / 1e6, 2),
        "agreement": round(1 - len(disagree) / len(docs), 4),
        "dropped_lmforge": sum(r[1] for r in dropped.values()),
        "dropped_datatrove": sum(r[2] for r in dropped.values()),
        "lmforge_cpu_s": round(t_ours, 4),
        "datatrove_cpu_s": round(t_theirs, 4),
        "speedup": round(t_theirs / t_ours, 1),
    }
    if not args.json:
        print(f"{'source':<10}{'language':>9}{'docs':>6}{'dropped (ours)':>16}{'dropped (datatrove)':>21}")
        for (source, lang), (n, a, b) in sorted(dropped.items()):
            print(f"{source:<10}{lang:>9}{n:>6}{a:>16}{b:>21}")
        print(f"disagreements: {disagree or 'none'}; CPU s (best of {args.repeat}): lmforge {t_ours:.3f}, datatrove {t_theirs:.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
