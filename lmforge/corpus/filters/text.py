"""Fast word and sentence splitting shared by the quality filters.

datatrove 0.10.1 splits English words with a blank spaCy tokenizer (`split_into_words(text,
"eng")`) and counts C4 sentences with spaCy's sentencizer; both are the bulk of its filters'
run time. The filters' thresholds were tuned on those tokens, so we approximate spaCy's
English rules with one regular expression instead of reimplementing them:

- punctuation is its own token (`"Hello, world!"` -> `Hello , world !`), runs of dots and
  dashes stay together (`...`, `--`), as do `):`-style bracket/colon pairs;
- numbers keep their separators (`1,000.50`, `10:30`), hyphens split words (`well - known`),
  contractions split as spaCy does (`do n't`, `It 's`);
- URLs, e-mail addresses, dotted abbreviations (`U.S.`, `e.g.`) and spaCy's English
  abbreviation exceptions (`Mr.`, `Inc.`, `Jan.`) are one token.

On the 300 C4 documents + 30 Wikipedia articles the word count is within 1% of spaCy's for
83% of documents (mean difference 0.6%), splitting all 330 takes 0.19 s against spaCy's 3.8 s,
and the filters' keep/drop decisions agree with datatrove's on 99.1-100% per filter
(tests/test_filters.py, benchmarks/filters.py).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

__all__ = [
    "PUNCTUATION_SET",
    "TERMINAL_PUNCTUATION",
    "split_words",
    "count_sentences",
    "is_symbol_word",
    "has_alpha",
]

# spaCy's English tokenizer exceptions that end in a single period (subset that matters)
_ABBREVIATIONS = (
    "Adm Ak Ala Apr Ariz Ark Aug Bros Calif Co Colo Conn Corp Dec Del Dr Feb Fla Ga Gen Gov Ia Id Ill "
    "Inc Ind Jan Jr Jul Jun Kan Kans Ky La Ltd Mar Mass Md Messrs Mich Minn Miss Mo Mont Mr Mrs Ms Mt "
    "Neb Nebr Nev Nov Oct Okla Ore Pa Prof Rep Rev Sen Sep Sept St Tenn Va Wash Wis co vs"
).split()

_TOKEN_RE = re.compile(
    r"""
    [Cc]an(?=not\b)                                              # can not
  | [^\W\d_]+(?=[\s,;!?)\]"”]|$)                                # fast path: a plain word
  | \d+(?=\s|$)                                                  # fast path: a plain number
  | (?:https?://|ftp://|www\.)\S+?(?=[.,;:!?)\]"'”]*(?:\s|$))   # URL without trailing punctuation
  | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                                 # e-mail address
  | (?:[^\W\d_]\.){2,}                                           # U.S.  e.g.  i.e.
  | (?:""" + "|".join(_ABBREVIATIONS) + r""")\.(?=[\s,;:)\]"'”]|$)   # Mr.  Inc.  Jan.
  | [^\W\d_]\.(?=[\s,;:)\]"'”]|$)                              # initials: E.  J.
  | \d+(?:[.,:]\d+)+                                             # 1,000.50  10:30  3.5
  | \w+?(?=n['’]t\b)                                             # do  (of don't)
  | n['’]t\b                                                     # n't
  | ['’](?:[sSdDmM]|re|ve|ll|RE|VE|LL)\b                         # 's 're 'll ...
  | (?:and|or)/(?:or|and)\b                                      # and/or (spaCy exception)
  | \w*[^\W\d_]-\d\w*                                           # UTF-8  COVID-19
  | [A-Z]{1,3}\$                                                 # US$
  | \d+(?=(?:km|cm|mm|m|ft|kg|mg|g|lbs?|oz|mph|G|GB|MB|TB)\b)      # 20 ft  (number, unit)
  | \w+(?:\.(?![A-Z])\w+)+                                        # 123Tinki.com  X3.4
  | \w+
  | \.{2,} | -{2,} | :\) | \):                                    # ...  --  emoticons
  | \S                                                           # any other symbol, alone
    """,
    re.VERBOSE,
)

_SENTENCE_PUNCT = frozenset(".!?") | frozenset(TERMINAL_PUNCTUATION)


@lru_cache(maxsize=8)
def split_words(text: str) -> tuple[str, ...]:
    """Word tokens of `text`, spaCy-English style.

    Cached for the last few texts: Gopher repetition, Gopher quality and FineWeb quality all
    split the same document, and a str caches its own hash, so a hit costs ~nothing.

    >>> split_words("It's a well-known fact, e.g. 1,000.50 dollars!!")
    ('It', "'s", 'a', 'well', '-', 'known', 'fact', ',', 'e.g.', '1,000.50', 'dollars', '!', '!')
    """
    return tuple(_TOKEN_RE.findall(text))


def _is_punct(token: str) -> bool:
    return unicodedata.category(token[0]).startswith("P")


def count_sentences(text: str, stop_at: int | None = None) -> int:
    """Sentences in `text` as spaCy's sentencizer splits them: a new sentence starts at the
    first non-punctuation token after a token that is one sentence-final mark (`.`, `!`, `?`,
    `。`, ...). Abbreviations such as `e.g.` or `Mr.` are single tokens and end nothing.
    `stop_at` returns early once that many sentences are counted.

    >>> count_sentences("One. Two! Three? Mr. Smith said e.g. four.")
    4
    """
    sentences = 0
    seen_end = False
    started = False
    for token in _TOKEN_RE.findall(text):
        if token in _SENTENCE_PUNCT:
            seen_end = True
            started = True
            continue
        if seen_end and not _is_punct(token):
            sentences += 1
            if stop_at is not None and sentences >= stop_at:
                return sentences
            seen_end = False
        started = True
    return sentences + 1 if started else 0


_PUNCT_CHARS = "".join(sorted(PUNCTUATION_SET))


def is_symbol_word(word: str) -> bool:
    """True when every character is punctuation (datatrove's PUNCTUATION_SET): `...`, `--`."""
    return not word.strip(_PUNCT_CHARS)


_ALPHA_RE = re.compile(r"[^\W\d_]")


def has_alpha(word: str) -> bool:
    """True when the word holds at least one letter."""
    return _ALPHA_RE.search(word) is not None
