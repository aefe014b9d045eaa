"""What every `corpus ingest` source shares: a reader step, input expansion, exact dedup.

An ingest run is `corpus process`'s machinery with another first step: `lmforge.corpus.pipeline`
(mode "ingest") builds `[Reader, *reader.filter_steps(), WriteDocuments]` and runs it with the
same datatrove executors, so the output is the same contract (`OUT/documents/NNNNN.jsonl.zst`,
one file per task, atomic), `OUT/stats.json` counts every step and every drop reason, a rerun
resumes (finished tasks are skipped), and the summary table and progress bar are the same.

How to add a source (one module, one registry line):

1. `lmforge/corpus/ingest/NAME.py` defines
   - `Config`: a dataclass of the source's settings, each field with a `#: help` comment above it
     (every field becomes a flag: `min_score: int = 0` is `--min-score`; lists are `A,B,...`).
     Validate in `__post_init__` with messages that name the flag and the fix.
   - `Reader(SourceReader)`: set `source_name = "NAME"`, `config_class = Config`, the file names
     a folder input is searched for (`suffixes`) and `input_hint` (what to pass, for the error
     when nothing matches); implement `read(path)`: a generator over one input unit (a file,
     or whatever `input_units` returns) yielding
       * `Document(text, id, metadata)` for each record kept so far (metadata: the source's
         own fields; `source` is added here),
       * `Dropped(reason, where, doc=None)` for a record the source's cleaning refuses (counted
         as `dropped_<reason>`; with --keep-rejected a `doc` goes to `OUT/rejected/<reason>/`),
       * `BadRecord(where, message)` for a record that cannot be parsed (counted `bad_record`,
         a warning names `where`: `file:offset` or `archive!member`), and the reader goes on.
     An exception of `unreadable_errors` (OSError, EOFError, tarfile/zip/zlib/lzma errors; extend
     the tuple for your parser) ends that input only: `unreadable_file` (nothing read) or
     `truncated_file` (records before it are kept), with a warning naming the file.
     Optionally override `input_units(path)` (e.g. a folder that is one repository) and
     `filter_steps()` (datatrove steps after the reader, e.g. `lmforge.corpus.base.DocFilter`
     subclasses with reasons as constants, or `ExactDedup`).
   - `command`: `@click.command(name="NAME")`, `@ingest_options`, `@dataclass_options(Config)`,
     a docstring with an example, and the body `run_source("NAME", kwargs)`
     (`lmforge.corpus.ingest.cli`).
2. Add `"NAME": ("lmforge.corpus.ingest.NAME", "one-line summary")` to
   `lmforge.corpus.ingest.SOURCES`.

Work is split between tasks by input unit (task `rank` reads units `rank, rank + world_size,
...`), as datatrove's readers split files; `--limit N` stops each task after N documents.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import logging
import lzma
import os
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from lmforge.corpus.base import REJECTED_KEY, DocFilter
from lmforge.errors import UserError

log = logging.getLogger(__name__)

# stat names (the summary table shows them; `lmforge.corpus.pipeline.collect_stats` sums them)
BAD_RECORD = "bad_record"
UNREADABLE_FILE = "unreadable_file"
TRUNCATED_FILE = "truncated_file"
#: drop reason of `ExactDedup`
DUPLICATE = "duplicate"

#: warnings per task about bad records before the rest go to the debug log (the counts stay exact)
MAX_WARNINGS = 20


class IngestInputError(UserError):
    """An input that matches nothing, or is not what the source reads."""


@dataclass
class Dropped:
    """A record the source's cleaning refuses: counted as `dropped_<reason>`."""

    reason: str
    where: str
    doc: Document | None = None


@dataclass
class BadRecord:
    """A record that cannot be parsed: counted as `bad_record`, with a warning naming `where`."""

    where: str
    message: str


class SourceReader(PipelineStep):
    """Base of every ingest source's reader. Subclasses set `source_name`, `config_class`,
    `suffixes`, `input_hint` and implement `read(path)` (see the module docstring)."""

    type = "📖 - READER"
    #: the source's name, written to each document's metadata["source"]
    source_name: str = ""
    #: the settings dataclass of the source (`Config` in its module)
    config_class: Any = None
    #: file name endings a folder input is searched for (lower case)
    suffixes: tuple[str, ...] = ()
    #: what a user should pass, for the error when an input matches nothing
    input_hint: str = "files"
    #: errors that end one input (counted unreadable_file / truncated_file), not the run
    unreadable_errors: tuple[type[BaseException], ...] = (
        OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)

    def __init__(self, files: list[str], config: Any = None, limit: int = -1, progress: bool = True,
                 keep_rejected: bool = False):
        super().__init__()
        self.files = list(files)
        self.config = config if config is not None else (self.config_class() if self.config_class else None)
        self.limit = limit
        self.progress = progress
        self.keep_rejected = keep_rejected
        self._warnings = 0

    @property
    def name(self) -> str:  # datatrove shows it in its stats
        return f"📥 {self.source_name} reader"

    # ---- what a source implements -------------------------------------------------------
    def read(self, path: str) -> Iterator[Document | Dropped | BadRecord]:  # pragma: no cover - abstract
        raise NotImplementedError

    def filter_steps(self) -> list[PipelineStep]:
        """datatrove steps run after the reader (filters, dedup); none by default."""
        return []

    @classmethod
    def input_units(cls, path: str) -> list[str]:
        """The units of work one existing input path stands for: a file is itself, a folder
        every file below it whose name ends with one of `suffixes`. Linked folders are followed
        (a dump folder of links to where the sites are), each real folder once."""
        if os.path.isdir(path):
            found, seen = [], set()
            for root, dirs, names in os.walk(path, followlinks=True):
                real = os.path.realpath(root)
                if real in seen:  # a link loop, or a folder reached twice
                    dirs[:] = []
                    continue
                seen.add(real)
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(os.path.join(root, n) for n in names if n.lower().endswith(cls.suffixes))
            return found
        return [os.path.normpath(path)]

    # ---- shared machinery -----------------------------------------------------------------
    @classmethod
    def expand_inputs(cls, inputs: list[str]) -> list[str]:
        """Paths, folders and globs -> sorted, de-duplicated units of work; an input that
        matches nothing is an `IngestInputError` naming it and what to pass."""
        if not inputs:
            raise IngestInputError(f"no input given: pass {cls.input_hint}")
        found: dict[str, str] = {}
        missing: list[str] = []
        for raw in inputs:
            path = os.path.expanduser(raw)
            if any(c in path for c in "*?["):
                matches = globlib.glob(path, recursive=True)
            else:
                matches = [path] if os.path.exists(path) else []
            units = [unit for match in matches for unit in cls.input_units(match)]
            if not units:
                missing.append(raw)
            for unit in units:
                if not os.access(unit, os.R_OK):
                    raise IngestInputError(f"{unit}: not readable (permission denied): fix its permissions")
                found.setdefault(os.path.abspath(unit), unit)
        if missing:
            raise IngestInputError(
                f"nothing to read for {', '.join(repr(m) for m in missing)}: check the path; "
                f"`corpus ingest {cls.source_name}` reads {cls.input_hint}")
        return sorted(found.values())

    def _warn(self, message: str, *args) -> None:
        self._warnings += 1
        log.log(logging.WARNING if self._warnings <= MAX_WARNINGS else logging.DEBUG, message, *args)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from lmforge.progress import task_bar

        if data:
            yield from data
        emitted = 0
        with task_bar(rank, world_size, self.source_name, self.progress) as bar:
            for path in self.files[rank::world_size]:
                if 0 <= self.limit <= emitted:
                    break
                self.stat_update("files")
                seen = 0
                try:
                    for item in self.read(path):
                        seen += 1
                        bar.update(1)
                        self.stat_update("records")
                        if isinstance(item, BadRecord):
                            self.stat_update(BAD_RECORD)
                            self._warn("%s: bad record skipped (%s)", item.where, item.message)
                            continue
                        if isinstance(item, Dropped):
                            self.stat_update("dropped", f"dropped_{item.reason}")
                            log.debug("%s: dropped (%s)", item.where, item.reason)
                            if self.keep_rejected and item.doc is not None:
                                item.doc.metadata = {"source": self.source_name, **item.doc.metadata, REJECTED_KEY: item.reason}
                                yield item.doc
                            continue
                        item.metadata = {"source": self.source_name, **item.metadata}
                        emitted += 1
                        yield item
                        if 0 <= self.limit <= emitted:
                            break
                except self.unreadable_errors as exc:
                    reason = TRUNCATED_FILE if seen else UNREADABLE_FILE
                    self.stat_update(reason)
                    self._warn("%s: %s after %d records (%s: %s); the rest of it is skipped",
                               path, "unreadable" if not seen else "cut short", seen, type(exc).__name__, exc)


class ExactDedup(DocFilter):
    """Drop a document whose text is byte-identical to one this task has already kept.

    The set of hashes is per task (16 bytes a document: 10 M documents cost ~1 GB with Python's
    overheads, so a task holds it easily). Copies that land in two different tasks both stay:
    with `--tasks` > 1, run `lmforge corpus dedup OUT -o DEDUP --exact` afterwards (its exact
    stage removes them across every file, and MinHash the near-copies).
    """

    name = "🫂 exact dedup"
    default_reason = DUPLICATE

    def __init__(self, keep_rejected: bool = False):
        super().__init__(keep_rejected=keep_rejected)
        self.seen: set[bytes] = set()

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        key = hashlib.blake2b(doc.text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if key in self.seen:
            return False, DUPLICATE
        self.seen.add(key)
        return True
