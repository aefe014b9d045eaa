"""The corpus pipeline's own steps: read crawl files, extract main text, write documents.

Each is a datatrove `PipelineStep`, so any datatrove executor runs them. Filters live in
`lmforge.corpus.filters` and language ID in `lmforge.corpus.langid`.

Work is split between tasks by input file (task `rank` of `world_size` reads files
`rank, rank + world_size, ...`), exactly as datatrove's readers split it, and every task
writes its own output files atomically: a killed task leaves only `*.tmp` files and is run
again from the start by the next invocation.
"""

from __future__ import annotations

import logging
import signal
import threading


from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from lmforge.corpus.base import REJECTED_KEY
from lmforge.corpus.langid import CONTENT_LANGUAGE_KEY, HTML_KEY
from lmforge.progress import task_bar

log = logging.getLogger(__name__)

#: metadata key (internal, never written): the page's UTF-8 bytes as read, when its text is their
#: decoding (`WarcPage.utf8`); `MainText` hands them to the extractor's parser and drops them
UTF8_KEY = "html_utf8"

# stat names shown in the summary table
EXTRACTED = "extracted"
EXTRACT_EMPTY = "dropped_no_main_text"
EXTRACT_TIMEOUT = "dropped_extract_timeout"
EXTRACT_ERROR = "dropped_extract_error"
# pages per extraction path (lmforge.corpus.extract: its fast path, the trafilatura fallback)
EXTRACT_FAST = "extract_fast"
EXTRACT_FALLBACK = "extract_fallback"


class WarcPages(PipelineStep):
    """Stream HTML responses (and WET conversions) from WARC files into Documents.

    A Document's `text` holds the decoded HTML until `MainText` replaces it with the
    extracted text; `metadata["kind"]` says which ("html" or "text").
    """

    name = "🕷 WARC pages"
    type = "📖 - READER"

    def __init__(self, files: list[str], limit: int = -1, progress: bool = True):
        super().__init__()
        self.files = list(files)
        self.limit = limit
        self.progress = progress

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from lmforge.corpus import warc

        if data:
            yield from data
        files = self.files[rank::world_size]
        bar = task_bar(rank, world_size, "pages", self.progress)
        emitted = 0
        with bar:
            for path in files:
                counts: dict[str, int] = {}
                try:
                    for page in warc.iter_warc_pages(path, counts):
                        bar.update(1)
                        if 0 <= self.limit <= emitted:
                            break
                        emitted += 1
                        meta = {"url": page.url, "date": page.date, "kind": page.kind, "charset": page.charset, "source": path}
                        if page.content_language:
                            meta[CONTENT_LANGUAGE_KEY] = page.content_language
                        if page.utf8 is not None:
                            meta[UTF8_KEY] = page.utf8
                        yield Document(text=page.content, id=page.id, metadata=meta)
                except warc.WarcInputError as exc:  # a whole file unreadable: say which, go on
                    log.warning("%s", exc)
                    counts[warc.UNREADABLE_FILE] = counts.get(warc.UNREADABLE_FILE, 0) + 1
                finally:
                    for key, value in counts.items():
                        if value:
                            self.stat_update(key, value=value)
                    self.stat_update("files")
                if 0 <= self.limit <= emitted:
                    break


class _Timeout(BaseException):
    """Raised by the per-page timer. A BaseException, so that the extractor's own
    `except Exception` guards (its "never raises" contract, trafilatura's) do not swallow it: as
    an Exception it turned a hung fast path into an empty extraction and then ran trafilatura
    on the page with no limit at all."""


class MainText(PipelineStep):
    """Replace each page's HTML with its main text (`lmforge.corpus.extract`).

    A page that takes more than `timeout` seconds of CPU is cut off and counted
    (`dropped_extract_timeout`). The timer is a virtual interval timer (SIGVTALRM, the
    process's own CPU time), which costs nothing per page. CPU time, not wall time: on a
    loaded machine a page's wall time stretches with the load, and a wall-clock timer made
    two runs of the same command write different documents (pages near the limit cut in one
    run, kept in the other); the CPU a page needs is a property of the page. It interrupts
    Python code only, so a hang inside C code waits for C to return (datatrove instead ships
    every page to a sandbox process, which bounds C hangs too but pays a round trip per page). Empty extractions are dropped
    (`dropped_no_main_text`). Pages are counted per path: `extract_fast`, `extract_fallback`
    (trafilatura on a page where the fast path's confidence is low; `fallback=False` turns it
    off).
    """

    name = "✂ main text"
    type = "🛢 - EXTRACTOR"

    def __init__(self, timeout: float = 2.0, keep_rejected: bool = False, fallback: bool = True):
        super().__init__()
        self.timeout = timeout
        self.keep_rejected = keep_rejected
        self.fallback = fallback

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from lmforge.corpus import extract

        use_alarm = self.timeout > 0 and threading.current_thread() is threading.main_thread() and _TIMER is not None and hasattr(signal, "setitimer")
        if self.fallback:
            # import trafilatura now, not under the first fallback page's timer: its import takes
            # over 2 s on a loaded machine, the timer cut it off, and the failed import (cached as
            # "not installed") turned the fallback off for the whole task, so a task's documents
            # and counts depended on the machine's load (15 of 86 pages on the shared WARCs)
            extract._trafilatura_extract()
        previous = signal.signal(_TIMER_SIGNAL, _raise_timeout) if use_alarm else None
        try:
            for doc in data:
                if REJECTED_KEY in doc.metadata or doc.metadata.get("kind") == "text":
                    yield doc  # rejected upstream, or WET text that needs no extraction
                    continue
                self.stat_update("documents")
                utf8 = doc.metadata.pop(UTF8_KEY, None)
                reason = None
                with self.track_time():
                    try:
                        if use_alarm:
                            signal.setitimer(_TIMER, self.timeout)
                        text, info = extract.extract_main_text_with_info(doc.text, doc.metadata.get("url"), self.fallback, utf8)
                        if info["path"] != extract.EMPTY:
                            self.stat_update(EXTRACT_FALLBACK if info["path"] == extract.FALLBACK else EXTRACT_FAST)
                    except _Timeout:
                        reason, text = EXTRACT_TIMEOUT, ""
                        log.warning("%s: extraction timed out after %.1fs", doc.metadata.get("url"), self.timeout)
                    except Exception as exc:  # the extractor must not kill a run
                        reason, text = EXTRACT_ERROR, ""
                        log.warning("%s: extraction failed: %s", doc.metadata.get("url"), exc)
                    finally:
                        if use_alarm:
                            signal.setitimer(_TIMER, 0)
                if reason is None and not text.strip():
                    reason = EXTRACT_EMPTY
                if reason:
                    self.stat_update("dropped", reason)
                    if self.keep_rejected:
                        doc.metadata[REJECTED_KEY] = reason.removeprefix("dropped_")
                        yield doc
                    continue
                doc.metadata[HTML_KEY] = doc.text  # language ID reads the page when the main text is short or code
                doc.text = text
                self.stat_update(EXTRACTED)
                yield doc
        finally:
            if use_alarm:
                signal.setitimer(_TIMER, 0)
                signal.signal(_TIMER_SIGNAL, previous or signal.SIG_DFL)


#: the per-page timer: the process's CPU time (see `MainText`)
_TIMER, _TIMER_SIGNAL = getattr(signal, "ITIMER_VIRTUAL", None), getattr(signal, "SIGVTALRM", None)


def _raise_timeout(signum, frame):
    raise _Timeout()


#: what `WriteDocuments` writes the kept documents as (`--format`)
OUTPUT_FORMATS = ("jsonl", "parquet")


#: metadata keys used inside the pipeline, not written to the output
INTERNAL_KEYS = ("kind", "charset", REJECTED_KEY, HTML_KEY, CONTENT_LANGUAGE_KEY, UTF8_KEY)


class WriteDocuments(PipelineStep):
    """Write kept documents to `OUT/documents/NNNNN.jsonl.zst` (one file per task) and, with
    `keep_rejected`, rejected ones to `OUT/rejected/<reason>/NNNNN.jsonl.zst`.

    `fmt="parquet"` writes the kept documents as FineWeb-shaped Parquet instead,
    `OUT/documents/NNNNN_PPPPP.parquet` (task, part; `lmforge.corpus.hub.FineWebParquetWriter`,
    the writer of `corpus parquet`: the same columns, row groups of at most 10,000 rows / 100 MB
    of text, 500,000 rows a file). The pipeline metadata that is no FineWeb column
    (`language_evidence`, ...) is left out. Rejected documents stay JSONL: they keep their reason
    and every metadata field for inspection with `zstdcat | jq`.

    Files appear under their final names only when the task finishes (atomic rename), so
    the output folder never holds a partial file under a real name.
    """

    name = "💾 write documents"
    type = "💽 - WRITER"

    def __init__(self, output_dir: str, keep_rejected: bool = False, passthrough: bool = False, fmt: str = "jsonl"):
        super().__init__()
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"--format {fmt!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
        self.fmt = fmt
        self.output_dir = str(output_dir)
        self.keep_rejected = keep_rejected
        self.passthrough = passthrough

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from pathlib import Path

        from lmforge.documents import DocRecord, DocumentWriter

        out = Path(self.output_dir)
        if self.fmt == "parquet":
            from lmforge.corpus.hub import FineWebParquetWriter

            kept = FineWebParquetWriter(out / "documents", f"{rank:05d}")
            write_kept = lambda doc, meta: kept.write(DocRecord(doc.id, doc.text, meta))  # noqa: E731
        else:
            kept = DocumentWriter(out / "documents" / f"{rank:05d}.jsonl.zst")
            write_kept = lambda doc, meta: kept.write(doc.id, doc.text, meta)  # noqa: E731
        rejected: dict[str, DocumentWriter] = {}
        ok = False
        try:
            for doc in data:
                reason = doc.metadata.get(REJECTED_KEY)
                meta = {k: v for k, v in doc.metadata.items() if k not in INTERNAL_KEYS}
                if reason is None:
                    with self.track_time():
                        write_kept(doc, meta)
                    self.stat_update("kept")
                    language = doc.metadata.get("language")
                    if language:
                        self.stat_update(f"kept_language_{language}")
                    if self.passthrough:
                        yield doc
                elif self.keep_rejected:
                    writer = rejected.get(reason)
                    if writer is None:
                        writer = rejected[reason] = DocumentWriter(out / "rejected" / reason / f"{rank:05d}.jsonl.zst")
                    writer.write(doc.id, doc.text, {**meta, "reason": reason})
                    self.stat_update(f"rejected_written_{reason}")
            ok = True
        finally:
            for writer in (kept, *rejected.values()):
                writer.close() if ok else writer.abort()


