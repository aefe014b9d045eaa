"""Main-content extraction: HTML page -> the article's text, paragraphs separated by newlines.

`extract_main_text_with_info(html, url=None, fallback=True) -> (text, info)` is what
`lmforge corpus extract/process` calls on every HTML response (`extract_main_text` gives the
text alone). It is a pure function (module-level caches only), safe in forked workers, and never
raises: any failure gives "" (so does a page with no main content). `url` is accepted for
callers that have it; no rule uses it yet. info["path"] says how the text was obtained: "fast"
(the steps below), "fallback" (trafilatura with datatrove's settings but no cross-page dedup, on the few pages whose
fast-path confidence is below `FALLBACK_BELOW`: see `_confidence`) or "empty".

How it works (lexbor's DOM through selectolax; one Python pass over the elements):

1. Parse; strip what is never text (script, style, svg, iframe, form controls) and hidden
   elements ([hidden], aria-hidden, inline display:none).
2. Delete overlays page-wide (cookie / consent / newsletter / subscribe / popup / modal in
   class or id), unless one holds over 20% of the page's text (a `modal-open` <body> wrapper).
3. Pick the container: readability's vote (each <p> of >= 25 chars, a CJK character counting
   3, gives its length to its parent and half to its grandparent; <pre> and paragraphs in
   footer/nav/aside do not vote, note/tip boxes pass their votes up) finds where the
   paragraphs are; on DocBook pages (a `div.titlepage`) the largest chapter/section/... division
   holding the voted element wins first; trafilatura's
   BODY_XPATH tiers (`[itemprop=articleBody]`, `.entry-content`/`.article-body`, `<article>`,
   `.story-content`, `#content`, `<main>` ...) name it. The largest match (>= 200 chars) of the
   first tier that agrees with the vote (is the voted element or an ancestor, or lies inside it
   with half its text) wins; else the voted element; else <body>. Teasers that are also
   `<article>` or `.text` (macrumors) lose because they do not hold the voted paragraphs.
   A tier match with peers (other matches of its tier alike in tag + first class: a question
   and its answers, an article body split in blocks) grows to their common ancestor when the
   posts hold half its text. A container that is one of >= 3 alike siblings (tag + first
   class: forum posts; <= 5 levels up) holding together twice its text (voting text, or text
   outside links for posts written with <br>) grows to their parent. A voted element that no tier
   names grows to the nearest ancestor (<= 4 up) where siblings continue its text (long prose
   paragraphs, alike cards, a bigger block: pages with no content wrapper, like sqlite.org's);
   the ancestor's other children are deleted; straight under <body>, <body>'s lists and tables
   made of paragraphs join too.
4. Inside it, delete boilerplate by tag (nav, aside, footer, figure, form), ARIA role and
   class/id words (share, social, related, comment, promo, sidebar, menu, caption, byline ...),
   unless an element holds over half the container's text. Inline elements are never deleted
   by words, and on documentation pages (DocBook, or Sphinx/MkDocs `a.headerlink`) no
   class/id words are used at all (guimenu, sidebar, tip name content there; Sphinx section
   ids are title slugs) and <aside> stays (docutils' sidebars, topics, footnotes): only
   DocBook's toc / nav bars go.
5. Render block by block (p, h1-6, li, div, td, br ...) with an explicit stack (pages nest
   deeper than Python's recursion limit), counting link text (<a href> only: DocBook's
   unclosed `<a id/>` anchors wrap whole sections) per block; drop blocks that are
   over half links (and < 300 chars; not words around one or two links, `_PHRASE_LINKS`, nor a
   <p> sentence about 3+ links, `_SENTENCE_LINKS`), bare "Advertisement"/"Share"/"Read more"
   lines, and repeated short lines; a short table row's cell whose letters are all linked.

Speed notes (2-core shared machine, ms per page, mean page 173 KB): parse 0.4; lexbor CSS with
the same rules as `[class*=x i]` selectors cost 2.3 (the `i` flag defeats its fast paths), so
classes and ids are matched by Python regexes in one `traverse()`, cached per (class, id) string
(pages repeat menu-item classes hundreds of times) across pages, and each pattern is tried only
where a literal trie finds one of its words (`_Gated`): a failing search of a long alternation
cost ~40 us per class string, 7 of the 9 ms a news page then spent in `_scan`. resiliparse
parses as fast but indexing its node lists costs ~0.27 ms per item and a
Python walk ~2.4 us per element (selectolax: ~0.3 us), so resiliparse is not used here.
Deletions go in reverse document order: lexbor frees a deleted subtree, and a descendant we
still held would be a use-after-free (a segfault, not an exception).

Measured by benchmarks/extract.py (181 pages of scrapinghub's article-extraction-benchmark,
one core, best of 3, same process; bag-of-words F1, macro over pages; machine shared, load ~3):

    extractor     pages/s   F1      P       R
    lmforge        469     0.9614  0.9552  0.9744   (6.5x trafilatura; 6.7x in a second run)
    trafilatura     72     0.9598  0.9592  0.9699   (datatrove's arguments)
    resiliparse   1168     0.8992  0.8413  0.9891   (extract_plain_text(main_content=True))

(The benchmark clears the class cache before each timed pass, so that its repeated passes over
the same pages are not faster than a crawl's first.)

Known misses: listicles and tables split across sibling containers (beachbodyondemand 0.70,
autoracing 0.71: the vote picks one of several parent divs), WSJ pages whose paywall teaser
and metadata sit inside the article container (0.75).

Issue 10 (page families; /work/devsets built by benchmarks/devsets.py, truth from each
document's own structure; F1 as above, fast path alone -> with the fallback; trafilatura):

    family (pages)                   before   fast    +fallback (rate)   trafilatura
    news, scrapinghub (181)          0.9614   0.9606  0.9631 (2.8%)      0.9598
    news-multilingual (21)           0.8727   0.9610  0.9613 (4.8%)      0.9658
    docs-docbook-multilingual (377)  0.7512   0.9833  0.9833 (0%)        0.9594
    docs-sphinx (166)                0.9545   0.9695  0.9695 (1.2%)      0.9567
    docs-texinfo-multilingual (158)  0.9521   0.9521  0.9520 (1.3%)      0.9101
    web-varied (25)                     -     0.9484  0.9484 (0%)        0.9187
    web-sites (120)                     -     0.9710  0.9705 (0.8%)      0.9685
    rtl-docs-mallard (86)               -     0.9817  0.9892 (1.2%)      0.9122
(web-sites was 0.9519 before its fixes: text straight under <body>, tables of contents.)
Issue 10, quality10b (/work/devsets-all + -forum + -blog, with the fallback; word F1 /
snippet-F1, main 02cb8c9 -> after; trafilatura): 104 pages moved, none down (F1, snippets, LID).

    family (pages)              before           after            trafilatura
    news, scrapinghub (181)     0.9694 / 0.9889  0.9696 / 0.9895  0.9598 / 0.9763
    docs-docbook (377)          0.9893 / 0.9968  0.9897 / 0.9976  0.9594 / 0.9555
    docs-sphinx (166)           0.9714 / 0.9656  0.9742 / 0.9902  0.9567 / 0.9458
    docs-texinfo (158)          0.9709 / 0.9800  0.9727 / 0.9897  0.9101 / 0.7236
    web-readability (25)        0.9628 / 0.9793  0.9631 / 0.9877  0.9609 / 0.9544
    web-sites (120)             0.9745 / 0.9906  0.9784 / 0.9949  0.9685 / 0.9897
    forum-threads (16)          0.9317 / 0.9930  0.9337 / 0.9930  0.6706 / 0.6607
    all 1,231 pages             0.9762 / 0.9861  0.9774 / 0.9917  0.9417 / 0.9094
(unchanged: news-multilingual 0.9614 / 0.9800 against 0.9658 / 0.9950, blog-cms, shops,
recipes, rtl-docs-mallard, web-varied; texinfo's fallback rate 1.3% -> 0%.)
trafilatura's fast mode would halve the fallback's cost, but on the 5 news pages the fallback
takes it scores 0.720 against 0.968 (standard mode), so the fallback stays standard.

Whole `lmforge corpus extract` against trafilatura as a library (benchmarks/extract_command.py,
one core): 1,134 pages of every family 5.84x at load ~0.5 (54.8 against 9.4 pages/s; 4.94x at
load 6-8; 4.62x on 903 pages before the class-pattern gates, the cross-page cache, the faster
start and the 5,000-character LID). On the 181 news pages alone 2.41x (46.9 against 19.5): the
command's fixed start (interpreter, datatrove's imports, the LID model: 1.5 s for a one-page
WARC) is a large share of so few pages, and trafilatura is faster on news than on long
documentation; without the start it is 3.9x (13.3 ms a page against 51).
Per page, in one process (CPU time, same load): fast path 6.1 ms, fallback 1.4 (5 pages of
181 at ~50 ms), language ID 2.4, trafilatura 41: 4.1x before reading and writing.
Later (interleaved with the code before, best of 3-8): the command's start 1.9 -> 1.37 s
(datatrove no longer imports the Hub client, see corpus/execution.py); the 181 news pages at
load ~2 3.54 -> 3.07 s against trafilatura's 9.33 (2.64x -> 3.04x); at load 5-9, CPU time:
news 4.03 -> 2.98 s (2.7x -> 3.65x), all 1,169 pages 25.7 -> 22.6 s (6.2x -> 7.1x). A news
page now: WARC 1.0 ms, fast path 5.9 (parse 1.9, junk 0.75, `_scan` 2.3 of which new class
strings ~1, container 0.5, render 0.5), fallback 1.2, language ID 2.0 (fastText on ~2,000
characters: 1.5). Tried and not kept: a one-scan classifier over
all patterns' expanded literals (a new class string 11.2 -> 8.7 us, but 25 ms more import: a
wash on 181 pages), lexbor selectors instead of the `traverse()` walk or `strip_tags` (slower),
a 1,000-character LID probe (one texinfo page's label changed).
Then (in-process A/B against the code before, alternating page by page, CPU): each class/id
answer cached apart (`_TIER_CACHE`) and a UTF-8 page's own bytes parsed (`WarcPage.utf8`): the
fast path on the 181 news pages 8.87 -> 7.31 ms a page with the caches emptied before each page
(a crawl of many sites), 8.05 -> 7.21 in WARC order; 11.97 -> 11.60 on all 1,231 dev-set pages.
Not kept: trafilatura's fallback handed lexbor's serialisation with scripts, styles and svg
stripped wrote the same text on all 36 fallback pages but was no faster (86.8 against 90.8 ms a
page, the parse and serialisation included): its time goes to its XPath pruning, not to parsing.
"""

from __future__ import annotations

import functools
import os
import re

from lmforge.corpus.trie import trie_pattern

__all__ = ["extract_main_text", "extract_main_text_with_info", "FAST", "FALLBACK", "EMPTY"]

# Elements that never carry article text: removed from the whole tree first.
_JUNK_TAGS = [
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed",
    "video", "audio", "map", "button", "select", "input", "textarea", "option", "dialog",
    "head", "link", "meta",
]
_JUNK = (
    "[hidden], [aria-hidden=true], [style*='display:none' i], [style*='display: none' i],"
    " [style*='visibility:hidden' i]"
)

def _literal_trie(words) -> re.Pattern:
    """A regex that finds any of `words` (literal strings), as a trie (`lmforge.corpus.trie`):
    only whether it matches is used. ("post", "post-body", "page") -> "p(?:age|ost)"."""
    return re.compile(trie_pattern(words, prefixes=True))


class _Gated:
    """`re.compile(pattern).search`, run only on strings holding one of `fragments` (each match
    of `pattern` holds one; tests check it on real class strings): a literal trie rules out
    most class/id strings in ~1-2 us where the pattern's failing search costs ~10-20 us."""

    __slots__ = ("pattern", "fragments", "_regex", "_gate")

    def __init__(self, pattern: str, fragments: tuple[str, ...]):
        self.pattern, self.fragments = pattern, fragments
        self._regex = re.compile(pattern)
        self._gate = _literal_trie(fragments)

    def search(self, s: str):
        return self._gate.search(s) is not None and self._regex.search(s)


# Main-container tiers, most specific first: trafilatura's BODY_XPATH as (class regex, id regex,
# other attribute=value pairs, tags). Matched in one Python pass over the elements: lexbor's CSS
# engine took 2.3 ms/page for the same rules as `[class*=x i]` selectors, the pass ~0.3 ms.
_CONTAINER_TAGS = frozenset(("article", "div", "main", "section"))
_TIERS = (
    (
        _Gated(
            r"^(?:post|entry)$|post[-_]?text|post-body|post-?entry|post[-_]?content|post_inner_wrapper"
            r"|article-?text|(?:entry|page|text|article|art)-content|article__content"
            r"|article(?:-|_|__)?body|body-text|article__container",
            ("post", "entry", "article", "-content", "body-text"),
        ),
        _Gated(
            r"^articlecontent$|(?:entry|article|art)-content|article__content|article(?:-|_|__)?body|body-text",
            ("article", "-content", "body-text"),
        ),
        (("itemprop", "articleBody"),),
        _CONTAINER_TAGS,
    ),
    (None, None, (), frozenset(("article",))),
    (
        _Gated(
            r"^(?:postarea|art-postcontent|text|story)$|fulltext|^article |post-bodycopy|story-?content"
            r"|(?:theme|blog|section|single)-content|single-post|main-column|wpb_text_column|story-body|field-body",
            ("post", "text", "story", "article", "-content", "main-column", "field-body"),
        ),
        _Gated(r"^(?:article|story)$|^primary|story-body", ("article", "story", "primary")),
        (("role", "article"),),
        _CONTAINER_TAGS,
    ),
    (
        _Gated(r"^content$|content[-_]main|content(?:-|__)body|main-content", ("content",)),
        _Gated(r"^content$|content-main|content-?body|main-content", ("content",)),
        (),
        _CONTAINER_TAGS,
    ),
    (_Gated(r"^main", ("main",)), _Gated(r"^main", ("main",)), (("role", "main"),), frozenset(("div", "section", "article"))),
)

# DocBook XSL / Publican division classes (the whole class attribute): on a page with a
# `div.titlepage` (every DocBook division has one) the largest of these that holds the voted
# paragraphs is the container, ahead of the tiers above. Without it the vote picks one section
# of a chapter, a <pre> listing or a note box (docs-docbook-multilingual F1 0.763).
_DOCBOOK_DIVISIONS = frozenset(
    "book part chapter appendix preface article section sect1 sect2 sect3 refentry reference"
    " glossary bibliography colophon dedication partintro refsect1 refsection simplesect".split()
)
# DocBook's chrome inside a division (class attribute): tables of contents and lists of
# tables/figures/examples; removed on DocBook pages, where the class words below are not used
# (guimenu, sidebar, caption, tip ... name content there).
_DOCBOOK_CHROME = re.compile(r"^(?:toc|navheader|navfooter|list-of-\w+)$")
# Inline elements are never deleted by class words: doc pages mark up content with them
# (span.guimenu, span.menuselection, code.comment), and a byline span costs a few words.
_INLINE = frozenset("span a code kbd samp tt em strong b i u var abbr small sup sub".split())

# Boilerplate inside the container: tags, ARIA roles, and class/id fragments (matched on lowercased strings).
_BOILER_TAGS = frozenset(("nav", "aside", "footer", "figure", "figcaption", "form"))
_BOILER_ROLES = frozenset(("navigation", "complementary", "contentinfo", "dialog", "banner"))
_BOILER_WORDS = (
    "share", "sharing", "social", "related", "comment", "newsletter", "subscribe", "cookie",
    "consent", "promo", "advert", "sponsor", "breadcrumb", "sidebar", "popup", "modal",
    "signup", "sign-up", "recommend", "trending", "most-popular", "mostpopular", "more-stories",
    "read-more", "readmore", "caption", "byline", "author-bio", "tags", "newsfeed", "outbrain",
    "taboola", "navbar", "menu", "toolbar", "pagination", "widget", "disqus", "print",
    # makeinfo's div#footer inside div#main (language bar, version line: texinfo F1 0.955 -> 0.972,
    # snippet-F1 0.939 -> 0.984), WordPress' entry-footer; the <footer> tag alone missed them
    "footer",
    # forum software's poster boxes beside each post (phpBB td.profile / dl.postprofile /
    # .postdetails, vBulletin .userinfo, IPB .author_info) and signatures: a thread's container
    # holds them (xentax's phpBB thread: "Joined: ... Posts: 4 Has thanked: 0 time" per post);
    # Q&A posts' poster cards (Stack Overflow's and askbot's .user-info) and action bars
    # ("edit flag offensive delete link more": askbot's, Discourse's .post-controls)
    "profile", "postdetails", "userinfo", "user-info", "author_info", "author-info", "signature",
    "post-controls",
    # the small-print classes of old forum templates, their only mark on poster boxes ("Join Date:
    # Jan 2005", vBulletin 3's div.smallfont) and on "Post subject: ... Posted:" rows and the
    # "Who is online" box (phpBB subsilver2's td.gensmall)
    "smallfont", "gensmall",
)
# ... and a table of contents as a whole word of a class/id (toc, fancy_toc, ez-toc-container;
# not "stock" or "protocol"): its entries go as link lists, but its "Table of Contents" label
# stayed (sqlite.org's pages)
_BOILER = _Gated(
    "|".join(re.escape(w) for w in _BOILER_WORDS) + r"|(?:^|[\s_-])toc(?:$|[\s_-])", (*_BOILER_WORDS, "toc")
)
# Overlays removed from the whole page before the container vote (they are never wrappers).
_OVERLAY_WORDS = ("cookie", "consent", "gdpr", "newsletter", "subscribe", "popup", "modal", "signup")
_OVERLAYS = _literal_trie(_OVERLAY_WORDS)
# class/id fragments that look like boilerplate words but name content (Drupal's core class
# `node-promoted` marks a node shown on the front page: "promo" deleted every teaser there)
_NOT_BOILER = _literal_trie(
    ("commentary", "article-body", "articlebody", "entry-content", "post-content", "shared-content",
     "node-promoted")
)

_BLOCK = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li ul ol dl dt dd blockquote pre table tr td th section article main"
    " header address center details summary figure hr br body html tbody thead tfoot caption".split()
)
_SKIP = frozenset("-comment script style noscript template".split())
_BOILER_LINE = re.compile(
    r"^(advertisement|advertisements|sponsored|share|share this|share this article|share on \w+|tweet|"
    r"email|print|comments?|read more|click here|continue reading|related|related articles|"
    r"loading\.*|subscribe|sign up|follow us|skip to (main )?content|\W*)$",
    re.I,
)


def extract_main_text(html: str, url: str | None = None) -> str:
    """The main text of `html`, paragraphs separated by newlines; "" on no content or any error.

    `url` is accepted for callers that have it (site-specific rules may use it); unused now.
    """
    return extract_main_text_with_info(html, url)[0]


def extract_main_text_with_info(
        html: str, url: str | None = None, fallback: bool = True, html_utf8: bytes | None = None) -> tuple[str, dict]:
    """(main text, info): `extract_main_text` plus how the text was obtained.

    info["path"] is "fast" (this module's extractor), "fallback" (trafilatura with datatrove's
    settings, taken when the fast path's confidence is below `FALLBACK_BELOW` and `fallback`
    is on) or "empty" (no text either way); info["confidence"] is the fast path's, in [0, 1].
    `html_utf8`, when the caller has it, is `html.encode("utf-8")` (a WARC page's own bytes):
    the parser reads it as is, where it would encode `html` first. Never raises.
    """
    try:
        if not isinstance(html, str) or not html.strip():
            return "", {"path": EMPTY, "confidence": 0.0}
        text, signals = _extract(html if html_utf8 is None else html_utf8)
    except Exception:  # noqa: BLE001 - the contract is "never raises"
        text, signals = "", {"page_chars": 1 << 30}
    confidence = _confidence(text, signals)
    info = {"path": FAST if text else EMPTY, "confidence": round(confidence, 3)}
    if fallback and confidence < FALLBACK_BELOW and signals.get("page_chars", 0) >= _MIN_PAGE_CHARS:
        other = _trafilatura(html)
        if other is not None and other.strip():
            return other, {**info, "path": FALLBACK}
    return text, info


FAST, FALLBACK, EMPTY = "fast", "fallback", "empty"
#: pages whose fast-path confidence is below this go to trafilatura (see `_confidence`)
FALLBACK_BELOW = 0.5
# a page with less visible text than this has nothing a fallback could find
_MIN_PAGE_CHARS = 200


# a container holding at least this share of the page's voting paragraph text holds its prose
_HELD_ALL = 0.9


def _confidence(text: str, signals: dict) -> float:
    """How far the fast path's text can be trusted, in [0, 1], from signals it computed anyway.

    Low when: nothing came out of a page with text; the text is a small share of the page's
    visible text and short; most of it is <pre>/code (a listing picked instead of the prose
    around it, while the page holds twice as much text); no paragraph voted and the container is
    the whole <body>; at most 3 paragraphs voted and the text is under 20% of the page. A
    code-heavy text whose container holds the page's voting paragraphs (`_HELD_ALL`) is the
    chapter, not a listing picked instead of it: LilyPond's string-quartet chapter, 72% code in
    a texinfo page with long menus, went to trafilatura, which kept 6 of its 6 menu snippets. (Also
    tried: the container holding under half the page's voting text, with the text under 25% of
    the page: it sent 2 news pages to trafilatura for -0.06 F1.)
    """
    page = signals.get("page_chars", 0)
    n = len(text)
    if page < _MIN_PAGE_CHARS:
        return 1.0 if n else 0.0
    if not n:
        return 0.0
    score = 1.0
    share = n / page
    if n < 500 and share < 0.15:
        score = min(score, 0.2 + n / 1000)
    elif share < 0.05:
        score = min(score, 0.4)
    if signals.get("pre_chars", 0) > 0.6 * n and share < 0.5 and signals.get("held", 0.0) < _HELD_ALL:
        score = min(score, 0.3)  # a listing, not the page's code-heavy prose
    if signals.get("voters", 0) == 0 and signals.get("on_body"):
        score = min(score, 0.45)
    elif signals.get("voters", 0) <= 3 and share < 0.2:  # a page not written in <p>: we took a corner
        score = min(score, 0.45)
    return score


def _trafilatura(html: str) -> str | None:
    """trafilatura with datatrove's arguments but `deduplicate=False`; None when it is not
    installed or fails.

    datatrove's `deduplicate=True` keeps one cache of text segments for the whole process and
    deletes a segment from every page after its third sighting: the same news page extracted a
    fourth time came out empty (3 of the first 6 shared pages) or cut, so a page's text depended
    on which pages its task had read before (`--tasks 1` and `--tasks 4` wrote different
    documents). Without it the fallback is a function of the page; on the dev sets' fallback
    pages the F1 is the same (0.7547 both).
    """
    extract = _trafilatura_extract()
    if extract is None:
        return None
    try:
        return extract(html, favor_precision=True, include_comments=False, deduplicate=False) or ""
    except Exception:  # noqa: BLE001
        return None


@functools.cache
def _trafilatura_extract():
    """trafilatura.extract, imported once; None when the import fails (it needs
    `lxml_html_clean` with lxml >= 5.2), so a broken install costs one failed import, not one
    per page."""
    try:
        from trafilatura import extract
    except Exception:  # noqa: BLE001 - missing or broken install: no fallback
        return None
    import logging

    quiet = logging.getLogger("trafilatura")
    if quiet.level == logging.NOTSET:  # its "ERROR trafilatura.external: justext None" on a page it finds empty is no
        quiet.setLevel(logging.CRITICAL)  # error of the run (the page is counted); a user's own setting stays
    return extract


def _extract(html: str | bytes) -> tuple[str, dict]:
    from selectolax.lexbor import LexborHTMLParser

    if len(_OVERLAY_CACHE) > _KEY_CACHE_MAX or len(_BOILER_CACHE) > _KEY_CACHE_MAX:  # _TIER_CACHE: fewer
        clear_caches()
    tree = LexborHTMLParser(html)
    body = tree.body
    if body is None:
        return "", {"page_chars": 0}
    tree.strip_tags(_JUNK_TAGS, recursive=True)
    _remove(body.css(_JUNK))
    tiers, overlays, docs = _scan(body)
    page_chars = _text_len(body)
    doomed = _doomed(body, overlays, 0.2, page_chars)
    if doomed:  # forget tier matches inside deleted overlays before their memory is freed
        gone = {n.mem_id for n in doomed}
        tiers = [[n for n in tier if not (_ancestor_ids(n) & gone)] for tier in tiers]
        _remove(doomed)
    container, voters, under = _find_container(body, tiers)
    on_body = container.mem_id == body.mem_id
    held = under.get(container.mem_id, 0.0) / max(under.get(body.mem_id, 0.0), 1.0)
    _prune(container, docs)
    blocks: list[tuple[str, int, int, str | None]] = []
    pre = [0]
    _render(container, blocks, pre)
    return _postprocess(blocks), {"page_chars": page_chars, "pre_chars": pre[0], "voters": voters, "on_body": on_body,
                                 "held": held}


def _remove(nodes) -> None:
    """Delete `nodes` (document order) from the tree.

    Reverse order deletes descendants before their ancestors: deleting an ancestor first would
    free the descendants' memory while we still hold them (lexbor frees the whole subtree).
    """
    for node in reversed(nodes):
        node.decompose()


def _text_len(node) -> int:
    """Characters of text under `node` (each text node stripped; cheap, done in C)."""
    return len(node.text(strip=True))


def _paragraph_votes(body) -> tuple[object | None, int, dict[int, float]]:
    """Readability's vote: each <p> gives its text length to its parent, half to its grandparent.

    (voted element or None, number of voting paragraphs, {mem_id: voting text under that
    element} for every ancestor of a voting paragraph). A paragraph votes when it has >= 25
    characters, a CJK character counting as 3 (25 of them are a long sentence; at 1 each, short
    Chinese or Japanese paragraphs never voted). <pre> does not vote: a long listing outvoted a
    chapter's prose. A note/tip/warning box passes its paragraphs' votes on to its own parent,
    so that a box with three paragraphs does not win over the prose it sits in. Paragraphs in
    <footer>, <nav> or <aside> do not vote.
    """
    scores: dict[int, float] = {}
    nodes: dict[int, object] = {}
    under: dict[int, float] = {}
    voters = 0
    # per <p> parent (most paragraphs share one): the voting parent, its parent, its ancestor
    # line (None: inside a footer, nav or aside) and the voting characters under it; the lines
    # are walked once per parent and `under` is summed at the end (integer counts: the same sums)
    seen: dict[int, list | None] = {}
    for p in body.css("p"):
        text = p.text().strip()
        n = len(text)
        if n < 25:
            if n < 9 or text.isascii():
                continue
            n += 2 * len(_CJK.findall(text))
            if n < 25:
                continue
        parent = p.parent
        if parent is None:
            continue
        entry = seen.get(parent.mem_id, False)
        if entry is False:
            entry = seen[parent.mem_id] = _voting_parent(parent)
        if entry is None:
            continue
        parent, grand, _, _ = entry
        entry[3] += n
        voters += 1
        key = parent.mem_id
        nodes[key] = parent
        scores[key] = scores.get(key, 0.0) + n
        if grand is not None:
            key = grand.mem_id
            nodes[key] = grand
            scores[key] = scores.get(key, 0.0) + n / 2
    for entry in seen.values():
        if entry is not None:
            for key in entry[2]:
                under[key] = under.get(key, 0.0) + entry[3]
    if not scores:
        return None, 0, under
    best = max(scores, key=scores.__getitem__)
    return nodes[best], voters, under


def _voting_parent(parent) -> list | None:
    """[element that receives the votes of `parent`'s paragraphs, its parent, the mem_ids of
    it and its ancestors, 0 (the voting characters, counted by the caller)]; None when the
    paragraphs do not vote (inside a footer, nav or aside). A note/tip box passes its votes up."""
    attrs = parent.attributes
    if attrs and _ADMONITION.search((attrs.get("class") or "").lower()):
        parent = parent.parent
        if parent is None:
            return None
    line = []
    up = parent
    while up is not None and up.tag not in _NO_VOTE_TAGS:
        line.append(up.mem_id)
        up = up.parent
    if up is not None and up.tag != "-document":  # inside a footer, nav, aside or header
        return None
    return [parent, parent.parent, line, 0]


# paragraphs inside these do not vote (a site's legal footer outvoted a short article)
_NO_VOTE_TAGS = frozenset(("footer", "nav", "aside", "-document"))
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# class words of admonition boxes (DocBook, Sphinx, MkDocs, wikis): they do not receive votes
_ADMONITION = re.compile(r"\b(?:admonition|note|tip|warning|caution|important|hint|sidebar|callout|notice)\b")


def _ancestor_ids(node) -> set[int]:
    ids = set()
    while node is not None:
        ids.add(node.mem_id)
        node = node.parent
    return ids


# Each element needs only part of what its class/id string says: every element whether it is an
# overlay (`_scan`), the article/div/main/section elements their tier (`_scan`), the elements
# inside the container whether they are boilerplate (`_prune`, `_boilerplate`). So each answer
# is cached on its own: the menus, footers and side columns outside the container, most of a
# page's class strings, are never matched against the tier and boilerplate patterns. On the
# news pages, caches emptied before each page (a crawl of many sites): 158 new strings a page
# went through every pattern (~14 us each); now all 158 through the overlay words (~3 us), 78
# (article/div/main/section) through the tier patterns and 27 (inside the container) through
# the boilerplate ones: the fast path 12% less CPU, the same text on every page.
_TIER_CACHE: dict[tuple[str, str], int] = {}
_OVERLAY_CACHE: dict[tuple[str, str], bool] = {}
_BOILER_CACHE: dict[tuple[str, str], bool] = {}
# The caches live across pages, up to this many strings each (~10 MB), then start over: pages of one
# site, and of one CMS, repeat their class strings (the 181 news pages, 13 of them from distinct
# sites: 30,227 (class, id) strings page by page, 18,221 distinct). LMFORGE_CLASS_CACHE=0 keeps
# them to one page: benchmarks that repeat the same pages to last longer set it, so a copy is not
# faster than the first time.
_KEY_CACHE_MAX = int(os.environ.get("LMFORGE_CLASS_CACHE", "50000"))


def clear_caches() -> None:
    """Forget the class/id caches (benchmarks call it before each timed pass over the same pages,
    so that a second pass is not faster than a crawl's first)."""
    _TIER_CACHE.clear()
    _OVERLAY_CACHE.clear()
    _BOILER_CACHE.clear()


# Every match of a tier pattern holds one of these words (the tiers' gate fragments): most
# class/id strings hold none and are settled by one trie search (~2 us; the patterns'
# alternation took ~40 us to fail).
_ANY_WORD = _literal_trie([f for tier in _TIERS for g in tier[:2] if g is not None for f in g.fragments])
# the union of the patterns themselves: the reference the tests hold `_ANY_WORD` to
_ANY = re.compile("|".join(f"(?:{g.pattern})" for tier in _TIERS for g in tier[:2] if g is not None))


def _may_match(s: str) -> bool:
    """False only when no tier pattern can match `s` (lowercased)."""
    return _ANY_WORD.search(s) is not None


def _tier(cls: str, ident: str) -> int:
    """The first tier whose class (or id) regex matches, or -1. Cached per (class, id), across
    pages (`_KEY_CACHE_MAX`): a page repeats the same class strings (menu items, cards) hundreds
    of times, and a site's pages repeat its template's."""
    key = (cls, ident)
    hit = _TIER_CACHE.get(key)
    if hit is None:
        hit = -1
        cls, ident = cls.lower(), ident.lower()
        if _may_match(cls) or (ident and _may_match(ident)):  # anchored patterns: apart
            for k, (class_re, id_re, _, _) in enumerate(_TIERS):
                if class_re is not None and ((cls and class_re.search(cls)) or (ident and id_re.search(ident))):
                    hit = k
                    break
        _TIER_CACHE[key] = hit
    return hit


def _is_overlay(cls: str, ident: str) -> bool:
    """An overlay word (cookie, consent, modal ...) in the class or id, and no content word
    (`_NOT_BOILER`). Cached as `_tier`."""
    key = (cls, ident)
    hit = _OVERLAY_CACHE.get(key)
    if hit is None:
        both = cls.lower() + " " + ident.lower()
        hit = _OVERLAY_CACHE[key] = _OVERLAYS.search(both) is not None and _NOT_BOILER.search(both) is None
    return hit


def _is_boiler(cls: str, ident: str) -> bool:
    """A boilerplate word (share, related, comment, sidebar ...) in the class or id, and no
    content word (`_NOT_BOILER`: a content class named like boilerplate). Cached as `_tier`."""
    key = (cls, ident)
    hit = _BOILER_CACHE.get(key)
    if hit is None:
        both = cls.lower() + " " + ident.lower()
        hit = _BOILER_CACHE[key] = bool(_BOILER.search(both)) and _NOT_BOILER.search(both) is None
    return hit


def _scan(root) -> tuple[list[list], list, bool]:
    """One pass over `root`: the elements matching each container tier, the overlays, and
    whether the page is generated documentation (DocBook: a `div.titlepage`; Sphinx or MkDocs:
    an `a.headerlink`).

    The lists are in document order. The DocBook tier (chapter, section ... divisions) is
    returned empty on other pages: "section" or "article" as a class means nothing elsewhere.
    """
    tiers: list[list] = [[] for _ in _TIERS]
    overlays = []
    docbook_divisions = []
    docbook = docs = False
    for node in root.traverse():
        tag = node.tag
        if tag[0] == "-":
            continue
        attrs = node.attributes
        if attrs:
            cls, ident = attrs.get("class") or "", attrs.get("id") or ""
            tier = _tier(cls, ident) if tag in _CONTAINER_TAGS else -1  # other tags' tier is not used
            if _is_overlay(cls, ident) and tag not in ("body", "html"):
                overlays.append(node)
            if cls in _DOCBOOK_DIVISIONS and tag in _CONTAINER_TAGS:
                docbook_divisions.append(node)
            elif cls == "titlepage":
                docbook = True
            elif cls == "headerlink":  # Sphinx, MkDocs: documentation, whose classes name content
                docs = True
        else:
            tier = -1
        if tag == "main":
            tiers[4].append(node)
        elif tag in _CONTAINER_TAGS:
            if tier == 0 or (attrs and attrs.get("itemprop") == "articleBody"):
                tiers[0].append(node)
            elif tag == "article":
                tiers[1].append(node)
            elif tier == 2 or (attrs and attrs.get("role") == "article"):
                tiers[2].append(node)
            elif tier == 3:
                tiers[3].append(node)
            elif tier == 4 or (attrs and attrs.get("role") == "main"):
                if tag != "main":
                    tiers[4].append(node)
    tiers.insert(0, docbook_divisions if docbook else [])
    return tiers, overlays, docbook or docs


def _doomed(root, candidates: list, max_share: float, total: int | None = None) -> list:
    """The `candidates` to delete: those holding at most `max_share` of `root`'s text.

    The guard keeps a page-wide wrapper with a class like "has-sidebar" from taking the article
    with it.
    """
    if not candidates:
        return []
    total = max(total if total is not None else _text_len(root), 1)
    root_id = root.mem_id
    return [n for n in candidates if n.mem_id != root_id and _text_len(n) <= max_share * total]


# From this index on, `_find_container`'s tiers (the DocBook tier is index 0) are named by a
# generic word ("main"): sites nest such wrappers (WebMD: #mainContentContainer_area holds the
# header, footer and side column around #mainContent_area ... the article), so among those
# that hold the voted paragraphs the innermost is taken, not the largest.
_GENERIC_TIERS = 5


def _find_container(body, tiers: list[list]) -> tuple[object, int, dict[int, float]]:
    """The element holding the article: a selector tier's match that agrees with the vote.

    A tier match is taken when it is the voted element or one of its ancestors, or lies inside
    it with at least half its text; the largest such match of the first tier that has one wins
    (the innermost in the generic "main" tier, `_GENERIC_TIERS`).
    Without a vote the largest match of the first tier (with >= 200 chars) wins. Returns
    (container, number of voting paragraphs on the page).
    """
    voted, voters, under = _paragraph_votes(body)
    voted_line = _ancestor_ids(voted) if voted is not None else set()
    voted_len = _text_len(voted) if voted is not None else 0
    for k, matches in enumerate(tiers):
        sized = sorted(((_text_len(c), i, c) for i, c in enumerate(matches)), reverse=True)
        innermost = k >= _GENERIC_TIERS and voted is not None
        if innermost:
            sized.reverse()
        for n, _, cand in sized:
            if n < 200:
                if innermost:
                    continue
                break
            if voted is None or cand.mem_id in voted_line or (
                    voted.mem_id in _ancestor_ids(cand) and n >= 0.5 * voted_len):
                posts = _with_peer_posts(cand, matches, body) if voted is not None else cand
                return (_repeated_siblings(cand, under, body) if posts is cand else posts), voters, under
    if voted is None:
        return body, voters, under
    container = _repeated_siblings(voted, under, body)
    return (_with_sibling_text(container, under) if container is voted else container), voters, under


# A peer post holds at least this many characters; the posts hold at least this share of the
# text of their lowest common ancestor (else it is a page wrapper with menus and side columns).
_PEER_CHARS = 100
_PEER_SHARE = 0.5


def _with_peer_posts(cand, matches: list, body):
    """`cand`, or the lowest common ancestor of `cand` and its peers: the other matches of its
    tier alike in tag and first class (`_signature`) with >= `_PEER_CHARS` of text, when the
    posts hold >= `_PEER_SHARE` of that ancestor's text.

    A Q&A page is a question and its answers, each body in the same element (askbot's
    div.post-content, Stack Overflow's div.s-prose): one long accepted answer took the vote and
    the tier match, and the question (and shorter answers) were lost: the alike-siblings test
    (`_repeated_siblings`) wants the others to hold twice its text, and the question does not
    sit beside the answers on every site.
    """
    sig = _signature(cand)
    line = _ancestor_ids(cand)
    peers = [m for m in matches if m.mem_id != cand.mem_id and _signature(m) == sig
             and m.mem_id not in line and cand.mem_id not in _ancestor_ids(m)
             and not _boilerplate(m) and _text_len(m) >= _PEER_CHARS]
    if not peers:
        return cand
    common = cand
    for peer in peers:
        peer_line = _ancestor_ids(peer)
        while common is not None and common.mem_id not in peer_line:
            common = common.parent
        if common is None or common.mem_id == body.mem_id or common.tag in ("body", "html"):
            return cand
    held = _text_len(cand) + sum(_text_len(p) for p in peers)
    return common if held >= _PEER_SHARE * _text_len(common) else cand


# A sibling of the voted element (or of its ancestor) joins it when it is alike (same tag and
# first class: one card of a list) and holds this share of the element's voting text, or holds
# more than all of it, or is a paragraph of >= 80 characters at most a quarter of it links.
# (readability's sibling step takes any sibling with 0.2 of the top score: on the news set that
# took press releases' "About the company" boxes, and a legal notice beside short CJK posts.)
_SIBLING_SHARE = 0.5
_HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))


def _with_sibling_text(node, under: dict[int, float]):
    """`node`, or its ancestor (up to 4 levels up) with the siblings that continue its text.

    Pages without a content wrapper (sqlite.org's, many small sites') put their text in a run
    of blocks straight under <body>: intro paragraphs, then a list of long items, then a table;
    the vote picks one of them and the rest was lost (sqlite-famous kept its list without the
    introduction, sqlite-books one book of twelve). At the first level up where some sibling
    joins (see `_SIBLING_SHARE`), the parent becomes the container and its other element
    children are deleted (headings stay). When that parent (or the voted element) sits straight
    under <body>, <body>'s own blocks then join too when made of paragraphs (`_PARAGRAPH_MADE`):
    the first join was often among the voted list's items, and the page's other lists and tables
    were lost (sqlite-quickstart, -footprint, -books: 3 of 5 snippets). A sibling that is
    boilerplate by `_prune`'s tests (comments, related stories, share bars) never joins. Only
    for a container found by the vote alone: a tier match (`.entry-content`, `<article>` ...)
    is the site's own statement of where the text is.
    """
    own = under.get(node.mem_id, 0.0)
    if own <= 0:
        return node
    level = container = node
    for depth in range(5):
        parent = level.parent
        if parent is None or parent.tag == "html":
            break
        at_body = parent.tag == "body"
        if container is not node and not at_body or depth == 4 and container is node:
            break  # after a join only <body> may add more (`_PARAGRAPH_MADE`); else 4 levels up
        sig = _signature(level)
        drop, joined = [], False
        for child in parent.iter():  # element children
            if child.mem_id == level.mem_id or child.tag in _HEADINGS:
                continue
            alike = _signature(child) == sig
            votes = under.get(child.mem_id, 0.0)
            if not _boilerplate(child) and (
                    _is_prose(child) or votes >= own * (_SIBLING_SHARE if alike else 1.0)
                    or at_body and child.tag in _FLOW and votes > 0 and votes >= _PARAGRAPH_MADE * _text_len(child)):
                joined = True
            else:
                drop.append(child)
        if joined:
            _remove(drop)
            container = parent
        elif container is not node:
            break
        level = parent
    return container


# Straight under <body> (no wrapper at all), a list, table or quote (`_FLOW`: the text's own
# blocks, not a layout <div>: a site's legal box is a div of paragraphs too) also joins when it
# is made of paragraphs: voting text is at least this share of its text (sqlite.org: an intro,
# a list of long items, a second and a third such list, one table per book). Menus and link
# lists hold no voting <p>.
_PARAGRAPH_MADE = 0.5
_FLOW = frozenset(("ul", "ol", "dl", "table", "blockquote"))


def _boilerplate(node) -> bool:
    """Boilerplate by tag, ARIA role or class/id words (`_prune`'s test): a comment thread
    beside an article holds more voting text than the article and must not join it."""
    if node.tag in _BOILER_TAGS:
        return True
    attrs = node.attributes
    if not attrs:
        return False
    return attrs.get("role") in _BOILER_ROLES or _is_boiler(attrs.get("class") or "", attrs.get("id") or "")


def _is_prose(node) -> bool:
    """A <p> of >= 80 characters, at most a quarter of them in links."""
    if node.tag != "p":
        return False
    n = _text_len(node)
    if n < 80:
        return False
    links = sum(_text_len(a) for a in node.css("a[href]"))
    return links <= 0.25 * n


def _signature(node) -> tuple[str, str]:
    attrs = node.attributes
    return node.tag, (attrs.get("class") or "").split(" ")[0] if attrs else ""


def _repeated_siblings(node, under: dict[int, float], body):
    """`node`, or the ancestor (up to `_POST_LEVELS` up) whose children repeat the structure of
    the branch holding `node` and hold, together, at least twice its text.

    A forum thread or a comment-less Q&A page is a run of posts alike in tag and first class
    (`div.post`, `article.message`); the vote and the tiers both pick one of them. Siblings of
    another structure (a comment list beside an article) do not count, so an article does not
    grow into what follows it. A post's weight is its voting text or, when more, its text
    outside links (`_prose_len`): posts written as lines with <br> (IPB, vBulletin) do not vote,
    and the one long post that did held the whole vote (grasscity's thread: 1 post of 12 kept).
    """
    own = under.get(node.mem_id, 0.0)
    if own <= 0:
        return node
    branch, parent = node, node.parent
    for _ in range(_POST_LEVELS):
        if parent is None or parent.mem_id == body.mem_id or parent.tag in ("body", "html"):
            return node
        sig = _signature(branch)
        same = [c for c in parent.iter() if _signature(c) == sig]
        if len(same) >= 3:
            votes = [under.get(c.mem_id, 0.0) for c in same]
            need = 2 * max(under.get(branch.mem_id, 0.0), own)
            if sum(1 for v in votes if v > 0) >= 3 and sum(votes) >= need:
                return parent
            # posts that cast no vote: weigh their text outside links (counted only when the
            # siblings' whole text could reach the bar: link text costs a CSS query per sibling)
            if sum(_text_len(c) for c in same) >= need:
                weights = [max(v, _prose_len(c)) for v, c in zip(votes, same)]
                need = 2 * max(under.get(branch.mem_id, 0.0), _prose_len(branch), own)
                if sum(1 for w in weights if w > 0) >= 3 and sum(weights) >= need:
                    return parent
        branch, parent = parent, parent.parent
    return node


# Levels above the voted element where a post's repeating unit may sit (IPB: div.post >
# div.post_body > div.post_wrap > div.post_block, the unit, under div#ips_Posts; table-layout
# BBSs nest each post in tables in cells: mitbbs' unit, a <tr>, is 9 levels up). 5 levels kept
# mitbbs' thread to its first post (F1 0.64 -> 0.94); at 10 no other page of any family moved.
_POST_LEVELS = 10


def _prose_len(node) -> int:
    """Characters of text under `node` outside links."""
    return _text_len(node) - sum(_text_len(a) for a in node.css("a[href]"))


def _prune(root, docs: bool = False) -> None:
    """Delete boilerplate under the container: by tag, ARIA role, or class/id words.

    On documentation pages class/id words are not used: classes name content there (guimenu,
    sidebar, caption, tip) and Sphinx's section ids are slugs of their titles (a chapter lost
    its "Sponsoring packages" and "Usertags" sections); only DocBook's own chrome goes (tables
    of contents, nav bars). Nor is <aside> deleted there: docutils (Sphinx) writes its
    sidebars, topics and footnotes as <aside> (python-library-logging's "This page contains only
    reference information" box, every footnote: 41 Sphinx pages lost one snippet of 5).
    """
    doomed, worded = [], []  # worded: boilerplate by the class word "widget"
    for node in root.traverse():
        tag = node.tag
        if tag in _BOILER_TAGS and (tag != "form" or not _wraps_text(node, root)) and not (docs and tag == "aside"):
            doomed.append(node)
            continue
        attrs = node.attributes
        if not attrs:
            continue
        if attrs.get("role") in _BOILER_ROLES:
            doomed.append(node)
        elif docs:
            if _DOCBOOK_CHROME.match(attrs.get("class") or ""):
                doomed.append(node)
        elif tag not in _INLINE and _is_boiler(attrs.get("class") or "", attrs.get("id") or ""):
            doomed.append(node)
            if "widget" in (attrs.get("class") or "").lower():
                worded.append(node)
    doomed = _doomed(root, doomed, 0.5)
    if worded:
        total = _text_len(root)
        if sum(_text_len(n) for n in worded) > _WORDED_SHARE * total:  # cheap bound first (nested count twice)
            gone, outer = {n.mem_id for n in doomed}, set()
            for n in worded:
                if n.mem_id in gone and not (_ancestor_ids(n.parent) & outer):
                    outer.add(n.mem_id)
            if sum(_text_len(n) for n in worded if n.mem_id in outer) > _WORDED_SHARE * total:
                kept = {n.mem_id for n in worded}
                doomed = [n for n in doomed if n.mem_id not in kept]
    _remove(doomed)


# Elements named "widget" (class) never delete more than this share of the container's text:
# page builders lay a page's own content out as widgets (SiteOrigin's div.so-panel.widget, a
# Joomla home's div.post.widget), and inside the CMS's own body element the word emptied it
# (arxan.com, inmykonos.com: no text, then trafilatura's 1 snippet of 5). Only "widget": the same
# guard for every class word kept a short blog post's long comment thread (news, GiveWell
# open thread: F1 0.94 -> 0.10). Tags, roles and other words still go.
_WORDED_SHARE = 0.8


# A form whose text outside links and labels is at least this long, and this share of the
# container's text, wraps content (with the container's heading, see `_wraps_text`).
_FORM_TEXT = 150
_FORM_SHARE = 0.25


def _wraps_text(form, root) -> bool:
    """A form that wraps the page's text, not one to fill in: it holds the container's heading
    (its first <h1>, else its first <h2>) and >= `_FORM_TEXT` characters outside links and
    labels, >= `_FORM_SHARE` of the container's. Shops put the whole product (name, price,
    description) in the add-to-cart form (davidcareyinc's, dragees-massardier's product text was
    deleted with it); a forum's quick reply + register form (mazdaworld's, with its "Register Now"
    heading and a 160-character instruction) holds a fifth of the thread's text. Its
    controls are gone by then (`_JUNK_TAGS`); such a form is still boilerplate by its class / id
    words (`commentform`, `newsletter`...)."""
    heading = root.css_first("h1") or root.css_first("h2")
    if heading is None or form.mem_id not in _ancestor_ids(heading):
        return False
    own = _prose_len(form) - sum(_text_len(c) for c in form.css("label"))
    return own >= _FORM_TEXT and own >= _FORM_SHARE * _text_len(root)


# A table row with at most this much text is data (standings, a meal plan, a spec sheet): its
# cells go on one line, tab-separated (trafilatura writes " | "; a tab keeps the cells apart and
# reads as a space to whitespace-normalised matching). One line per cell made short repeated
# cells ("0", "Meal 3") duplicates that `_postprocess` deleted: news pages with tables lost 40%
# of their words. Each cell still passes the per-block tests (a link cell or a "Share" cell
# goes: DocBook tables' package links, texinfo's navigation rows); a longer row is page
# layout, and its cells stay blocks.
_ROW_CHARS = 300


def _row_text(cells: list[list]) -> str:
    """The line of a short row from its cells ([text parts, link chars, link letters and digits]
    each), joined by tabs
    ("" when no cell is kept). A row with a cell of its own words (no link in it, 3 or more
    letters or digits) is data, and every cell stays: a package table's name and popcon cells
    link, its description does not. In any other row only the cells that pass the per-block
    link test stay: texinfo's `[<< Tweaking output] [Up: Appearance of objects]` rows go, in
    every language (their link share is no guide: CJK labels are short beside the brackets, so
    a cell whose letters and digits are all in links goes too: "[ 休符 > ]", 4 of 8 characters
    linked, leaked on the Japanese and Chinese pages)."""
    texts = [(" ".join("".join(parts).split()), links, words) for parts, links, words in cells]
    data = any(links == 0 and sum(ch.isalnum() for ch in text) >= 3 for text, links, _ in texts)
    return "\t".join(text for text, links, words in texts
                      if text and not _BOILER_LINE.match(text)
                      and (data or links <= 0.5 * len(text) and words < sum(ch.isalnum() for ch in text)))


def _render(node, blocks: list[tuple[str, int, int, str | None]], pre: list[int]) -> None:
    """Walk `node`, appending (block text, link chars, links, its link text if the block is a
    whole <p> else None) for each block-level run of text; pre[0] counts the
    characters inside <pre> (a confidence signal). A short table row is one block
    (`_ROW_CHARS`)."""
    parts: list[str] = []
    link = [0, 0]  # link chars, links (<a href> entered) of the block so far
    link_parts: list[str] = []  # the block's link text (read only for a <p>: `_SENTENCE_OWN`)
    in_pre = 0
    # inside a one-line row: its cells so far, [text parts, link chars, link letters] each
    cells: list[list] | None = None

    def flush(para: bool = False) -> None:  # para: the block is a whole <p>
        if parts:
            text = " ".join("".join(parts).split())  # = \s+ -> " ", stripped: the same whitespace, 20x faster on long blocks
            if text:
                own_links = "".join(link_parts) if para else None
                blocks.append((text, min(link[0], len(text)), link[1], own_links))
            parts.clear()
            link[0] = link[1] = 0
            link_parts.clear()

    # An explicit stack, not recursion: pages nest thousands of levels deep.
    stack = [(node.iter(include_text=True), False, False)]  # (children, inside <a>, is a block)
    while stack:
        children, in_link, is_block = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if is_block == 3:  # the end of a one-line row: links do not count, its link cells are gone
                text = _row_text(cells)
                cells = None
                if text:
                    blocks.append((text, 0, 0, None))
            elif is_block:
                flush(is_block == 4)
                if is_block == 2:
                    in_pre -= 1
            continue
        tag = child.tag
        if tag == "-text":
            text = child.text_content
            if text:
                if cells is not None:
                    if not cells:
                        cells.append([[], 0, 0])
                    cells[-1][0].append(text)
                    if in_link:
                        cells[-1][1] += len(text.strip())
                        cells[-1][2] += sum(ch.isalnum() for ch in text)
                    continue
                parts.append(text)
                if in_link:
                    link[0] += len(text.strip())
                    link_parts.append(text)
                if in_pre:
                    pre[0] += len(text.strip())
        elif tag in _SKIP:
            continue
        elif cells is not None:  # inside a one-line row: a cell starts one, any other element is inline
            if tag == "td" or tag == "th":
                cells.append([[], 0, 0])
            elif tag in _BLOCK and cells:
                cells[-1][0].append(" ")
            stack.append((child.iter(include_text=True), in_link or (tag == "a" and "href" in child.attributes), False))
        elif tag == "tr" and len(child.text()) <= _ROW_CHARS:
            flush()
            cells = []
            stack.append((child.iter(include_text=True), in_link, 3))
        elif tag in _BLOCK:
            flush()
            if tag == "pre":
                in_pre += 1
            stack.append((child.iter(include_text=True), in_link, 2 if tag == "pre" else 4 if tag == "p" else 1))
        else:
            # only a link with an href counts: DocBook's unclosed <a id=...> anchors swallow
            # whole sections when parsed, and their text was dropped as "link lists"
            opens = not in_link and tag == "a" and "href" in child.attributes
            link[1] += opens
            stack.append((child.iter(include_text=True), in_link or opens, False))
    flush()


# A short line over half links is a menu or a link list, unless it is words around one or two
# linked phrases: an ingredient "1/2 cup [ranch dressing]", "[Albert] from [convert mediawiki to
# ikiwiki]", a teaser sentence whose subject is linked. Three or more links (texinfo's "Other
# languages: English, Català, ..."), or a line that is over 70% one link ("Read more: [title]"),
# still go. Measured on every family: snippet recall up on news, DocBook, readability, recipes;
# the 0.7 alone, without the link count, let texinfo's language bars in (-0.007 F1 there).
_PHRASE_LINKS = 2
# ... and a paragraph (<p>) of 3 or more links that ends as a sentence ends, with at least
# `_SENTENCE_OWN` letters and digits of its own (about four words outside the links), is a
# sentence about those links, not a menu: "You'll also find [AirPods ...] and [Black Friday
# pricing ...].", DocBook's "Anti-spam techniques such as [DKIM], [SPF], and [DMARC] are ...".
# On every family: 60 lines kept, all in the truth. A label and links ("Other languages:
# [English], [Deutsch] ...", "Posted in [A], [B], [C]", 8-14 letters of their own) still goes;
# at 15 "Follow Newsbeat on [Instagram], [Facebook] ..." came in, without the end test tag lines
# and "home | products | about us" menus in <p>.
_SENTENCE_LINKS = 3
_SENTENCE_END = frozenset(".!?。．！？")
_SENTENCE_OWN = 20


def _letters(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _postprocess(blocks: list[tuple[str, int, int, str | None]]) -> str:
    out: list[str] = []
    seen: set[str] = set()
    for text, link, links, para_links in blocks:
        n = len(text)
        if _BOILER_LINE.match(text):
            continue
        sentence = (para_links is not None and links >= _SENTENCE_LINKS and text[-1] in _SENTENCE_END
                    and _letters(text) - _letters(para_links) >= _SENTENCE_OWN)
        if link > 0.5 * n and n < 300 and not sentence and not (
                links <= _PHRASE_LINKS and 3 * link <= 2 * n and "://" not in text and "www." not in text):
            continue
        if text in seen and n < 200:
            continue
        seen.add(text)
        out.append(text)
    return "\n".join(out)
