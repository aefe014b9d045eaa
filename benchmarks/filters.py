"""lmforge's FineWeb quality filters vs datatrove 0.10.1's, on real text.

Runs each filter (Gopher repetition, Gopher quality, C4 quality with FineWeb's settings,
FineWeb quality) from both libraries, with the same thresholds, over the 300 C4 documents and
30 Wikipedia articles in shared data; prints per-filter keep/drop agreement and the docs/s of
each whole chain, then one JSON line. datatrove's filters need spaCy (`pip install spacy`).

    .venv/bin/python benchmarks/filters.py          # table + JSON line
    .venv/bin/python benchmarks/filters.py --json   # JSON line only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# run as a script, this folder comes first on sys.path, where benchmarks/tokenize.py would
# shadow the standard library's tokenize module (which spaCy -> torch -> linecache needs)
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from datatrove.data import Document  # noqa: E402

SHARED = Path(os.environ.get("LMFORGE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_texts(shared: Path = SHARED) -> list[str]:
    texts = [json.loads(line)["text"] for line in (shared / "text" / "c4-300-docs.jsonl").open(encoding="utf-8")]
    wiki = (shared / "text" / "wikipedia-30-articles.txt").read_text(encoding="utf-8")
    texts += [line for line in wiki.splitlines() if line.strip()]
    return texts


def filter_pairs():
    """[(name, lmforge filter, datatrove filter)] with FineWeb's thresholds on both sides."""
    from datatrove.pipeline.filters import (
        C4QualityFilter as DtC4,
        FineWebQualityFilter as DtFineWeb,
        GopherQualityFilter as DtGopherQuality,
        GopherRepetitionFilter as DtGopherRepetition,
    )

    from lmforge.corpus.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    return [
        ("gopher_repetition", GopherRepetitionFilter(), DtGopherRepetition()),
        ("gopher_quality", GopherQualityFilter(), DtGopherQuality()),
        ("c4_quality", C4QualityFilter(), DtC4(filter_no_terminal_punct=False)),
        ("fineweb_quality", FineWebQualityFilter(), DtFineWeb()),
    ]


def _decide(flt, text: str) -> tuple[bool, str | None, str]:
    doc = Document(text=text, id="0")
    result = flt.filter(doc)
    if isinstance(result, tuple):
        return bool(result[0]), result[1] if len(result) > 1 else None, doc.text
    return bool(result), None, doc.text


def compare(texts: list[str]) -> dict:
    """Per filter: fraction of documents where both keep or both drop (each filter sees the
    same raw text), the disagreements, and drop counts on each side."""
    pairs = filter_pairs()
    decisions = {name: ([], []) for name, _, _ in pairs}
    # document by document, the word-based filters one after another and C4 (per-line sentences)
    # last: datatrove caches a text's spaCy words (lru_cache(5) on split_into_parts), so each
    # document is split once, not three times (~60% of this function's time; same decisions)
    word_based_first = sorted(pairs, key=lambda pair: pair[0] == "c4_quality")
    for t in texts:
        for name, ours, theirs in word_based_first:
            decisions[name][0].append(_decide(ours, t))
            decisions[name][1].append(_decide(theirs, t))
    out = {}
    for name, _, _ in pairs:
        mine, ref = decisions[name]
        agree = sum(a[0] == b[0] for a, b in zip(mine, ref))
        out[name] = {
            "agreement": agree / len(texts),
            "dropped_lmforge": sum(not a[0] for a in mine),
            "dropped_datatrove": sum(not b[0] for b in ref),
            "disagreements": [(i, a[1], b[1]) for i, (a, b) in enumerate(zip(mine, ref)) if a[0] != b[0]],
        }
    return out


def run_chain(filters, texts: list[str]) -> tuple[int, float]:
    """Documents kept by the chain (each filter sees what the previous one kept) and seconds."""
    start = time.perf_counter()
    kept = 0
    for text in texts:
        doc = Document(text=text, id="0")
        for flt in filters:
            result = flt.filter(doc)
            if not (result is True or (isinstance(result, tuple) and result[0])):
                break
        else:
            kept += 1
    return kept, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    args = parser.parse_args(argv)
    try:
        import spacy  # noqa: F401
    except ImportError:
        print("datatrove's filters need spaCy here: .venv/bin/pip install spacy", file=sys.stderr)
        return 2
    texts = load_texts()
    agreement = compare(texts)
    pairs = filter_pairs()
    ours = [p[1] for p in pairs]
    theirs = [p[2] for p in pairs]
    run_chain(theirs, texts[:5])  # load spaCy before timing
    kept_ours, t_ours = run_chain(ours, texts)
    kept_theirs, t_theirs = run_chain(theirs, texts)
    result = {
        "benchmark": "filters",
        "docs": len(texts),
        "lmforge_docs_per_s": round(len(texts) / t_ours, 1),
        "datatrove_docs_per_s": round(len(texts) / t_theirs, 1),
        "speedup": round(t_theirs / t_ours, 1),
        "kept_lmforge": kept_ours,
        "kept_datatrove": kept_theirs,
        "agreement": {name: round(v["agreement"], 4) for name, v in agreement.items()},
    }
    if not args.json:
        print(f"{'filter':<20}{'agreement':>10}{'dropped (ours)':>16}{'dropped (datatrove)':>21}")
        for name, v in agreement.items():
            print(f"{name:<20}{v['agreement']:>10.4f}{v['dropped_lmforge']:>16}{v['dropped_datatrove']:>21}")
            for i, mine, ref in v["disagreements"]:
                print(f"    doc {i}: lmforge {mine or 'keep'} / datatrove {ref or 'keep'}")
        print(
            f"chain: lmforge {result['lmforge_docs_per_s']} docs/s, datatrove {result['datatrove_docs_per_s']} docs/s "
            f"({result['speedup']}x); kept {kept_ours} vs {kept_theirs} of {len(texts)}"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
