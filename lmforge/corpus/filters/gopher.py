"""Gopher repetition and quality rules (Rae et al. 2021, table A1), as FineWeb applied them.

Same rules and thresholds as datatrove 0.10.1's `GopherRepetitionFilter` and
`GopherQualityFilter`, with two differences:

- words come from `text.split_words` (one regex) instead of a spaCy tokenizer;
- n-gram repetition works on 64-bit hashes of the word sequence (numpy), and skips the
  duplicate-n-gram scan for every n once the 5-gram scan finds no repeat (a repeated 6-gram
  contains a repeated 5-gram).

Reasons keep datatrove's names where they say what happened; datatrove's
"gopher_enough_stop_words" (returned when there are *not* enough) is `gopher_too_few_stop_words`
here, and its "below/above_avg_threshold" are `gopher_avg_word_too_short/long`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from datatrove.data import Document

from lmforge.corpus.base import DocFilter
from lmforge.corpus.filters._config import build_config, check_fraction, check_ngram_pairs, check_positive
from lmforge.corpus.filters.text import has_alpha, is_symbol_word, split_words

EMPTY_DOCUMENT = "empty_document"  #: no text at all

# repetition
GOPHER_DUPLICATE_PARAGRAPHS = "gopher_duplicate_paragraphs"  #: too many paragraphs repeat an earlier one
GOPHER_DUPLICATE_PARAGRAPH_CHARS = "gopher_duplicate_paragraph_chars"  #: too many characters in repeated paragraphs
GOPHER_DUPLICATE_LINES = "gopher_duplicate_lines"  #: too many lines repeat an earlier one
GOPHER_DUPLICATE_LINE_CHARS = "gopher_duplicate_line_chars"  #: too many characters in repeated lines
GOPHER_TOP_NGRAM = "gopher_top_{n}_gram"  #: the most frequent n-gram covers too many characters
GOPHER_DUPLICATE_NGRAMS = "gopher_duplicate_{n}_grams"  #: repeated n-grams cover too many characters

# quality
GOPHER_SHORT_DOC = "gopher_short_doc"  #: fewer non-symbol words than min_doc_words
GOPHER_LONG_DOC = "gopher_long_doc"  #: more non-symbol words than max_doc_words
GOPHER_AVG_WORD_TOO_SHORT = "gopher_avg_word_too_short"  #: mean word length below min_avg_word_length
GOPHER_AVG_WORD_TOO_LONG = "gopher_avg_word_too_long"  #: mean word length above max_avg_word_length
GOPHER_TOO_MANY_HASHES = "gopher_too_many_hashes"  #: '#' per word above max_symbol_word_ratio
GOPHER_TOO_MANY_ELLIPSIS = "gopher_too_many_ellipsis"  #: '...'/'…' per word above max_symbol_word_ratio
GOPHER_TOO_MANY_BULLETS = "gopher_too_many_bullets"  #: too many lines start with a bullet
GOPHER_TOO_MANY_END_ELLIPSIS = "gopher_too_many_end_ellipsis"  #: too many lines end with an ellipsis
GOPHER_TOO_FEW_ALPHA_WORDS = "gopher_too_few_alpha_words"  #: too few words hold a letter
GOPHER_TOO_FEW_STOP_WORDS = "gopher_too_few_stop_words"  #: fewer distinct stop words than min_stop_words

_PARAGRAPH_RE = re.compile(r"\n{2,}")
_LINES_RE = re.compile(r"\n+")


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """(number of items equal to an earlier one, their characters).

    >>> find_duplicates(["a", "bb", "a", "bb", "c"])
    (2, 3)
    """
    seen: set[str] = set()
    dup_items = dup_chars = 0
    for item in items:
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup_items, dup_chars


_MULT = np.uint64(0x9E3779B97F4A7C15)


def _ngram_hashes(word_ids: np.ndarray, n: int) -> np.ndarray:
    """One uint64 per n-gram starting at each position (polynomial hash, wraps mod 2**64)."""
    m = len(word_ids) - n + 1
    h = word_ids[:m].copy()
    with np.errstate(over="ignore"):
        for k in range(1, n):
            h = h * _MULT + word_ids[k : k + m]
    return h


def top_ngram_chars(hashes: np.ndarray, word_lens: np.ndarray, n: int) -> int:
    """Characters covered by the most frequent n-gram, counted as `" ".join(ngram)` times count
    (ties go to the n-gram seen first, as `Counter.most_common`)."""
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    best = counts.max()
    start = int(first[counts == best].min())
    return (int(word_lens[start : start + n].sum()) + n - 1) * int(best)


def duplicate_ngram_chars(hashes: np.ndarray, cum_lens: np.ndarray, n: int) -> int:
    """Characters of n-grams repeating an earlier one, scanning left to right and jumping past
    each repeat (Gopher's definition; words are joined without spaces)."""
    values = hashes.tolist()
    seen: set[int] = set()
    repeated = idx = 0
    end = len(values)
    while idx < end:
        value = values[idx]
        if value in seen:
            repeated += cum_lens[idx + n] - cum_lens[idx]
            idx += n
        else:
            seen.add(value)
            idx += 1
    return int(repeated)


@dataclass
class GopherRepetitionConfig:
    """Gopher repetition thresholds (FineWeb defaults). Each fraction: None disables it."""

    dup_line_frac: float | None = field(default=0.3, metadata={"help": "max fraction of lines that repeat an earlier line"})
    dup_para_frac: float | None = field(default=0.3, metadata={"help": "max fraction of paragraphs that repeat an earlier one"})
    dup_line_char_frac: float | None = field(default=0.2, metadata={"help": "max fraction of characters in repeated lines"})
    dup_para_char_frac: float | None = field(default=0.2, metadata={"help": "max fraction of characters in repeated paragraphs"})
    top_n_grams: tuple[tuple[int, float], ...] = field(
        default=((2, 0.2), (3, 0.18), (4, 0.16)),
        metadata={"help": "(n, max fraction of characters covered by the most frequent n-gram) pairs"},
    )
    dup_n_grams: tuple[tuple[int, float], ...] = field(
        default=((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
        metadata={"help": "(n, max fraction of characters inside repeated n-grams) pairs"},
    )

    def __post_init__(self):
        check_fraction("dup_line_frac", self.dup_line_frac, 0.3)
        check_fraction("dup_para_frac", self.dup_para_frac, 0.3)
        check_fraction("dup_line_char_frac", self.dup_line_char_frac, 0.2)
        check_fraction("dup_para_char_frac", self.dup_para_char_frac, 0.2)
        self.top_n_grams = check_ngram_pairs("top_n_grams", self.top_n_grams, ((2, 0.2), (3, 0.18), (4, 0.16)))
        self.dup_n_grams = check_ngram_pairs("dup_n_grams", self.dup_n_grams, ((5, 0.15), (6, 0.14), "..."))


class GopherRepetitionFilter(DocFilter):
    """Drops documents whose lines, paragraphs or word n-grams repeat too much."""

    name = "👯 Gopher repetition"

    def __init__(self, config: GopherRepetitionConfig | None = None, keep_rejected: bool = False, **overrides):
        super().__init__(keep_rejected)
        self.config = build_config(GopherRepetitionConfig, config, overrides)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        cfg = self.config
        text = doc.text
        if not text:
            return False, EMPTY_DOCUMENT
        n_chars = len(text)

        paragraphs = _PARAGRAPH_RE.split(text.strip())
        dup_paras, dup_chars = find_duplicates(paragraphs)
        if cfg.dup_para_frac and dup_paras / len(paragraphs) > cfg.dup_para_frac:
            return False, GOPHER_DUPLICATE_PARAGRAPHS
        if cfg.dup_para_char_frac and dup_chars / n_chars > cfg.dup_para_char_frac:
            return False, GOPHER_DUPLICATE_PARAGRAPH_CHARS

        lines = _LINES_RE.split(text)
        dup_lines, dup_chars = find_duplicates(lines)
        if cfg.dup_line_frac and dup_lines / len(lines) > cfg.dup_line_frac:
            return False, GOPHER_DUPLICATE_LINES
        if cfg.dup_line_char_frac and dup_chars / n_chars > cfg.dup_line_char_frac:
            return False, GOPHER_DUPLICATE_LINE_CHARS

        words = split_words(text)
        if not words:
            return True
        vocab: dict[str, int] = {}
        word_ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), dtype=np.uint64, count=len(words))
        word_ids = word_ids * np.uint64(0xBF58476D1CE4E5B9) + np.uint64(1)  # spread ids over 64 bits
        word_lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))

        for n, max_frac in cfg.top_n_grams:
            if len(words) < n:
                continue
            if top_ngram_chars(_ngram_hashes(word_ids, n), word_lens, n) / n_chars > max_frac:
                return False, GOPHER_TOP_NGRAM.format(n=n)

        cum_lens = np.concatenate(([0], np.cumsum(word_lens))).tolist()
        no_repeat_below = None  # smallest n found to have no repeated n-gram at all
        for n, max_frac in cfg.dup_n_grams:
            if len(words) < n or (no_repeat_below is not None and n >= no_repeat_below):
                continue
            hashes = _ngram_hashes(word_ids, n)
            if len(np.unique(hashes)) == len(hashes):
                no_repeat_below = n
                continue
            if duplicate_ngram_chars(hashes, cum_lens, n) / n_chars > max_frac:
                return False, GOPHER_DUPLICATE_NGRAMS.format(n=n)
        return True


STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


@dataclass
class GopherQualityConfig:
    """Gopher quality thresholds (FineWeb defaults). Each threshold: None disables it."""

    min_doc_words: int | None = field(default=50, metadata={"help": "min words that are not only punctuation"})
    max_doc_words: int | None = field(default=100_000, metadata={"help": "max words that are not only punctuation"})
    min_avg_word_length: float | None = field(default=3, metadata={"help": "min mean word length (characters)"})
    max_avg_word_length: float | None = field(default=10, metadata={"help": "max mean word length (characters)"})
    max_symbol_word_ratio: float | None = field(
        default=0.1, metadata={"help": "max '#' per word, and max '...'/'…' per word"}
    )
    max_bullet_lines_ratio: float | None = field(
        default=0.9, metadata={"help": "max fraction of lines starting with '•' or '-'"}
    )
    max_ellipsis_lines_ratio: float | None = field(
        default=0.3, metadata={"help": "max fraction of lines ending with '...' or '…'"}
    )
    min_alpha_words_ratio: float | None = field(
        default=0.8,
        metadata={"help": "min fraction of words holding a letter (datatrove: max_non_alpha_words_ratio)"},
    )
    min_stop_words: int | None = field(
        default=2, metadata={"help": "min distinct stop words present (case-sensitive, as Gopher)"}
    )
    stop_words: tuple[str, ...] = field(default=STOP_WORDS, metadata={"help": "the stop words counted"})

    def __post_init__(self):
        check_positive("min_doc_words", self.min_doc_words, 50)
        check_positive("max_doc_words", self.max_doc_words, 100_000)
        if self.min_doc_words and self.max_doc_words and self.min_doc_words > self.max_doc_words:
            raise ValueError(f"min_doc_words={self.min_doc_words} > max_doc_words={self.max_doc_words}: swap them")
        check_positive("min_avg_word_length", self.min_avg_word_length, 3)
        check_positive("max_avg_word_length", self.max_avg_word_length, 10)
        if self.min_avg_word_length and self.max_avg_word_length and self.min_avg_word_length > self.max_avg_word_length:
            raise ValueError(
                f"min_avg_word_length={self.min_avg_word_length} > max_avg_word_length={self.max_avg_word_length}: swap them"
            )
        check_positive("max_symbol_word_ratio", self.max_symbol_word_ratio, 0.1)
        check_fraction("max_bullet_lines_ratio", self.max_bullet_lines_ratio, 0.9)
        check_fraction("max_ellipsis_lines_ratio", self.max_ellipsis_lines_ratio, 0.3)
        check_fraction("min_alpha_words_ratio", self.min_alpha_words_ratio, 0.8)
        if self.min_stop_words is not None and self.min_stop_words < 0:
            raise ValueError(f"min_stop_words={self.min_stop_words} must be >= 0; FineWeb uses 2 (None disables it)")
        if isinstance(self.stop_words, str):
            raise ValueError("stop_words must be a list of words, not one string: e.g. ('the', 'and')")
        self.stop_words = tuple(self.stop_words)
        if self.min_stop_words and len(set(self.stop_words)) < self.min_stop_words:
            raise ValueError(
                f"min_stop_words={self.min_stop_words} but only {len(set(self.stop_words))} stop words given: "
                "add stop words or lower min_stop_words"
            )


class GopherQualityFilter(DocFilter):
    """Drops documents failing Gopher's word-count, word-length, symbol, bullet and stop-word rules."""

    name = "🥇 Gopher quality"

    def __init__(self, config: GopherQualityConfig | None = None, keep_rejected: bool = False, **overrides):
        super().__init__(keep_rejected)
        self.config = build_config(GopherQualityConfig, config, overrides)
        self._stop_words = frozenset(self.config.stop_words)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        cfg = self.config
        text = doc.text
        words = split_words(text)
        n_words = len(words)
        if not n_words:
            return False, EMPTY_DOCUMENT
        content_lens = [len(w) for w in words if not is_symbol_word(w)]
        n_content = len(content_lens)

        if cfg.min_doc_words and n_content < cfg.min_doc_words:
            return False, GOPHER_SHORT_DOC
        if cfg.max_doc_words and n_content > cfg.max_doc_words:
            return False, GOPHER_LONG_DOC

        avg_len = sum(content_lens) / n_content if n_content else 0.0
        if cfg.min_avg_word_length and avg_len < cfg.min_avg_word_length:
            return False, GOPHER_AVG_WORD_TOO_SHORT
        if cfg.max_avg_word_length and avg_len > cfg.max_avg_word_length:
            return False, GOPHER_AVG_WORD_TOO_LONG

        if cfg.max_symbol_word_ratio:
            if text.count("#") / n_words > cfg.max_symbol_word_ratio:
                return False, GOPHER_TOO_MANY_HASHES
            if (text.count("...") + text.count("…")) / n_words > cfg.max_symbol_word_ratio:
                return False, GOPHER_TOO_MANY_ELLIPSIS

        lines = text.splitlines() or [""]
        if cfg.max_bullet_lines_ratio:
            bullets = sum(line.lstrip().startswith(("•", "-")) for line in lines)
            if bullets / len(lines) > cfg.max_bullet_lines_ratio:
                return False, GOPHER_TOO_MANY_BULLETS
        if cfg.max_ellipsis_lines_ratio:
            ellipsis = sum(line.rstrip().endswith(("...", "…")) for line in lines)
            if ellipsis / len(lines) > cfg.max_ellipsis_lines_ratio:
                return False, GOPHER_TOO_MANY_END_ELLIPSIS

        if cfg.min_alpha_words_ratio and sum(map(has_alpha, words)) / n_words < cfg.min_alpha_words_ratio:
            return False, GOPHER_TOO_FEW_ALPHA_WORDS

        if cfg.min_stop_words and len(self._stop_words.intersection(words)) < cfg.min_stop_words:
            return False, GOPHER_TOO_FEW_STOP_WORDS
        return True
