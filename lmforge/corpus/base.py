"""The filter base class every corpus filter derives from.

A filter implements one method, `filter(doc) -> bool | tuple[bool, str]`; this base owns the
counting (`dropped_<reason>` per reason, as datatrove names them) and what happens to a
rejected document: dropped, or — with `keep_rejected` — passed down the pipeline marked with
its reason, so one writer at the end of the pipeline writes `rejected/<reason>/`.
"""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

#: metadata key carrying the reason a document was rejected (only with keep_rejected)
REJECTED_KEY = "rejected_reason"


class DocFilter(PipelineStep):
    """Base of lmforge filters. Subclasses set `name` and implement `filter`."""

    type = "🔻 - FILTER"
    #: reason used when `filter` returns a plain False
    default_reason = "filtered"

    def __init__(self, keep_rejected: bool = False):
        super().__init__()
        self.keep_rejected = keep_rejected

    def filter(self, doc: Document) -> bool | tuple[bool, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            if REJECTED_KEY in doc.metadata:  # rejected upstream; travelling to the writer
                yield doc
                continue
            self.stat_update("documents")
            with self.track_time():
                result = self.filter(doc)
            if result is True or (isinstance(result, tuple) and result[0]):
                self.stat_update("forwarded")
                yield doc
                continue
            reason = result[1] if isinstance(result, tuple) and len(result) > 1 else self.default_reason
            self.stat_update("dropped", f"dropped_{reason}")
            if self.keep_rejected:
                doc.metadata[REJECTED_KEY] = reason
                yield doc
