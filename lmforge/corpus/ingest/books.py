"""`corpus ingest books`: plain-text books (Project Gutenberg files) -> one document per book.

Input: `.txt` files (also `.txt.gz`, `.txt.bz2`), or folders of them; one file is one book.
Decoded as UTF-8 (a byte-order mark dropped), else Windows-1252, else Latin-1: old Gutenberg
files are ISO-8859-1 and say so in their header, which nothing should trust more than the bytes.

Licence header and footer removed (`strip_gutenberg`), the way c-w's `gutenberg` package (and
`gutenbergpy`, which copies it) cleans a file, and then some:

- header: everything up to the last start marker in the first 600 lines:
  `*** START OF THE/THIS PROJECT GUTENBERG EBOOK ...` (also `***START`, lower case, and the
  1990s `*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*` / `*** START OF THE COPYRIGHTED
  PROJECT GUTENBERG`); a credits paragraph right after it ("Produced by", "E-text prepared by",
  "Transcribed from") goes too;
- early 1990s files that have no start marker but whose first line names Project Gutenberg
  ("This is the February 1992 Project Gutenberg release of:", "The Project Gutenberg Etext
  of ..."): the leading paragraphs, within the first 200 lines, up to the last that names
  Project Gutenberg or an etext (c-w keeps these: it knows only markers);
- footer: from the first end marker after 100 lines of text: `*** END OF THE/THIS PROJECT
  GUTENBERG EBOOK`, `End of (the) Project Gutenberg('s) ...`, `*End of The Project Gutenberg
  Etext`, `***** This file should be named ...` (c-w's list, the same rule).

Near-duplicate books (another edition, another transcription, the same book under two file
names) are dropped with MinHash (lmforge.corpus.minhash: word 5-grams, 128 permutations, LSH
bands for the candidates, each candidate pair verified on its estimated Jaccard): a book whose
Jaccard similarity with a book kept before it (in this task) is >= `--near-duplicate` (0.9:
"90% overlap") is dropped as `near_duplicate`. The Millennium Fulcrum editions 2.9 and 3.0 of
Alice's Adventures in Wonderland (the Canterbury corpus copy, and Gutenberg #11 as wordcloud
ships it: other line breaks, quotes and chapter titles) have an exact 5-gram Jaccard of 0.993
(estimated 1.0); the other sample books are at 0.00 from each other. Across tasks (--tasks > 1), run `corpus dedup` after.

Dropped: `empty` (no text after the header and footer go), `too_short` (fewer than
`--min-words` words), `near_duplicate`. Metadata: title, author, language (ISO code: "English"
-> en), ebook (the Gutenberg number), from the header when it has them; file (the input path); encoding;
header/footer (whether one was found and removed).
"""

from __future__ import annotations

import bz2
import gzip
import os
import re
from dataclasses import dataclass
from typing import Iterator

import click
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from lmforge.corpus.base import DocFilter
from lmforge.corpus.ingest.base import BadRecord, Dropped, SourceReader
from lmforge.corpus.ingest.cli import ingest_options, run_source
from lmforge.corpus.options import dataclass_options

# drop reasons (stats.json: dropped_<reason>)
EMPTY = "empty"
TOO_SHORT = "too_short"
NEAR_DUPLICATE = "near_duplicate"

_START = re.compile(r"^\W{0,5}(\*{3} ?start of (the|this) (project gutenberg|pg)|\*end\*the small print|"
                    r"\*{3} ?start of the copyrighted project gutenberg|\*{3} ?start of (the|this) etext)", re.IGNORECASE)
_END = re.compile(r"^\W{0,5}(\*{3} ?end of (the|this) (project gutenberg|pg)|end of (the |this )?project gutenberg|"
                  r"end of (the |this )?(project gutenberg's|pg's)|\*?end of the project gutenberg etext|"
                  r"\*{3} ?end of the copyrighted|end of this is copyrighted|\*{5} this file should be named|"
                  r"fin de project gutenberg|end of project gutenberg)", re.IGNORECASE)
_CREDITS = re.compile(r"^\s*(produced by|e-?text prepared by|transcribed (from|by)|prepared by|this e-?text was)",
                      re.IGNORECASE)
_PG_MENTION = re.compile(r"project gutenberg|\betexts?\b|\bPG\b", re.IGNORECASE)
_FIELD = re.compile(r"^\s*(title|author|language|release date|posting date)\s*:\s*(.+?)\s*$", re.IGNORECASE)
_EBOOK = re.compile(r"\[\s*e-?(?:book|text)\s*#\s*(\d+)\s*\]", re.IGNORECASE)
_OF_BY = re.compile(r"(?:project gutenberg(?:'s)?(?: e-?book| etext)?(?: of)?|release of:?)\s*(.+?)(?:,? by (.+?))?\s*$",
                    re.IGNORECASE)
_WORD = re.compile(r"\w+")
#: header `Language:` names -> the ISO 639-1 codes the rest of lmforge uses (the 25 most common on Gutenberg)
LANGUAGE_CODES = {
    "english": "en", "french": "fr", "german": "de", "finnish": "fi", "dutch": "nl", "italian": "it", "spanish": "es",
    "portuguese": "pt", "chinese": "zh", "latin": "la", "swedish": "sv", "danish": "da", "esperanto": "eo",
    "greek": "el", "hungarian": "hu", "tagalog": "tl", "norwegian": "no", "polish": "pl", "russian": "ru",
    "japanese": "ja", "catalan": "ca", "welsh": "cy", "czech": "cs", "icelandic": "is", "irish": "ga",
}


@dataclass
class Config:
    """Settings of `corpus ingest books` (each is a flag: `--near-duplicate 0.9`)."""

    #: drop a book whose estimated Jaccard similarity (word 5-grams) with a kept book is at least this ('none': keep all)
    near_duplicate: float | None = 0.9
    #: drop books with fewer words after the licence header and footer are removed
    min_words: int = 100
    #: remove the Project Gutenberg licence header and footer
    strip_license: bool = True

    def __post_init__(self):
        if self.near_duplicate is not None and not 0 < self.near_duplicate < 1:
            raise ValueError(f"--near-duplicate must be between 0 and 1 (0.9: 90% overlap), or 'none', not {self.near_duplicate}")
        if self.min_words < 0:
            raise ValueError(f"--min-words must be >= 0, not {self.min_words}")


@dataclass
class Stripped:
    """A book's text without its licence header and footer, and what the header said."""

    text: str
    header: bool
    footer: bool
    meta: dict


def _paragraph_end(lines: list[str], i: int) -> int:
    """Index of the first blank line at or after `i` (or len(lines))."""
    while i < len(lines) and lines[i].strip():
        i += 1
    return i


def _header_fields(lines: list[str]) -> dict:
    meta: dict = {}
    for line in lines:
        m = _FIELD.match(line)
        if m and m.group(1).lower() in ("title", "author", "language") and m.group(1).lower() not in meta:
            meta[m.group(1).lower()] = m.group(2)
        m = _EBOOK.search(line)
        if m and "ebook" not in meta:
            meta["ebook"] = int(m.group(1))
    if "title" not in meta:  # "Project Gutenberg's Alice's Adventures in Wonderland, by Lewis Carroll"
        for n, line in enumerate(lines[:12]):
            if _PG_MENTION.search(line):
                if re.search(r"(release|e-?text|e-?book) of:?\s*$", line, re.IGNORECASE):
                    # "This is the February 1992 Project Gutenberg release of:", the title below
                    rest = [x.strip() for x in lines[n + 1 : n + 4] if x.strip()]
                    m = re.match(r"(.+?)(?: by (.+))?$", rest[0]) if rest else None
                else:
                    m = _OF_BY.search(line)
                title = m.group(1).strip(" .:") if m else ""
                if title:
                    meta["title"] = title
                    if m and m.group(2) and "author" not in meta:
                        meta["author"] = m.group(2).strip(" .")
                break
    return meta


def strip_gutenberg(text: str) -> Stripped:
    """Remove the Project Gutenberg header and footer of a book (see the module docstring).

    >>> s = strip_gutenberg("Title: X\\n\\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\\nBody.\\n" + "l\\n" * 100
    ...                     + "*** END OF THE PROJECT GUTENBERG EBOOK X ***\\nlicence")
    >>> s.text.splitlines()[0], s.header, s.footer, s.meta
    ('Body.', True, True, {'title': 'X'})
    """
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines[:600]):
        if _START.match(line):
            start = i + 1
    header_lines = lines[: start or 0]
    if start is not None:
        j = start
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines) and _CREDITS.match(lines[j]):
            start = _paragraph_end(lines, j)
    else:
        first = next((i for i, line in enumerate(lines[:50]) if line.strip()), None)
        if first is not None and _PG_MENTION.search(lines[first]):
            # an early 1990s header: leading paragraphs up to the last that names Project Gutenberg
            i, last = first, None
            while i < min(len(lines), 200):
                end = _paragraph_end(lines, i)
                if _PG_MENTION.search(" ".join(lines[i:end])):
                    last = end
                i = end + 1
                while i < len(lines) and not lines[i].strip():
                    i += 1
            start = last
            header_lines = lines[: start or 0]
    body_start = start or 0
    end = None
    for i in range(body_start + 100, len(lines)):
        if _END.match(lines[i]):
            end = i
            break
    body = lines[body_start:end]
    return Stripped("\n".join(line.rstrip() for line in body).strip("\n"), start is not None, end is not None,
                    _header_fields(header_lines) if header_lines else {})


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM dropped), else Windows-1252, else Latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _read_bytes(path: str) -> bytes:
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    if path.endswith(".bz2"):
        with bz2.open(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def book_name(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".gz", ".bz2", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


class Reader(SourceReader):
    """Plain-text books -> one document each, Gutenberg licence removed (see the module docstring)."""

    source_name = "books"
    config_class = Config
    suffixes = (".txt", ".txt.gz", ".txt.bz2")
    input_hint = "plain-text books (.txt, .txt.gz, .txt.bz2; Project Gutenberg files) or folders of them"
    config: Config

    def read(self, path: str) -> Iterator[Document | Dropped | BadRecord]:
        data = _read_bytes(path)
        if b"\x00" in data[:4096]:
            yield BadRecord(path, "binary data (NUL bytes), not a plain-text book")
            return
        text, encoding = decode(data)
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x1a", "")  # \x1a: DOS end-of-file
        if self.config.strip_license:
            stripped = strip_gutenberg(text)
        else:
            stripped = Stripped(text.strip("\n"), False, False, {})
        language = stripped.meta.get("language")
        meta = {"title": stripped.meta.get("title"), "author": stripped.meta.get("author"),
                "language": LANGUAGE_CODES.get(language.lower(), language) if language else None, "ebook": stripped.meta.get("ebook"), "file": path,
                "encoding": encoding, "header": stripped.header, "footer": stripped.footer}
        doc = Document(text=stripped.text, id=book_name(path), metadata=meta)
        if not stripped.text.strip():
            yield Dropped(EMPTY, path, doc)
        elif len(_WORD.findall(stripped.text)) < self.config.min_words:
            yield Dropped(TOO_SHORT, path, doc)
        else:
            yield doc

    def filter_steps(self) -> list[PipelineStep]:
        if self.config.near_duplicate is None:
            return []
        return [NearDuplicateBooks(self.config.near_duplicate, keep_rejected=self.keep_rejected)]


class NearDuplicateBooks(DocFilter):
    """Drop a book whose estimated Jaccard similarity with a book this task kept is >= threshold.

    Signatures from `lmforge.corpus.minhash.MinHasher` (word 5-grams, 128 permutations); the
    candidates come from LSH bands (`optimal_lsh_params(threshold, 128)`) and each is verified on
    the signatures' estimated Jaccard, so a book costs one signature and a few comparisons
    however many were kept. The first copy seen (input order: sorted paths) is the one kept.
    """

    name = "📚 near-duplicate books"
    default_reason = NEAR_DUPLICATE

    def __init__(self, threshold: float = 0.9, num_perm: int = 128, keep_rejected: bool = False, backend: str | None = None):
        from lmforge.corpus.minhash import MinHasher, optimal_lsh_params

        super().__init__(keep_rejected=keep_rejected)
        self.threshold = threshold
        self.hasher = MinHasher(num_perm=num_perm, ngram=5, backend=backend)
        self.params = optimal_lsh_params(threshold, num_perm)
        self.buckets: dict[tuple[int, int], list[int]] = {}
        self.kept: list = []
        self.kept_ids: list[str] = []

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        from lmforge.corpus.minhash import band_keys, estimated_jaccard

        sig = self.hasher.signatures([doc.text])
        keys = band_keys(sig, self.params.bands, self.params.rows)[0]
        candidates = {i for j, key in enumerate(keys.tolist()) for i in self.buckets.get((j, key), ())}
        for i in sorted(candidates):
            similarity = float(estimated_jaccard(self.kept[i], sig[0]))
            if similarity >= self.threshold:
                doc.metadata["near_duplicate_of"] = self.kept_ids[i]
                doc.metadata["similarity"] = round(similarity, 3)
                return False, NEAR_DUPLICATE
        index = len(self.kept)
        self.kept.append(sig[0])
        self.kept_ids.append(doc.id)
        for j, key in enumerate(keys.tolist()):
            self.buckets.setdefault((j, key), []).append(index)
        return True


@click.command(name="books")
@ingest_options
@dataclass_options(Config)
def command(**kwargs) -> None:
    """Plain-text books (Project Gutenberg .txt, utf-8 or latin-1) -> one document per book.

    \b
    Removes the Project Gutenberg licence header and footer (`*** START OF ...` /
    `*** END OF ...` and their 1990s variants), drops near-duplicate books (another
    edition or copy: MinHash Jaccard >= --near-duplicate, 0.9) and books under --min-words.
    Metadata: title, author, language, ebook number (from the header), file.

    \b
    Example:
      lmforge corpus ingest books gutenberg/ -o books/
      lmforge corpus ingest books pg11.txt pg1342.txt.gz -o books/ --near-duplicate 0.8 --keep-rejected
    """
    run_source("books", kwargs)
