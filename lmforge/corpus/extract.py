"""Main-content extraction: HTML page -> the article's text, paragraphs separated by newlines.

`extract_main_text(html, url=None) -> str` is what `lmforge corpus extract/process` calls on
every HTML response. It is a pure function (module-level caches only), safe in forked workers,
and never raises: any failure gives "" (so does a page with no main content).

How it works (lexbor DOM through selectolax; every selector runs in C):

1. Parse; drop what is never text (script, style, svg, forms' controls, hidden elements).
2. Pick the main container: the first tier of trafilatura-style "article body" selectors
   (`[itemprop=articleBody]`, `.entry-content`, `article`, `#content`, `main` ...) whose best
   match holds enough paragraph text; otherwise a readability-style vote (each <p> gives its
   text length to its parent and half to its grandparent); otherwise <body>.
3. Inside the container, delete boilerplate subtrees by tag (nav, aside, footer, figure...),
   ARIA role and class/id pattern (share, related, comment, newsletter, cookie, promo ...),
   unless a match holds most of the container's text (a page-wide wrapper class like
   "has-sidebar" must not delete the article).
4. Render block by block (p, h1-6, li, div, td ...) in one recursive walk, counting link
   text per block; drop blocks that are mostly links, short "Advertisement"/"Share this"
   lines, and repeated lines.

The numbers (benchmarks/extract.py, 181 pages of scrapinghub's article-extraction-benchmark,
one core) are in the benchmark's output; see the final section of this docstring.
"""

from __future__ import annotations

import re

__all__ = ["extract_main_text"]

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

# Main-container tiers, most specific first (CSS versions of trafilatura's BODY_XPATH).
_CONTAINER_TAGS = ("article", "div", "main", "section")


def _any_tag(cond: str) -> str:
    return ", ".join(f"{tag}{c}" for tag in _CONTAINER_TAGS for c in cond.split("|"))


_TIERS = (
    _any_tag(
        "[itemprop=articleBody]|[class=post]|[class=entry]|#articleContent"
        "|[id*=entry-content i]|[id*=article-content i]|[id*=art-content i]|[id*=article__content i]"
        "|[id*=article-body i]|[id*=article_body i]|[id*=articlebody i]|[id*=article__body i]|[id*=body-text i]"
        "|[class*=post-text i]|[class*=post_text i]|[class*=post-body i]|[class*=postentry i]|[class*=post-entry i]"
        "|[class*=post-content i]|[class*=post_content i]|[class*=postcontent i]|[class*=post_inner_wrapper i]"
        "|[class*=article-text i]|[class*=articletext i]|[class*=entry-content i]|[class*=page-content i]"
        "|[class*=text-content i]|[class*=article-content i]|[class*=art-content i]|[class*=article__content i]"
        "|[class*=article-body i]|[class*=article_body i]|[class*=articlebody i]|[class*=article__body i]"
        "|[class*=body-text i]|[class*=article__container i]"
    ),
    "article",
    _any_tag(
        "[role=article]|#article|#story|[class=postarea]|[class=art-postcontent]|[class=text]|[class=story]"
        "|[id^=primary]|[id*=story-body i]|[class*=fulltext i]|[class^='article ']|[class*=post-bodycopy i]"
        "|[class*=story-content i]|[class*=storycontent i]|[class*=theme-content i]|[class*=blog-content i]"
        "|[class*=section-content i]|[class*=single-content i]|[class*=single-post i]|[class*=main-column i]"
        "|[class*=wpb_text_column i]|[class*=story-body i]|[class*=field-body i]"
    ),
    _any_tag(
        "#content|[class=content]|[id*=content-main i]|[id*=content-body i]|[id*=contentbody i]"
        "|[class*=content-main i]|[class*=content_main i]|[class*=content-body i]|[class*=content__body i]"
        "|[id*=main-content i]|[class*=main-content i]"
    ),
    "main, [role=main], div[class^=main], div[id^=main], section[class^=main], article[class^=main]",
)

# Boilerplate inside the container: tags, roles, and class/id fragments (case-insensitive).
_BOILER_TAGS = "nav, aside, footer, figure, figcaption, form, [role=navigation], [role=complementary], [role=contentinfo], [role=dialog], [role=banner]"
_BOILER_WORDS = (
    "share", "sharing", "social", "related", "comment", "newsletter", "subscribe", "cookie",
    "consent", "promo", "advert", "sponsor", "breadcrumb", "sidebar", "popup", "modal",
    "signup", "sign-up", "recommend", "trending", "most-popular", "mostpopular", "more-stories",
    "read-more", "readmore", "caption", "byline", "author-bio", "tags", "newsfeed", "outbrain",
    "taboola", "navbar", "menu", "toolbar", "pagination", "widget", "disqus", "print",
)
_BOILER = _BOILER_TAGS + ", " + ", ".join(
    f"[class*={w} i], [id*={w} i]" for w in _BOILER_WORDS
)
# Overlays removed from the whole page before the container vote (they are never wrappers).
_OVERLAYS = ", ".join(
    f"[class*={w} i], [id*={w} i]"
    for w in ("cookie", "consent", "gdpr", "newsletter", "subscribe", "popup", "modal", "signup")
)
# class/id fragments that look like boilerplate words but name content
_NOT_BOILER = re.compile(r"commentary|article-body|articlebody|entry-content|post-content|shared-content", re.I)

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
_SPACE = re.compile(r"\s+")


def extract_main_text(html: str, url: str | None = None) -> str:
    """The main text of `html`, paragraphs separated by newlines; "" on no content or any error.

    `url` is accepted for callers that have it (site-specific rules may use it); unused now.
    """
    try:
        if not isinstance(html, str) or not html.strip():
            return ""
        return _extract(html)
    except Exception:  # noqa: BLE001 - the contract is "never raises"
        return ""


def _extract(html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    body = tree.body
    if body is None:
        return ""
    tree.strip_tags(_JUNK_TAGS, recursive=True)
    _remove(body.css(_JUNK))
    _prune(body, _OVERLAYS, 0.2)
    container = _find_container(body)
    _prune(container)
    blocks: list[tuple[str, int]] = []
    _render(container, blocks)
    return _postprocess(blocks)


def _remove(nodes) -> None:
    """Delete `nodes` (a CSS match list, document order) from the tree.

    Reverse order deletes descendants before their ancestors: deleting an ancestor first would
    free the descendants' memory while we still hold them (lexbor frees the whole subtree).
    """
    for node in reversed(nodes):
        node.decompose()


def _text_len(node) -> int:
    return len(_SPACE.sub(" ", node.text()).strip())


def _paragraph_votes(body) -> tuple[object | None, int]:
    """Readability's vote: each <p> gives its text length to its parent, half to its grandparent."""
    scores: dict[int, float] = {}
    nodes: dict[int, object] = {}
    total = 0
    for p in body.css("p, pre"):
        n = len(p.text().strip())
        if n < 25:
            continue
        total += n
        parent = p.parent
        if parent is None:
            continue
        key = parent.mem_id
        nodes[key] = parent
        scores[key] = scores.get(key, 0.0) + n
        grand = parent.parent
        if grand is not None:
            key = grand.mem_id
            nodes[key] = grand
            scores[key] = scores.get(key, 0.0) + n / 2
    if not scores:
        return None, 0
    best = max(scores, key=scores.__getitem__)
    return nodes[best], total


def _ancestor_ids(node) -> set[int]:
    ids = set()
    while node is not None:
        ids.add(node.mem_id)
        node = node.parent
    return ids


def _find_container(body):
    """The element holding the article: a selector tier's match that agrees with the vote."""
    voted, p_total = _paragraph_votes(body)
    voted_line = _ancestor_ids(voted) if voted is not None else set()
    voted_len = _text_len(voted) if voted is not None else 0
    for tier in _TIERS:
        for cand in sorted(body.css(tier), key=_text_len, reverse=True):
            n = _text_len(cand)
            if n < 200:
                break
            if voted is None:
                return cand
            if cand.mem_id in voted_line:  # an ancestor of (or) the voted node
                return cand
            if voted.mem_id in _ancestor_ids(cand) and n >= 0.5 * voted_len:
                return cand
    return voted if voted is not None else body


def _prune(root, selector: str = _BOILER, max_share: float = 0.5) -> None:
    """Delete boilerplate subtrees under `root`, unless one holds over `max_share` of the text."""
    total = max(_text_len(root), 1)
    root_id = root.mem_id
    for node in reversed(root.css(selector)):
        if node.mem_id == root_id or node.tag in ("body", "html"):
            continue
        attrs = (node.attributes.get("class") or "") + " " + (node.attributes.get("id") or "")
        if _NOT_BOILER.search(attrs):
            continue
        if _text_len(node) > max_share * total:
            continue
        node.decompose()


def _render(node, blocks: list[tuple[str, int]]) -> None:
    """Walk `node`, appending (block text, link chars) for each block-level run of text."""
    parts: list[str] = []
    link = [0]

    def flush() -> None:
        if parts:
            text = _SPACE.sub(" ", "".join(parts)).strip()
            if text:
                blocks.append((text, min(link[0], len(text))))
            parts.clear()
            link[0] = 0

    def walk(el, in_link: bool) -> None:
        for child in el.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                text = child.text_content
                if text:
                    parts.append(text)
                    if in_link:
                        link[0] += len(text.strip())
            elif tag in _SKIP:
                continue
            elif tag in _BLOCK:
                flush()
                walk(child, in_link)
                flush()
            else:
                walk(child, in_link or tag == "a")

    walk(node, False)
    flush()


def _postprocess(blocks: list[tuple[str, int]]) -> str:
    out: list[str] = []
    seen: set[str] = set()
    for text, link in blocks:
        n = len(text)
        if _BOILER_LINE.match(text):
            continue
        if link > 0.5 * n and n < 300:
            continue
        if text in seen and n < 200:
            continue
        seen.add(text)
        out.append(text)
    return "\n".join(out)
