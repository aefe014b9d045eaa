"""Main-content extraction: lmforge vs trafilatura (as datatrove runs it) vs resiliparse.

Data: ../shared/data/extraction/article-extraction-benchmark/ (181 real pages, mostly 2019
English news; `ground-truth.json` maps id -> {url, articleBody}).

Decoding (the same str goes to every extractor), as a crawl reader would: the bytes as UTF-8
if they decode strictly, else the charset named in a <meta> tag, else resiliparse's
`detect_encoding`.

Metric, word-level F1 against `articleBody`, the same function for every extractor:
  * tokens: `re.findall(r"\\w+", text.lower())`; a token holding CJK characters (Han, kana,
    Hangul syllables) is split into single characters, since those scripts do not separate
    words by spaces;
  * precision = |ours ∩ truth| / |ours|, recall = |ours ∩ truth| / |truth|, with ∩ the multiset
    (bag) intersection; F1 = 2PR / (P + R), 0 when either side is empty;
  * the figure reported is the mean over pages (macro F1); mean precision and recall also.

Speed: single core, one process, no multiprocessing. Each extractor does one warm-up pass
(excluded), then `--repeats` timed passes over all pages, interleaved between extractors
(A B C, A B C, ...) so a noisy neighbour hurts all of them alike; the best pass counts.

Baseline: trafilatura with exactly datatrove's arguments
(`datatrove/pipeline/extractors/trafilatura.py`): `extract(html, favor_precision=True,
include_comments=False, deduplicate=True)`.

Usage: python benchmarks/extract.py [--json] [--repeats 3] [--limit N] [--data DIR] [--worst K]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = Path(
    os.environ.get("LMFORGE_SHARED_DATA", ROOT.parent / "shared" / "data")
) / "extraction" / "article-extraction-benchmark"

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def decode_html(data: bytes) -> str:
    """bytes -> str as a crawl reader would: UTF-8, else <meta charset>, else detection."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    match = _META_CHARSET.search(data[:8192])
    if match:
        try:
            return data.decode(match.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    return bytes_to_str(data, detect_encoding(data))


def tokens(text: str) -> list[str]:
    """Lowercased \\w+ tokens; tokens with CJK characters are split into characters."""
    out: list[str] = []
    for tok in _WORD.findall(text.lower()):
        if _CJK.search(tok):
            out.extend(tok)
        else:
            out.append(tok)
    return out


def word_prf(predicted: str, truth: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of the bag of words of `predicted` against `truth`."""
    p, t = Counter(tokens(predicted or "")), Counter(tokens(truth or ""))
    n_p, n_t = sum(p.values()), sum(t.values())
    if not n_p or not n_t:
        return (0.0, 0.0, 0.0) if n_p or n_t else (1.0, 1.0, 1.0)
    common = sum((p & t).values())
    if not common:
        return 0.0, 0.0, 0.0
    precision, recall = common / n_p, common / n_t
    return precision, recall, 2 * precision * recall / (precision + recall)


def load_pages(data_dir: Path, limit: int | None = None) -> list[tuple[str, str, str, str]]:
    """[(id, url, html str, ground-truth text)] sorted by id."""
    truth = json.loads((data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth):
        path = data_dir / "html" / f"{page_id}.html.gz"
        if not path.exists():
            continue
        html = decode_html(gzip.decompress(path.read_bytes()))
        pages.append((page_id, truth[page_id].get("url"), html, truth[page_id]["articleBody"]))
    return pages[:limit] if limit else pages


def _trafilatura(html: str, url: str | None) -> str:
    from trafilatura import extract

    return extract(html, favor_precision=True, include_comments=False, deduplicate=True) or ""


def _resiliparse(html: str, url: str | None) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True)


def _lmforge(html: str, url: str | None) -> str:
    from lmforge.corpus.extract import extract_main_text

    return extract_main_text(html, url)


EXTRACTORS = {"lmforge": _lmforge, "trafilatura": _trafilatura, "resiliparse": _resiliparse}


def run(pages, repeats: int = 3) -> tuple[dict, dict]:
    """Time every extractor (best of `repeats`, interleaved) and score its outputs."""
    outputs = {name: [fn(html, url) for _, url, html, _ in pages] for name, fn in EXTRACTORS.items()}
    best = {name: float("inf") for name in EXTRACTORS}
    for _ in range(repeats):
        for name, fn in EXTRACTORS.items():
            start = time.perf_counter()
            for _, url, html, _ in pages:
                fn(html, url)
            best[name] = min(best[name], time.perf_counter() - start)
    result: dict = {"pages": len(pages)}
    per_page: dict = {}
    for name in EXTRACTORS:
        scores = [word_prf(out, truth) for out, (_, _, _, truth) in zip(outputs[name], pages)]
        per_page[name] = scores
        n = len(scores)
        result[f"{name}_pages_per_s"] = round(n / best[name], 1)
        result[f"{name}_f1"] = round(sum(s[2] for s in scores) / n, 4)
        result[f"{name}_precision"] = round(sum(s[0] for s in scores) / n, 4)
        result[f"{name}_recall"] = round(sum(s[1] for s in scores) / n, 4)
    result["speedup"] = round(result["lmforge_pages_per_s"] / result["trafilatura_pages_per_s"], 2)
    result["repeats"] = repeats
    return result, {"outputs": outputs, "scores": per_page}


def _html_lang(html: str) -> str | None:
    import re

    m = re.search(r"<html[^>]*\blang=[\"']?([a-zA-Z]{2,3})", html[:4000], re.I)
    return m.group(1).lower() if m else None


def language_accuracy(pages, outputs: dict, data_root: Path) -> dict:
    """Language ID (LID-176, the model lmforge ships) on each extractor's text, against the
    page's known language.

    Known language: for the article benchmark, LID-176 on the human-written `articleBody`
    when it is confident (score >= 0.9); for the ClueWeb09 shop pages, Japanese; for the
    Common Crawl multilingual pages, the `<html lang>` the page declares. An empty
    extraction counts as a miss.
    """
    from lmforge.corpus.langid import LanguageIdentifier
    from lmforge.corpus.warc import iter_warc_pages

    lid = LanguageIdentifier()
    cases: list[tuple[str, dict[str, str]]] = []  # (known language, {extractor: text})
    for i, (_, _, _, truth) in enumerate(pages):
        lang, score = lid.predict(truth)
        if score >= 0.9:
            cases.append((lang, {name: outputs[name][i] for name in ("lmforge", "trafilatura")}))
    for name, fixed in (("clueweb09-ja-near-duplicates.warc.gz", "ja"), ("cc-main-2020-34-multilingual.warc.gz", None)):
        path = data_root / "warc" / name
        if not path.exists():
            continue
        for page in iter_warc_pages(str(path), {}):
            lang = fixed or _html_lang(page.content)
            if lang:
                cases.append((lang, {"lmforge": _lmforge(page.content, page.url), "trafilatura": _trafilatura(page.content, page.url)}))
    result: dict = {"lid_pages": len(cases), "lid_languages": {}}
    for extractor in ("lmforge", "trafilatura"):
        hits = 0
        for lang, texts in cases:
            predicted = lid.predict(texts[extractor])[0] if texts[extractor].strip() else None
            hits += predicted == lang
        result[f"{extractor}_lid_accuracy"] = round(hits / max(1, len(cases)), 4)
    for lang, _ in cases:
        result["lid_languages"][lang] = result["lid_languages"].get(lang, 0) + 1
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per extractor (best counts)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pages")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="benchmark folder")
    parser.add_argument("--worst", type=int, default=0, help="list the K pages where lmforge trails trafilatura most")
    args = parser.parse_args(argv)
    if not (args.data / "ground-truth.json").exists():
        print(f"benchmark data not found at {args.data} (set LMFORGE_SHARED_DATA or --data)", file=sys.stderr)
        return 2
    pages = load_pages(args.data, args.limit)
    result, detail = run(pages, args.repeats)
    result.update(language_accuracy(pages, detail["outputs"], args.data.parents[1]))
    if not args.json:
        print(f"{len(pages)} pages from {args.data}")
        print(f"{'extractor':<12} {'pages/s':>9} {'F1':>7} {'P':>7} {'R':>7}")
        for name in EXTRACTORS:
            print(
                f"{name:<12} {result[f'{name}_pages_per_s']:>9.1f} {result[f'{name}_f1']:>7.4f} "
                f"{result[f'{name}_precision']:>7.4f} {result[f'{name}_recall']:>7.4f}"
            )
        print(f"speedup over trafilatura: {result['speedup']}x")
        print(f"language ID on {result['lid_pages']} pages of known language {result['lid_languages']}: "
              f"lmforge {result['lmforge_lid_accuracy']:.4f}, trafilatura {result['trafilatura_lid_accuracy']:.4f}")
        if args.worst:
            gaps = sorted(
                range(len(pages)),
                key=lambda i: detail["scores"]["lmforge"][i][2] - detail["scores"]["trafilatura"][i][2],
            )
            for i in gaps[: args.worst]:
                lm, tr = detail["scores"]["lmforge"][i], detail["scores"]["trafilatura"][i]
                print(f"  {pages[i][0][:12]} lmforge P{lm[0]:.2f} R{lm[1]:.2f} F{lm[2]:.2f}  "
                      f"trafilatura F{tr[2]:.2f}  {pages[i][1]}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
