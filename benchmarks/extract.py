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

Development sets (issue 10): `--devsets DIR` (default `~/.cache/lmforge/devsets` or
$LMFORGE_DEVSETS, built by `benchmarks/devsets.py`) adds every family found there
(`<family>/truth.jsonl` + `<family>/pages/<id>.html`) to the shared news set (family `news`).
Per family and overall, for every extractor, in one run:
  * word F1: the metric above, mean over the family's pages whose truth is the whole main text;
    a page whose truth.jsonl line has `"word_f1": false` (its truth is partial: a recipe page's
    ingredients and steps, not the story around them) is scored by snippets only, and a family
    with no other pages reports word F1 as not applicable (null, printed '-');
  * snippet-F1, trafilatura's evaluation (`tests/comparison.py` / `evaluate.py`): every page
    has `with` snippets (main text that must be kept) and `without` snippets (boilerplate that
    must not be); both the output and the snippets are whitespace-normalized (every run of
    whitespace -> one space) and a snippet counts as present when it is a (case-sensitive)
    substring of the output. Summed over the pages of a family:
      true positives tp  = with-snippets found,     false negatives fn = with-snippets missing,
      false positives fp = without-snippets found,  true negatives  tn = without-snippets absent;
    precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2PR / (P + R) (micro, as
    trafilatura sums its counts over all pages). An empty output finds no snippet (all its
    with-snippets are fn, its without-snippets tn). The news set has no without-snippets: its
    with-snippets are made from `articleBody` by the devsets rule (the middle 8 words of every
    paragraph of >= 10 words, 5 spread over the article), so its precision is 1 unless empty;
  * pages/s (one core, interleaved, best of `--repeats`) and the count of empty outputs;
  * LID accuracy: LID-176 (`lmforge.corpus.langid.LanguageIdentifier().predict`) on each
    extractor's text against the page's known language (`language` in truth.jsonl: set only
    where the declared language and LID-176 on the ground truth agree; for news, LID-176 on
    `articleBody` when its score >= 0.9); an empty output counts as a miss;
  * lmforge's page-level language ID (`pageLID`), when lmforge.corpus.langid exposes
    `identify_page(identifier, main_text, html)`: LID from more of the page than the text;
  * lmforge's fallback rate, when lmforge.corpus.extract exposes `extract_main_text_with_info`
    (see `_lmforge_info`), else null.
The per-family table ends with `overall` (all pages: mean word F1, summed snippet counts, total
pages / total best time). The news figures above stay top-level keys of the JSON line; the
families are under `families`, the totals under `overall`.

Usage: python benchmarks/extract.py [--json] [--repeats 3] [--limit N] [--data DIR] [--worst K]
                                    [--devsets DIR] [--families news,docs-sphinx,...]
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = Path(
    os.environ.get("LMFORGE_SHARED_DATA", ROOT.parent / "shared" / "data")
) / "extraction" / "article-extraction-benchmark"

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def decode_declared(data: bytes) -> str | None:
    """bytes -> str by what the page says: UTF-8 when it decodes strictly, else the <meta>
    charset; None when neither (the caller picks the last resort)."""
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
    return None


def decode_html(data: bytes) -> str:
    """bytes -> str as a crawl reader would: UTF-8, else <meta charset>, else detection."""
    text = decode_declared(data)
    if text is not None:
        return text
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


def _clear_caches() -> None:
    """lmforge keeps a class-string cache across pages (as a crawl's pages share templates): a
    timed pass starts with it empty, like the first pass over a crawl."""
    from lmforge.corpus import extract

    getattr(extract, "clear_caches", lambda: None)()


EXTRACTORS = {"lmforge": _lmforge, "trafilatura": _trafilatura, "resiliparse": _resiliparse}


def run(pages, repeats: int = 3) -> tuple[dict, dict]:
    """Time every extractor (best of `repeats`, interleaved) and score its outputs."""
    outputs = {name: [fn(html, url) for _, url, html, _ in pages] for name, fn in EXTRACTORS.items()}
    best = {name: float("inf") for name in EXTRACTORS}
    for _ in range(repeats):
        for name, fn in EXTRACTORS.items():
            _clear_caches()
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


DEFAULT_DEVSETS = Path(os.environ.get("LMFORGE_DEVSETS", "~/.cache/lmforge/devsets")).expanduser()


@dataclass
class DevPage:
    """One page of any family, decoded, with its truth."""

    family: str
    id: str
    url: str | None
    html: str
    truth: str
    with_: list[str]
    without: list[str]
    language: str | None
    word_f1: bool = True  # False: the truth text is partial (devsets' `word_f1`), snippets only


def norm_ws(text: str) -> str:
    return " ".join(text.split())


def text_snippets(truth: str, k: int = 5) -> list[str]:
    """With-snippets from a plain ground truth, the rule of benchmarks/devsets.py: the middle 8
    words of each line of >= 10 words, or the middle 14 characters of a line of >= 20 written
    without spaces (CJK, Thai), `k` of them spread from the first line to the last."""
    flat = norm_ws(truth)
    found: list[str] = []
    for line in truth.splitlines():
        line = norm_ws(line)
        words = line.split()
        cjk = len(_CJK.findall(line)) > 0.3 * max(1, len(line.replace(" ", "")))
        spaced = not cjk and len(line) / max(1, len(words)) < 15
        if spaced and len(words) >= 10:
            snippet = " ".join(words[(len(words) - 8) // 2:][:8])
        elif not spaced and len(line) >= 20:
            snippet = line[len(line) // 2 - 7: len(line) // 2 + 7].strip()
        else:
            continue
        if snippet and snippet not in found and flat.count(snippet) == 1:
            found.append(snippet)
    if len(found) <= k:
        return found
    return [found[i] for i in sorted({round(j * (len(found) - 1) / (k - 1)) for j in range(k)})]


def load_news(data_dir: Path, limit: int | None = None) -> list[DevPage]:
    """The shared news benchmark as a family; language = LID-176 on articleBody if >= 0.9."""
    from lmforge.corpus.langid import LanguageIdentifier

    lid = LanguageIdentifier()
    out = []
    for page_id, url, html, truth in load_pages(data_dir, limit):
        lang, score = lid.predict(truth)
        out.append(DevPage("news", page_id, url, html, truth, text_snippets(truth), [], lang if score >= 0.9 else None))
    return out


def load_devsets(root: Path, families: list[str] | None, limit: int | None) -> list[DevPage]:
    """Every `<root>/<family>/truth.jsonl` (sorted by family), first `limit` pages of each."""
    out: list[DevPage] = []
    for truth_path in sorted(root.glob("*/truth.jsonl")):
        family = truth_path.parent.name
        if families is not None and family not in families:
            continue
        lines = truth_path.read_text(encoding="utf-8").splitlines()
        for line in lines[:limit] if limit else lines:
            rec = json.loads(line)
            html = decode_html((truth_path.parent / "pages" / f"{rec['id']}.html").read_bytes())
            out.append(DevPage(family, rec["id"], rec.get("url"), html, rec["text"], rec.get("with", []),
                               rec.get("without", []), rec.get("language"), rec.get("word_f1", True)))
    return out


def snippet_counts(output: str, page: DevPage) -> tuple[int, int, int, int]:
    """(tp, fn, fp, tn) of one page, trafilatura's way (see the module docstring)."""
    text = norm_ws(output or "")
    found_with = sum(1 for s in page.with_ if text and norm_ws(s) in text)
    found_without = sum(1 for s in page.without if text and norm_ws(s) in text)
    return found_with, len(page.with_) - found_with, found_without, len(page.without) - found_without


def snippet_prf(tp: int, fn: int, fp: int, tn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


def _lmforge_info(html: str, url: str | None) -> tuple[str, bool | None]:
    """lmforge's text and whether it took the fallback path (None: the extractor does not say).

    Hook for the confidence + fallback extractor: when lmforge.corpus.extract exposes
    `extract_main_text_with_info(html, url) -> (text, info)`, `info` (a dict or an object) is
    read for `path` / `fallback`; any path naming a fallback or trafilatura counts.
    """
    from lmforge.corpus import extract as lm_extract

    with_info = getattr(lm_extract, "extract_main_text_with_info", None)
    if with_info is None:
        return lm_extract.extract_main_text(html, url), None
    text, info = with_info(html, url)
    get = info.get if isinstance(info, dict) else (lambda key, default=None: getattr(info, key, default))
    flag = get("fallback", None)
    if flag is None:
        path = str(get("path", "") or "")
        flag = "fallback" in path or "trafilatura" in path
    return text or "", bool(flag)


def run_families(pages: list[DevPage], repeats: int = 3) -> tuple[dict, dict]:
    """Outputs (the warm-up pass), interleaved timing per family, then every metric."""
    from lmforge.corpus.langid import LanguageIdentifier

    lid = LanguageIdentifier()
    families = sorted({p.family for p in pages}, key=lambda f: (f != "news", f))
    outputs: dict[str, list[str]] = {name: [] for name in EXTRACTORS}
    fallback: list[bool | None] = []
    for page in pages:
        text, used = _lmforge_info(page.html, page.url)
        outputs["lmforge"].append(text)
        fallback.append(used)
        for name in ("trafilatura", "resiliparse"):
            outputs[name].append(EXTRACTORS[name](page.html, page.url))
    seconds = {(f, name): float("inf") for f in families for name in EXTRACTORS}
    for family in families:
        subset = [p for p in pages if p.family == family]
        for _ in range(repeats):
            for name, fn in EXTRACTORS.items():
                _clear_caches()
                start = time.perf_counter()
                for page in subset:
                    fn(page.html, page.url)
                seconds[family, name] = min(seconds[family, name], time.perf_counter() - start)
    detail = {"outputs": outputs, "word": {}, "lid": {}}
    # page-level language ID (issue 10 item 2), used when lmforge.corpus.langid has it:
    # identify_page(identifier, main_text, html) -> decision with .language
    from lmforge.corpus import langid as lm_langid

    identify_page = getattr(lm_langid, "identify_page", None)
    page_lid = [
        (identify_page(lid, out, p.html).language == p.language) if identify_page and p.language else None
        for out, p in zip(outputs["lmforge"], pages)
    ]
    for name in EXTRACTORS:
        detail["word"][name] = [word_prf(out, p.truth) for out, p in zip(outputs[name], pages)]
        detail["lid"][name] = [
            (lid.predict(out)[0] if out.strip() else None) == p.language if p.language else None
            for out, p in zip(outputs[name], pages)
        ]
    result = {}
    for group in families + ["overall"]:
        idx = [i for i, p in enumerate(pages) if group in ("overall", p.family)]
        row: dict = {"pages": len(idx)}
        langs = Counter(pages[i].language for i in idx if pages[i].language)
        row["lid_pages"] = sum(langs.values())
        row["languages"] = dict(sorted(langs.items()))
        for name in EXTRACTORS:
            secs = sum(seconds[f, name] for f in families if group in ("overall", f))
            words = [detail["word"][name][i] for i in idx if pages[i].word_f1]
            counts = [snippet_counts(outputs[name][i], pages[i]) for i in idx]
            tp, fn, fp, tn = (sum(c[k] for c in counts) for k in range(4))
            sp, sr, sf = snippet_prf(tp, fn, fp, tn)
            hits = [detail["lid"][name][i] for i in idx if detail["lid"][name][i] is not None]
            row[name] = {
                "pages_per_s": round(len(idx) / secs, 1) if secs else None,
                "f1": round(sum(w[2] for w in words) / len(words), 4) if words else None,
                "precision": round(sum(w[0] for w in words) / len(words), 4) if words else None,
                "recall": round(sum(w[1] for w in words) / len(words), 4) if words else None,
                "snippet_f1": round(sf, 4), "snippet_precision": round(sp, 4), "snippet_recall": round(sr, 4),
                "snippets": {"tp": tp, "fn": fn, "fp": fp, "tn": tn},
                "empty": sum(1 for i in idx if not outputs[name][i].strip()),
                "lid_accuracy": round(sum(hits) / len(hits), 4) if hits else None,
            }
        page_hits = [page_lid[i] for i in idx if page_lid[i] is not None]
        row["lmforge"]["page_lid_accuracy"] = round(sum(page_hits) / len(page_hits), 4) if page_hits else None
        flags = [fallback[i] for i in idx if fallback[i] is not None]
        row["lmforge"]["fallback_rate"] = round(sum(flags) / len(flags), 4) if flags else None
        row["word_f1_pages"] = sum(1 for i in idx if pages[i].word_f1)
        row["f1_gap"] = (round(row["lmforge"]["f1"] - row["trafilatura"]["f1"], 4)
                         if row["word_f1_pages"] else None)
        row["snippet_f1_gap"] = round(row["lmforge"]["snippet_f1"] - row["trafilatura"]["snippet_f1"], 4)
        result[group] = row
    return result, detail


def print_family_table(name: str, row: dict) -> None:
    langs = ", ".join(f"{k} {v}" for k, v in row["languages"].items())
    print(f"\n{name}: {row['pages']} pages; language known on {row['lid_pages']} ({langs})")
    print(f"  {'extractor':<12} {'pages/s':>8} {'F1':>7} {'snipP':>7} {'snipR':>7} {'snipF1':>7} {'empty':>6} "
          f"{'LID':>7} {'pageLID':>8} {'fallback':>9}")

    def fmt(value, width):
        return f"{value:>{width}.4f}" if value is not None else f"{'-':>{width}}"

    for ext in EXTRACTORS:
        r = row[ext]
        print(f"  {ext:<12} {r['pages_per_s'] or 0:>8.1f} {fmt(r['f1'], 7)} {r['snippet_precision']:>7.4f} "
              f"{r['snippet_recall']:>7.4f} {r['snippet_f1']:>7.4f} {r['empty']:>6} {fmt(r['lid_accuracy'], 7)} "
              f"{fmt(r.get('page_lid_accuracy'), 8)} {fmt(r.get('fallback_rate'), 9)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per extractor (best counts)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pages of each family")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="news benchmark folder")
    parser.add_argument("--devsets", type=Path, default=DEFAULT_DEVSETS, help="development sets (benchmarks/devsets.py)")
    parser.add_argument("--families", default=None, help="comma-separated families (news and devsets' folders); default all")
    parser.add_argument("--worst", type=int, default=0, help="list the K pages where lmforge trails trafilatura most")
    args = parser.parse_args(argv)
    wanted = set(args.families.split(",")) if args.families else None
    pages: list[DevPage] = []
    if wanted is None or "news" in wanted:
        if (args.data / "ground-truth.json").exists():
            pages.extend(load_news(args.data, args.limit))
        else:
            print(f"news benchmark not found at {args.data} (set LMFORGE_SHARED_DATA or --data); skipped", file=sys.stderr)
    if args.devsets.is_dir():
        pages.extend(load_devsets(args.devsets, None if wanted is None else sorted(wanted - {"news"}), args.limit))
    elif args.families and wanted - {"news"}:
        print(f"development sets not found at {args.devsets} (run benchmarks/devsets.py)", file=sys.stderr)
    if not pages:
        print("no pages to benchmark", file=sys.stderr)
        return 2
    families, detail = run_families(pages, args.repeats)
    result: dict = {}
    if "news" in families:  # the news benchmark's historical keys, from the same outputs and timing
        news = families["news"]
        result["pages"] = news["pages"]
        for name in EXTRACTORS:
            for key in ("pages_per_s", "f1", "precision", "recall"):
                result[f"{name}_{key}"] = news[name][key]
        result["speedup"] = round(result["lmforge_pages_per_s"] / result["trafilatura_pages_per_s"], 2)
        result["repeats"] = args.repeats
        idx = [i for i, p in enumerate(pages) if p.family == "news"]
        legacy = [(pages[i].id, pages[i].url, pages[i].html, pages[i].truth) for i in idx]
        outs = {name: [detail["outputs"][name][i] for i in idx] for name in EXTRACTORS}
        result.update(language_accuracy(legacy, outs, args.data.parents[1]))
    result["families"] = {k: v for k, v in families.items() if k != "overall"}
    result["overall"] = families["overall"]
    result["worst_family_f1_gap"] = min((v["f1_gap"] for v in result["families"].values() if v["f1_gap"] is not None),
                                        default=None)
    result["worst_family_snippet_f1_gap"] = min(v["snippet_f1_gap"] for v in result["families"].values())
    if not args.json:
        if "news" in families:
            print(f"news: {result['pages']} pages from {args.data}; speedup over trafilatura {result['speedup']}x; "
                  f"language ID on {result['lid_pages']} pages (+ warc pages) {result['lid_languages']}: "
                  f"lmforge {result['lmforge_lid_accuracy']:.4f}, trafilatura {result['trafilatura_lid_accuracy']:.4f}")
        for name, row in families.items():
            print_family_table(name, row)
        print(f"\nword F1 ('-') is not scored on pages whose truth is partial (devsets' word_f1 false)"
              if any(not p.word_f1 for p in pages) else "")
        print(f"worst family gap lmforge - trafilatura: F1 {result['worst_family_f1_gap'] or 0:+.4f}, "
              f"snippet-F1 {result['worst_family_snippet_f1_gap']:+.4f}")
        if args.worst:
            gaps = sorted((i for i in range(len(pages)) if pages[i].word_f1), key=lambda i: detail["word"]["lmforge"][i][2] - detail["word"]["trafilatura"][i][2])
            for i in gaps[: args.worst]:
                lm, tr = detail["word"]["lmforge"][i], detail["word"]["trafilatura"][i]
                print(f"  {pages[i].family[:12]:<12} {pages[i].id[:28]:<28} lmforge P{lm[0]:.2f} R{lm[1]:.2f} F{lm[2]:.2f}  "
                      f"trafilatura F{tr[2]:.2f}  {pages[i].url or ''}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
