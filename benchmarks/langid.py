"""Language ID on multilingual documentation pages: main text alone vs `identify_page`.

Data: HTML pages whose language is known from their source, either
  * `--debian DIR`: Debian documentation packages unpacked into DIR (see below): the
    language comes from the file or folder name (`ch01.fr.html`, `installation-guide-amd64/ca/`);
    a translated page whose paragraphs are mostly the English page's own paragraphs verbatim
    (an untranslated chapter) is left out, since its true label is English or both;
  * `--truth FILE`: a `truth.jsonl` of the development sets (one JSON object per page with
    `language` and the page's path under `path`/`file`/`html`, relative to the file's folder,
    or an `id` whose page is `pages/<id>.html`: the layout benchmarks/devsets.py writes).

    mkdir -p /tmp/deb && cd /tmp/deb && apt-get download debian-reference-{en,de,es,fr,id,it,ja,pt,zh-cn} \
        installation-guide-amd64 debian-faq && for f in *.deb; do dpkg-deb -x $f x; done

Each page is classified several ways, old (`LanguageIdentifier.predict` on the main text, as
lmforge did before) against new (`identify_page`: main text, page text, declared language):
  * `extract`: the main text of lmforge's extractor (`extract_main_text`);
  * `code`:    the page's longest `<pre>` block as the main text (an extractor that picked a
               code block; pages without one are skipped);
  * `note`:    the page's shortest paragraph of 15+ characters (an extractor that picked a
               one-line note);
  * `empty`:   no main text at all.
The last three simulate the extractor failures seen on unseen documentation pages, so the
figure does not depend on how good the current extractor is on these pages.

Cost: the extra milliseconds per page of `identify_page` over `predict` (one pass, same
process), over all pages and over the pages where the page text was read.

With no `--debian`/`--truth`, every `*/truth.jsonl` of the development sets is read
(`$LMFORGE_DEVSETS`, default ~/.cache/lmforge/devsets, built by benchmarks/devsets.py), if any.
The shared news benchmark (../shared/data/extraction/article-extraction-benchmark, no language
truth) is always added: how often its pages read the page text, the cost, and how many labels
change against the old way (`--no-news` leaves it out). The last line printed is the result as
one JSON line.

Usage: python benchmarks/langid.py [--debian /tmp/deb/x] [--truth FILE] [--limit N] [--json] [--errors K]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

CASES = ("extract", "code", "note", "empty")


def _read(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def _lang(code: str) -> str:
    code = code.lower().replace("_", "-")
    return code.split("-")[0]


def _paragraphs(html: str) -> list[str]:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    return [" ".join(p.text().split()) for p in tree.css("p")]


def _untranslated(html: str, english: str | None) -> bool:
    """Most of the page's paragraphs appear verbatim in the English page: not translated."""
    if english is None:
        return False
    ours = [p for p in _paragraphs(html) if len(p) >= 40]
    if not ours:
        return False
    theirs = set(_paragraphs(english))
    return sum(p in theirs for p in ours) > 0.5 * len(ours)


def debian_pages(root: Path) -> tuple[list[tuple[str, str, str]], int]:
    """(name, language, html) for the Debian documentation under `root`, and how many were
    left out as untranslated."""
    pages: list[tuple[str, str, str]] = []
    skipped = 0
    ref = root / "usr/share/debian-reference"
    for path in sorted(ref.glob("*.*.html")):
        lang = path.name.split(".")[-2]
        if lang == "en":
            continue
        english = ref / path.name.replace(f".{lang}.html", ".en.html")
        html = _read(path)
        if _untranslated(html, _read(english) if english.is_file() else None):
            skipped += 1
            continue
        pages.append((str(path.relative_to(root)), _lang(lang), html))
    guide = root / "usr/share/doc/installation-guide-amd64"
    if guide.is_dir():
        for folder in sorted(p for p in guide.iterdir() if p.is_dir()):
            for path in sorted(folder.glob("*.html*")):
                html = _read(path)
                english = guide / "en" / path.name
                if folder.name != "en" and _untranslated(html, _read(english) if english.is_file() else None):
                    skipped += 1
                    continue
                pages.append((str(path.relative_to(root)), _lang(folder.name), html))
    for path in sorted((root / "usr/share/doc/debian/FAQ").glob("*.en.html*")):
        pages.append((str(path.relative_to(root)), "en", _read(path)))
    return pages, skipped


def truth_pages(truth: Path) -> list[tuple[str, str, str]]:
    pages = []
    for line in truth.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        rel = row.get("path") or row.get("file") or row.get("html") or (f"pages/{row['id']}.html" if row.get("id") else None)
        if not rel or not row.get("language"):
            continue
        path = truth.parent / rel
        if path.is_file():
            pages.append((rel, _lang(row["language"]), _read(path)))
    return pages


NEWS = Path(__file__).resolve().parents[1].parent / "shared/data/extraction/article-extraction-benchmark/html"


def news_check(ident) -> dict:
    """Evidence counts, ms per page and changed labels on the shared news pages (all prose)."""
    from lmforge.corpus.extract import extract_main_text
    from lmforge.corpus.langid import identify_page

    pages = [_read(path) for path in sorted(NEWS.glob("*.html.gz"))]
    texts = [extract_main_text(html) for html in pages]
    t_old = t_new = 0.0
    evidence: Counter = Counter()
    changed = []
    for html, text in zip(pages, texts):
        t0 = time.perf_counter()
        old = ident.predict(text)
        t1 = time.perf_counter()
        new = identify_page(ident, text, html)
        t2 = time.perf_counter()
        t_old, t_new = t_old + t1 - t0, t_new + t2 - t1
        evidence[new.evidence] += 1
        if new.language != old[0]:
            changed.append((old[0], new.language, text[:60]))
    n = max(len(pages), 1)
    return {"pages": len(pages), "evidence": dict(evidence), "changed": len(changed), "changed_examples": changed[:5],
            "ms_per_page": {"old": round(1000 * t_old / n, 3), "new": round(1000 * t_new / n, 3)}}


def cases(html: str, main: str) -> dict[str, str]:
    """The main text each simulated extractor would give."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    out = {"extract": main, "empty": ""}
    pres = [node.text() for node in tree.css("pre")]
    if pres:
        out["code"] = max(pres, key=len)
    notes = sorted((t for t in _paragraphs(html) if len(t) >= 15), key=len)
    if notes:
        out["note"] = notes[0]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--debian", type=Path, help="folder the Debian documentation packages were unpacked into")
    ap.add_argument("--truth", type=Path, action="append", default=[], help="a development set's truth.jsonl (repeatable)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many pages (0: all)")
    ap.add_argument("--errors", type=int, default=0, help="print this many wrong new labels per case")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-news", dest="news", action="store_false", help="leave out the shared news benchmark")
    args = ap.parse_args(argv)

    from lmforge.corpus.extract import extract_main_text
    from lmforge.corpus.langid import EVIDENCE_MAIN, LanguageIdentifier, identify_page

    pages: list[tuple[str, str, str]] = []
    skipped = 0
    if args.debian:
        found, skipped = debian_pages(args.debian)
        pages += found
    if not args.debian and not args.truth:
        devsets = Path(os.environ.get("LMFORGE_DEVSETS", "~/.cache/lmforge/devsets")).expanduser()
        args.truth = sorted(devsets.glob("*/truth.jsonl"))
    for truth in args.truth:
        pages += truth_pages(truth)
    if not pages and not (args.news and NEWS.is_dir()):
        ap.error("no pages: give --debian DIR and/or --truth FILE (or build the sets: benchmarks/devsets.py)")
    if args.limit:
        pages = pages[:: max(1, len(pages) // args.limit)][: args.limit]

    ident = LanguageIdentifier()
    ident.predict("warm up")
    right: dict[str, Counter] = defaultdict(Counter)
    evidence: dict[str, Counter] = defaultdict(Counter)
    errors: dict[str, list] = defaultdict(list)
    t_old = t_new = t_new_page = 0.0
    n_page = 0
    for name, lang, html in pages:
        main_text = extract_main_text(html)
        for case, text in cases(html, main_text).items():
            t0 = time.perf_counter()
            old = ident.predict(text)[0] if text.strip() else "unknown"
            t1 = time.perf_counter()
            new = identify_page(ident, text, html)
            t2 = time.perf_counter()
            right[case]["pages"] += 1
            right[case]["old"] += old == lang
            right[case]["new"] += new.language == lang
            evidence[case][new.evidence] += 1
            if new.language != lang:
                errors[case].append((name, lang, new.language, round(new.score, 2), new.evidence, text[:60]))
            if case == "extract":
                t_old += t1 - t0
                t_new += t2 - t1
                if new.evidence != EVIDENCE_MAIN:
                    n_page += 1
                    t_new_page += (t2 - t1) - (t1 - t0)
    n = max(len(pages), 1)
    langs = Counter(lang for _, lang, _ in pages)
    result = {
        "pages": n,
        "left_out_untranslated": skipped,
        "languages": dict(sorted(langs.items())),
        "accuracy": {
            case: {"pages": c["pages"], "old": round(c["old"] / c["pages"], 4), "new": round(c["new"] / c["pages"], 4)}
            for case, c in right.items()
        },
        "evidence": {case: dict(c) for case, c in evidence.items()},
        "ms_per_page": {
            "old": round(1000 * t_old / n, 3),
            "new": round(1000 * t_new / n, 3),
            "extra_where_page_read": round(1000 * t_new_page / max(n_page, 1), 3),
            "pages_page_read": n_page,
        },
    }
    if args.news and NEWS.is_dir():
        result["news"] = news_check(ident)
    if not args.json:
        print(f"{n} pages, {len(langs)} languages ({skipped} untranslated pages left out): "
              + ", ".join(f"{k} {v}" for k, v in sorted(langs.items())))
        print(f"{'main text':10} {'pages':>6} {'old':>7} {'new':>7}   evidence (new)")
        for case in CASES:
            if case in right:
                a = result["accuracy"][case]
                ev = ", ".join(f"{k} {v}" for k, v in evidence[case].most_common())
                print(f"{case:10} {a['pages']:6d} {a['old']:7.4f} {a['new']:7.4f}   {ev}")
        ms = result["ms_per_page"]
        print(f"ms/page on the extractor's text: old {ms['old']}, new {ms['new']}; "
              f"{ms['pages_page_read']} pages read the page text, +{ms['extra_where_page_read']} ms each")
        if "news" in result:
            news = result["news"]
            print(f"news: {news['pages']} pages, evidence {news['evidence']}, {news['changed']} labels changed, "
                  f"ms/page old {news['ms_per_page']['old']}, new {news['ms_per_page']['new']}")
    for case in CASES:
        for row in errors[case][: args.errors]:
            print(case, *row, file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
