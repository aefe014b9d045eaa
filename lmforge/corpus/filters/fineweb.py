"""FineWeb's own quality rules (Penedo et al. 2024), as datatrove 0.10.1 applies them.

On the non-blank lines of a document: too few lines ending in terminal punctuation, too many
short lines, too many characters in repeated lines, or too many newlines per word (lists,
menus) drops it. Words for the last rule come from `text.split_words` instead of spaCy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datatrove.data import Document

from lmforge.corpus.base import DocFilter
from lmforge.corpus.filters._config import build_config, check_fraction, check_positive
from lmforge.corpus.filters.gopher import EMPTY_DOCUMENT, find_duplicates
from lmforge.corpus.filters.text import TERMINAL_PUNCTUATION, split_words

FINEWEB_FEW_PUNCTUATED_LINES = "fineweb_few_punctuated_lines"  #: too few lines end in terminal punctuation
FINEWEB_MANY_SHORT_LINES = "fineweb_many_short_lines"  #: too many lines of <= short_line_length chars
FINEWEB_DUPLICATE_LINE_CHARS = "fineweb_duplicate_line_chars"  #: too many characters in repeated lines
FINEWEB_MANY_NEWLINES = "fineweb_many_newlines"  #: too many newlines per word (a list or menu)


@dataclass
class FineWebQualityConfig:
    """FineWeb quality thresholds (FineWeb defaults)."""

    line_punct_thr: float = field(
        default=0.12, metadata={"help": "min fraction of non-blank lines ending in terminal punctuation"}
    )
    line_punct_exclude_zero: bool = field(
        default=False, metadata={"help": "keep documents where no line ends in punctuation (e.g. some scripts)"}
    )
    stop_chars: tuple[str, ...] | None = field(
        default=None, metadata={"help": "line-final characters that count as punctuation; None: datatrove's set"}
    )
    short_line_thr: float = field(default=0.67, metadata={"help": "max fraction of short lines"})
    short_line_length: int = field(default=30, metadata={"help": "a line of at most this many characters is short"})
    char_duplicates_ratio: float = field(
        default=0.01, metadata={"help": "max fraction of characters (newlines excluded) in repeated lines"}
    )
    new_line_ratio: float = field(default=0.3, metadata={"help": "max newlines per word"})

    def __post_init__(self):
        check_fraction("line_punct_thr", self.line_punct_thr, 0.12, allow_none=False)
        check_fraction("short_line_thr", self.short_line_thr, 0.67, allow_none=False)
        check_positive("short_line_length", self.short_line_length, 30, allow_none=False)
        check_fraction("char_duplicates_ratio", self.char_duplicates_ratio, 0.01, allow_none=False)
        check_positive("new_line_ratio", self.new_line_ratio, 0.3, allow_none=False)
        if self.stop_chars is not None:
            if not self.stop_chars or isinstance(self.stop_chars, str):
                raise ValueError("stop_chars must be a non-empty list of characters such as ('.', '!', '?'), or None")
            self.stop_chars = tuple(self.stop_chars)


class FineWebQualityFilter(DocFilter):
    """Drops documents that read as lists, menus or boilerplate by FineWeb's line statistics."""

    name = "🍷 FineWeb quality"

    def __init__(self, config: FineWebQualityConfig | None = None, keep_rejected: bool = False, **overrides):
        super().__init__(keep_rejected)
        self.config = build_config(FineWebQualityConfig, config, overrides)
        self._stop_chars = self.config.stop_chars or tuple(TERMINAL_PUNCTUATION)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        cfg = self.config
        text = doc.text
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return False, EMPTY_DOCUMENT

        ratio = sum(line.endswith(self._stop_chars) for line in lines) / len(lines)
        if ratio < cfg.line_punct_thr and not (ratio == 0 and cfg.line_punct_exclude_zero):
            return False, FINEWEB_FEW_PUNCTUATED_LINES

        if sum(len(line) <= cfg.short_line_length for line in lines) / len(lines) > cfg.short_line_thr:
            return False, FINEWEB_MANY_SHORT_LINES

        if find_duplicates(lines)[1] / len(text.replace("\n", "")) > cfg.char_duplicates_ratio:
            return False, FINEWEB_DUPLICATE_LINE_CHARS

        n_words = len(split_words(text))
        if text.count("\n") / max(n_words, 1) > cfg.new_line_ratio:
            return False, FINEWEB_MANY_NEWLINES
        return True
