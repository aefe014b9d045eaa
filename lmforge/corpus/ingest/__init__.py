"""`lmforge corpus ingest SOURCE`: the other sources of the LLaMA mixture from their own dumps.

`SOURCES` is the registry: source name -> (module, one-line summary). Each module defines a
reader (`Reader`, a `lmforge.corpus.ingest.base.SourceReader`), its settings dataclass
(`Config`) and its click command (`command`); nothing is imported until a source is used.
How to add a source: `lmforge/corpus/ingest/base.py`.
"""

from __future__ import annotations

import importlib

#: source name -> (module defining Reader, Config and command; the line `ingest --help` shows)
SOURCES: dict[str, tuple[str, str]] = {
    "code": ("lmforge.corpus.ingest.code", "Git repositories, source tarballs/zips, folders -> licensed, filtered code files."),
    "wikipedia": ("lmforge.corpus.ingest.wikipedia", "MediaWiki XML dumps (pages-articles*.xml.bz2, any language) -> plain-text articles."),
    "stackexchange": ("lmforge.corpus.ingest.stackexchange", "Stack Exchange dump (Posts.xml per site, or SITE.7z) -> a document per question with its answers."),
    "books": ("lmforge.corpus.ingest.books", "Plain-text books (Project Gutenberg .txt) -> licence header/footer removed, near-duplicate books dropped."),
    "arxiv": ("lmforge.corpus.ingest.arxiv", "LaTeX sources (arXiv tarballs, .tex) -> cleaned paper text."),
}


def source_module(name: str):
    """The module of source `name` (imported now)."""
    return importlib.import_module(SOURCES[name][0])


def reader_class(name: str):
    """The `SourceReader` subclass of source `name`."""
    return source_module(name).Reader
