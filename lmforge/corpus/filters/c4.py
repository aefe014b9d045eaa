"""C4's line and page rules (Raffel et al. 2020), as datatrove 0.10.1 and FineWeb apply them.

Lines are dropped (the document keeps its other lines, and its text is rewritten) when they
hold a word over `max_word_length` characters, have fewer than `min_words_per_line` words,
mention "javascript", or hold a cookie/terms-of-use phrase; with `filter_no_terminal_punct`
(off in FineWeb) also when they do not end in terminal punctuation. Wikipedia-style citations
(`[1]`, `[edit]`, `[citation needed]`) are removed from lines. The whole document is dropped
when a kept line says "lorem ipsum", holds a `{`, or the kept lines hold fewer than
`min_num_sentences` sentences.

Sentences are counted by `text.count_sentences` (spaCy-sentencizer rules on regex tokens),
and counting stops once `min_num_sentences` is reached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from datatrove.data import Document

from lmforge.corpus.base import DocFilter
from lmforge.corpus.filters._config import build_config
from lmforge.corpus.filters.text import count_sentences

C4_LOREM_IPSUM = "c4_lorem_ipsum"  #: a kept line contains "lorem ipsum" (placeholder page)
C4_CURLY_BRACKET = "c4_curly_bracket"  #: a kept line contains "{" (code or template)
C4_TOO_FEW_SENTENCES = "c4_too_few_sentences"  #: the kept lines hold fewer than min_num_sentences sentences

CITATION_RE = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


@dataclass
class C4QualityConfig:
    """C4 quality rules (FineWeb settings: everything on except the terminal-punctuation rule)."""

    remove_citations: bool = field(default=True, metadata={"help": "strip [1], [edit], [citation needed] from lines"})
    filter_no_terminal_punct: bool = field(
        default=False, metadata={"help": "drop lines not ending in . ? ! \" ' (C4: on; FineWeb: off)"}
    )
    min_num_sentences: int | None = field(
        default=5, metadata={"help": "drop documents whose kept lines hold fewer sentences; None disables"}
    )
    min_words_per_line: int | None = field(
        default=3, metadata={"help": "drop lines with fewer whitespace-separated words; None disables"}
    )
    max_word_length: int | None = field(
        default=1000, metadata={"help": "drop lines holding a word longer than this; None disables"}
    )
    filter_lorem_ipsum: bool = field(default=True, metadata={"help": "drop documents saying 'lorem ipsum'"})
    filter_javascript: bool = field(default=True, metadata={"help": "drop lines mentioning 'javascript'"})
    filter_curly_bracket: bool = field(default=True, metadata={"help": "drop documents containing '{'"})
    filter_policy: bool = field(default=True, metadata={"help": "drop lines with cookie / terms-of-use phrases"})

    def __post_init__(self):
        for name, default in (("min_num_sentences", 5), ("min_words_per_line", 3), ("max_word_length", 1000)):
            value = getattr(self, name)
            if value == -1:  # datatrove's spelling of "disabled"
                setattr(self, name, None)
            elif value is not None and value < 0:
                raise ValueError(f"{name}={value} must be >= 0; FineWeb uses {default} (None disables it)")


class C4QualityFilter(DocFilter):
    """C4 line cleanup and page rules; rewrites `doc.text` to the kept lines."""

    name = "⛰ C4 quality"

    def __init__(self, config: C4QualityConfig | None = None, keep_rejected: bool = False, **overrides):
        super().__init__(keep_rejected)
        self.config = build_config(C4QualityConfig, config, overrides)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        cfg = self.config
        min_sentences = cfg.min_num_sentences or 0
        num_sentences = 0
        kept_lines = []
        for line in doc.text.splitlines():
            line = line.strip()
            words = line.split()
            if cfg.max_word_length is not None and any(len(word) > cfg.max_word_length for word in words):
                self.stat_update("c4_line_dropped_long_word")
                continue
            if cfg.remove_citations:
                line = CITATION_RE.sub("", line)
            if cfg.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                self.stat_update("c4_line_dropped_no_terminal_punct")
                continue
            if cfg.min_words_per_line is not None and len(words) < cfg.min_words_per_line:
                self.stat_update("c4_line_dropped_few_words")
                continue
            line_lower = line.lower()
            if cfg.filter_lorem_ipsum and "lorem ipsum" in line_lower:
                return False, C4_LOREM_IPSUM
            if cfg.filter_javascript and "javascript" in line_lower:
                self.stat_update("c4_line_dropped_javascript")
                continue
            if cfg.filter_curly_bracket and "{" in line:
                return False, C4_CURLY_BRACKET
            if cfg.filter_policy and any(phrase in line_lower for phrase in POLICY_SUBSTRINGS):
                self.stat_update("c4_line_dropped_policy")
                continue
            if num_sentences < min_sentences:
                num_sentences += count_sentences(line, stop_at=min_sentences - num_sentences)
            kept_lines.append(line)
        if num_sentences < min_sentences:
            return False, C4_TOO_FEW_SENTENCES
        doc.text = "\n".join(kept_lines).strip()
        return True
