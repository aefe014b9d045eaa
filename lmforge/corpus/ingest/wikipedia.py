"""`corpus ingest wikipedia`: MediaWiki XML dumps -> plain-text articles.

Input: `pages-articles*.xml.bz2` (or `.xml`, `.xml.gz`) of any wiki and language, streamed
with `xml.etree.ElementTree.iterparse` (bz2/gzip decompressed on the fly); each `<page>` is
cleared once read, so memory stays at one page whatever the dump's size. The dump's
`<siteinfo>` gives the namespace names (localised: `Файл`, `Категория` on bgwiki), the
language (`dbname` `bgwiki` -> `bg`, else the `<base>` host, else `<mediawiki xml:lang>`) and
the base URL of each article's `url`. Encodings other than UTF-8 (gensim's bgwiki sample is
UTF-16) are read through the XML declaration / byte-order mark.

What is dropped, per page (stats.json `dropped_<reason>`), as LLaMA §2.1 ("we remove hyperlinks,
comments and other formatting boilerplate") and RedPajama/Dolma (WikiExtractor) did:

    namespace        not in `--namespaces` (default 0: articles; Talk, User, Wikipedia,
                     File, Template, Category ... pages never become documents)
    redirect         a `<redirect>` element, or text starting `#REDIRECT` (localised too)
    disambiguation   a disambiguation template at the top level ({{disambiguation}}, {{disambig}},
                     {{dab}}, {{disamb}}, {{hndis}}, {{geodis}}, {{numberdis}}, {{mathdab}}, ...
                     and the bg/de/fr/es/it/nl/pl/pt/ru/ja/zh names in `DISAMBIGUATION_TEMPLATES`),
                     the `__DISAMBIG__` magic word, or the category "Disambiguation pages" /
                     "All disambiguation pages" (the categories enwiki's templates add)
    empty            no text left after cleaning (a page of templates only)
    bad_record       a `<page>` without title, id or text (counted and skipped; a broken
                     XML stream ends that file as `truncated_file`, pages before it kept)

Wikitext -> text with `mwparserfromhell` (its C tokenizer builds the node tree; a small
renderer walks it): templates removed, parser functions and `{{{arguments}}}` too; internal
links become their label (or title); File/Image/Media/Category links and interlanguage links
(`[[de:...]]`) removed; `<ref>`, comments, `<math>`, `<gallery>`, `<timeline>` removed; tables
(`{| ... |}` and `<table>`) removed: their cells are numbers, flags and fragments that read
as noise in running text (WikiExtractor drops them too); bold/italic markup stripped, the
words kept; headings kept as their own text line; list markers removed, items kept as lines;
`<br>` a line break; HTML entities decoded; magic words (`__TOC__`) and the empty or
punctuation-led parentheses that removed pronunciation/language templates leave in lead
sentences ("Anarchism ( ; from Greek" -> "Anarchism (from Greek") cleaned as WikiExtractor does. The result holds no wikitext markup (the tests
check `[[`, `{{`, `'''`, `<ref` on every article of the real samples).

Metadata: title, page_id, revision_id, timestamp (the revision's), language, url, wiki (dbname).

Speed: parsing dominates (mwparserfromhell's tokenizer, ~20% less with skip_style_tags); the
renderer costs about half of `Wikicode.strip_code()`. `benchmarks/ingest.py` on gensim's full
shortened enwiki dump + the two other samples (6.8 MB of XML, 214 pages, one busy core):
0.43 MB/s against 0.26 for mwparserfromhell + strip_code() in a loop, which also keeps the 8
disambiguation pages and leaves markup in 18 of its 112 texts (0 of 104 here).
"""

from __future__ import annotations

import bz2
import gzip
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html import unescape
from typing import Iterator
from urllib.parse import quote, urlsplit

import click
from datatrove.data import Document

from lmforge.corpus.ingest.base import BadRecord, Dropped, SourceReader
from lmforge.corpus.ingest.cli import ingest_options, run_source
from lmforge.corpus.options import dataclass_options

# drop reasons (stats.json: dropped_<reason>)
NAMESPACE = "namespace"
REDIRECT = "redirect"
DISAMBIGUATION = "disambiguation"
EMPTY = "empty"

#: templates that mark a disambiguation page (lower case, first letter as written is ignored)
DISAMBIGUATION_TEMPLATES = frozenset({
    # en (Template:Disambiguation and its redirects / sister templates)
    "disambiguation", "disambig", "disamb", "dab", "disam", "dis", "disambiguation page",
    "hndis", "geodis", "numberdis", "mathdab", "letter-numbercombdisambig", "letter-number combination disambiguation",
    "schooldis", "hospitaldis", "roaddis", "species latin name disambiguation", "call sign disambiguation",
    "chinese title disambiguation", "genus disambiguation", "human name disambiguation", "place name disambiguation",
    # other languages
    "пояснителна страница", "многозначност",  # bg
    "begriffsklärung",  # de
    "homonymie", "bandeau homonymie",  # fr
    "desambiguación", "desambiguacion",  # es
    "disambigua",  # it
    "dp", "dpintro",  # nl
    "ujednoznacznienie",  # pl
    "desambiguação", "desambig",  # pt
    "неоднозначность", "многозначность",  # ru
    "aimai", "曖昧さ回避",  # ja
    "消歧义", "消歧義",  # zh
})
#: categories that disambiguation templates put their pages in (enwiki), lower case
DISAMBIGUATION_CATEGORIES = frozenset({"disambiguation pages", "all disambiguation pages", "all article disambiguation pages"})
#: magic word of the Disambiguator extension (every Wikipedia has it)
_DISAMBIG_MAGIC = "__DISAMBIG__"
_REDIRECT_TEXT = re.compile(r"\s*#\s*(redirect|weiterleitung|redirection|перенаправление|пренасочване|redirección|"
                            r"rinvia|doorverwijzing|przekieruj|redirecionamento|転送|重定向)\b", re.IGNORECASE)

#: namespace ids whose links are not text: Media (-2), File (6), Category (14)
_NON_TEXT_NAMESPACES = (-2, 6, 14)
#: English canonical names, valid on every wiki beside the localised ones
_CANONICAL = {-2: ("media",), 6: ("file", "image"), 14: ("category",)}
#: tags whose content is not prose
_DROP_TAGS = frozenset({"ref", "references", "math", "chem", "ce", "gallery", "timeline", "graph", "score", "table",
                        "templatedata", "templatestyles", "mapframe", "maplink", "syntaxhighlight", "source", "imagemap",
                        "inputbox", "categorytree", "hiero", "noinclude", "includeonly", "indicator"})
_BREAK_TAGS = frozenset({"br", "li", "dt", "dd", "p", "hr", "tr"})
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z]{2,8})*(-x-[a-z]+)?$")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
#: marks a heading line while the text is assembled
_HEADING = "\x00"
_QUOTES = re.compile(r"'{2,}")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_PAREN_PUNCT = re.compile(r"\(\s*(?:[,;:]\s*)+")
_EMPTY_PARENS = re.compile(r"[ \t]*\(\s*\)")
_SPACE_PUNCT = re.compile(r"[ \t]+([,;])")
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.DOTALL | re.IGNORECASE)
_TABLE = re.compile(r"^\s*\{\|.*?^\s*\|\}", re.DOTALL | re.MULTILINE)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_LINK = re.compile(r"\[\[(?:([^\[\]|:]*):)?([^\[\]]*)\]\]")
_HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^<>]*>")
_DUMP_NAME = re.compile(r"\.xml(\.bz2|\.gz)?$|\.xml-p\d+p\d+[^/]*\.bz2$", re.IGNORECASE)


@dataclass
class Config:
    """Settings of `corpus ingest wikipedia` (each is a flag: `--namespaces 0,14`)."""

    #: namespace ids kept (0: articles; 14: categories, 4: project pages, ...)
    namespaces: list[str] = field(default_factory=lambda: ["0"])
    #: keep disambiguation pages instead of dropping them
    keep_disambiguation: bool = False

    def __post_init__(self):
        try:
            self.namespace_ids = frozenset(int(n) for n in self.namespaces)
        except ValueError:
            raise ValueError(f"--namespaces {','.join(self.namespaces)}: give namespace numbers, e.g. 0 (articles) "
                             "or 0,14") from None
        if not self.namespace_ids:
            raise ValueError("--namespaces: give at least one namespace number (0 = articles)")


@dataclass
class SiteInfo:
    """What a dump's <siteinfo> says: dbname, language, base URL, namespace id -> name."""

    dbname: str | None = None
    language: str | None = None
    base_url: str | None = None
    namespaces: dict[int, str] = field(default_factory=dict)

    def link_prefixes(self) -> frozenset[str]:
        """Lower-case names of the namespaces whose links are dropped (File:, Category: ...)."""
        names = {name for key in _NON_TEXT_NAMESPACES for name in _CANONICAL[key]}
        names.update(self.namespaces[key].lower() for key in _NON_TEXT_NAMESPACES if self.namespaces.get(key))
        return frozenset(names)

    def url(self, title: str) -> str | None:
        if not self.base_url:
            return None
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}/wiki/{quote(title.replace(' ', '_'), safe='/:()_,-.!~*')}"


def language_of(dbname: str | None, base_url: str | None, xml_lang: str | None) -> str | None:
    """`enwiki` -> en, `zh_yuewiki` -> zh-yue; else the base URL's host (`bg.wikipedia.org`); else xml:lang."""
    if dbname and dbname.endswith("wiki") and len(dbname) > 4:
        return dbname[:-4].replace("_", "-")
    if base_url:
        host = urlsplit(base_url).netloc.split(".")
        if len(host) >= 3 and _INTERLANGUAGE.match(host[0]):
            return host[0]
    return xml_lang or None


# ---- wikitext -> text ---------------------------------------------------------------------------

def _name(node) -> str:
    return str(node.name).strip().replace("_", " ").lower()


def is_disambiguation(code, prefixes: frozenset[str] = frozenset({"category"})) -> bool:
    """Whether parsed wikitext is a disambiguation page (top-level template, magic word or category)."""
    import mwparserfromhell.nodes as nodes

    for node in code.nodes:
        if isinstance(node, nodes.Template):
            if _name(node) in DISAMBIGUATION_TEMPLATES:
                return True
        elif isinstance(node, nodes.Text):
            if _DISAMBIG_MAGIC in node.value:
                return True
        elif isinstance(node, nodes.Wikilink):
            title = str(node.title).strip()
            prefix, _, rest = title.partition(":")
            if rest and prefix.strip().lower() in prefixes and rest.strip().replace("_", " ").lower() in DISAMBIGUATION_CATEGORIES:
                return True
    return False


def render(code, prefixes: frozenset[str], out: list[str]) -> None:
    """Append the plain text of parsed wikitext `code` to `out` (see the module docstring)."""
    import mwparserfromhell.nodes as nodes

    for node in code.nodes:
        if isinstance(node, nodes.Text):
            out.append(node.value)
        elif isinstance(node, nodes.Wikilink):
            title = str(node.title).strip()
            if title.startswith(":"):  # [[:Category:X]] is a link to the page, shown as text
                title = title[1:]
            elif ":" in title:
                prefix = title.split(":", 1)[0].strip().lower()
                if prefix in prefixes or _INTERLANGUAGE.match(prefix):
                    continue
            if node.text is not None:
                render(node.text, prefixes, out)
            else:
                out.append(title.split("#", 1)[0] if not title.startswith("#") else title[1:])
        elif isinstance(node, nodes.Tag):
            tag = str(node.tag).strip().lower()
            if tag in _DROP_TAGS or node.wiki_markup == "{|":
                if tag == "table":
                    out.append("\n")
                continue
            if tag in _BREAK_TAGS and node.wiki_markup is None:  # wiki lists are on their own lines already
                out.append("\n")
            if tag == "nowiki" and node.contents is not None:
                out.append(str(node.contents))
            elif node.contents is not None and not node.self_closing:
                render(node.contents, prefixes, out)
        elif isinstance(node, nodes.Heading):
            out.append(f"\n{_HEADING}{node.level}")
            render(node.title, prefixes, out)
            out.append("\n")
        elif isinstance(node, nodes.ExternalLink):
            if node.title is not None:
                render(node.title, prefixes, out)
        elif isinstance(node, nodes.HTMLEntity):
            out.append(node.normalize())
        # Template, Argument, Comment, Parameter: dropped


def _leftovers(text: str, prefixes: frozenset[str]) -> str:
    """Remove markup the parser left as text: on badly nested wikitext mwparserfromhell gives up
    on a span and returns it verbatim (a few articles of the real enwiki sample have one)."""
    if not any(m in text for m in ("[[", "{{", "<", "{|", "]]", "}}")):
        return text
    text = _COMMENT.sub("", text)
    text = _REF.sub("", text)
    text = _TABLE.sub("", text)
    for _ in range(10):  # innermost templates and links first
        new = _TEMPLATE.sub("", text)
        new = _LINK.sub(lambda m: "" if m.group(1) and m.group(1).strip().lower() in prefixes else m.group(2).rsplit("|", 1)[-1], new)
        if new == text:
            break
        text = new
    return _HTML_TAG.sub("", text)


def parse(wikitext: str):
    """mwparserfromhell's tree of `wikitext`. '' and ''' stay in the text (skip_style_tags: the
    tokenizer is ~20% faster without them) and the renderer deletes them."""
    import mwparserfromhell

    return mwparserfromhell.parse(wikitext, skip_style_tags=True)


def wikitext_to_text(wikitext: str, prefixes: frozenset[str] | None = None, code=None) -> str:
    """Plain text of a wikitext article (`code`: the already parsed wikitext, if any).

    >>> wikitext_to_text("'''Alan''' was a [[United Kingdom|British]] {{cite|x}}man.<ref>r</ref>")
    'Alan was a British man.'
    """
    prefixes = prefixes if prefixes is not None else SiteInfo().link_prefixes()
    if code is None:
        code = parse(wikitext)
    out: list[str] = []
    render(code, prefixes, out)
    text = _leftovers(_QUOTES.sub("", "".join(out)), prefixes)
    # what removed templates leave in lead sentences: "Anarchism ( ; from Greek" / "Paris ()"
    text = _SPACE_PUNCT.sub(r"\1", _EMPTY_PARENS.sub("", _PAREN_PUNCT.sub("(", _MAGIC_WORD.sub("", text))))
    if "&" in text:
        text = unescape(text)  # entities inside spans the parser left as text
    lines = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        # what is left of unbalanced markup (a stray [[ or }} in broken wikitext)
        line = line.replace("[[", "").replace("]]", "").replace("{{", "").replace("}}", "")
        lines.append("" if line in ("*", "#", ":", ";", _HEADING) else line)
    # a heading whose section kept no text (a list or table section: "1920s", "References") goes:
    # one followed by nothing, or by a heading of its level or above
    following = 0  # level of the next heading walking backwards (7: text comes first, 0: nothing)
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if not line:
            continue
        if line.startswith(_HEADING) and len(line) > 1 and line[1].isdigit():
            level = int(line[1])
            if following <= level:
                lines[i] = ""
                continue
            lines[i] = line[2:].strip() + "\n"
            following = level
            continue
        following = 7
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# ---- the dump ------------------------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _open(path: str):
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text
    return None


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for child in elem:
        if _local(child.tag) == name:
            return child
    return None


def iter_pages(path: str) -> Iterator[tuple[SiteInfo, ET.Element | None, int]]:
    """(siteinfo, <page> element, page number) for each page of a dump, memory bounded: each
    page is cleared after the caller is done with it. The site info is complete from the first
    page on (MediaWiki writes <siteinfo> first)."""
    site = SiteInfo()
    xml_lang = None
    root = None
    number = 0
    with _open(path) as stream:
        for event, elem in ET.iterparse(stream, events=("start", "end")):
            tag = _local(elem.tag)
            if event == "start":
                if root is None:
                    root = elem
                    xml_lang = elem.get("{http://www.w3.org/XML/1998/namespace}lang")
                    site.language = xml_lang
                continue
            if tag == "siteinfo":
                site.dbname = _child_text(elem, "dbname")
                site.base_url = _child_text(elem, "base")
                names = _child(elem, "namespaces")
                for ns in names if names is not None else ():
                    try:
                        site.namespaces[int(ns.get("key", ""))] = (ns.text or "").strip()
                    except ValueError:
                        continue
                site.language = language_of(site.dbname, site.base_url, xml_lang)
                root.clear()
            elif tag == "page":
                number += 1
                yield site, elem, number
                elem.clear()
                root.clear()


class Reader(SourceReader):
    """MediaWiki XML dumps -> one document per article (see the module docstring)."""

    source_name = "wikipedia"
    config_class = Config
    suffixes = (".xml", ".xml.bz2", ".xml.gz", ".bz2")
    input_hint = "MediaWiki XML dumps (pages-articles*.xml.bz2, .xml, .xml.gz) or folders of them"
    unreadable_errors = SourceReader.unreadable_errors + (ET.ParseError,)
    config: Config

    @classmethod
    def input_units(cls, path: str) -> list[str]:
        """A file is itself; a folder is every dump below it (`*.xml`, `*.xml.bz2`, `*.xml.gz`, and the
        split dumps' `*.xml-p1p41242.bz2`; not the `multistream-index.txt.bz2` files)."""
        return [unit for unit in super().input_units(path) if unit == path or _DUMP_NAME.search(unit)]

    def read(self, path: str) -> Iterator[Document | Dropped | BadRecord]:
        cfg = self.config
        prefixes = None
        for site, page, number in iter_pages(path):
            if prefixes is None:
                prefixes = site.link_prefixes()
            title = _child_text(page, "title")
            page_id = _child_text(page, "id")
            ns_text = _child_text(page, "ns")
            revision = _child(page, "revision")
            text = _child_text(revision, "text") if revision is not None else None
            where = f"{path}:page {number}" + (f" ({title})" if title else "")
            if not title or not page_id or revision is None or _child(revision, "text") is None:
                yield BadRecord(where, "a <page> needs <title>, <id> and <revision><text>")
                continue
            try:
                namespace = int(ns_text) if ns_text is not None else 0
            except ValueError:
                yield BadRecord(where, f"<ns> is not a number: {ns_text!r}")
                continue
            if namespace not in cfg.namespace_ids:
                yield Dropped(NAMESPACE, where)
                continue
            text = text or ""
            if _child(page, "redirect") is not None or _REDIRECT_TEXT.match(text):
                yield Dropped(REDIRECT, where)
                continue
            code = parse(text)
            meta = {"title": title, "page_id": int(page_id) if page_id.isdigit() else page_id,
                    "revision_id": _child_text(revision, "id"), "timestamp": _child_text(revision, "timestamp"),
                    "language": site.language, "url": site.url(title), "wiki": site.dbname}
            if not cfg.keep_disambiguation and is_disambiguation(code, prefixes):
                yield Dropped(DISAMBIGUATION, where, Document(text=text, id=f"{site.dbname or 'wiki'}/{page_id}", metadata=meta))
                continue
            clean = wikitext_to_text(text, prefixes, code)
            doc = Document(text=clean, id=f"{site.dbname or 'wiki'}/{page_id}", metadata=meta)
            if not clean:
                yield Dropped(EMPTY, where, doc)
                continue
            yield doc


@click.command(name="wikipedia")
@ingest_options
@dataclass_options(Config)
def command(**kwargs) -> None:
    """MediaWiki XML dumps (pages-articles*.xml.bz2, any language) -> plain-text articles.

    \b
    Streams each dump (bz2/gzip/plain XML, memory bounded); keeps namespace 0 (articles);
    drops redirects and disambiguation pages; wikitext -> text with mwparserfromhell:
    templates, references, comments, tables, files/images and categories removed, links
    become their text, headings stay as lines. Metadata: title, page_id, timestamp,
    language (from the dump's dbname), url.

    \b
    Example:
      lmforge corpus ingest wikipedia enwiki-latest-pages-articles1.xml.bz2 -o wiki-en/
      lmforge corpus ingest wikipedia dumps/ -o wiki/ --tasks 8 --workers 4 --keep-rejected
    """
    run_source("wikipedia", kwargs)
