"""A corpus folder in the Hugging Face Hub's shapes: FineWeb-style Parquet and a dataset card.

`write_parquet(corpus, out)` reads the documents of a `corpus process|extract|dedup` folder with
`lmforge.documents` and writes `out/data/III_JJJJJ.parquet` (III: input file, JJJJJ: part of
it, the `000_00000.parquet` naming FineWeb uses) with FineWeb's columns:

    text, id, dump, url, date, file_path, language, language_score, token_count

mapped from each document's metadata: `dump` is the Common Crawl dump named in the metadata
(`dump`) or in the WARC file name (`CC-MAIN-2020-34`), `file_path` the WARC the page came from
(`source`); a value the documents do not carry is null (`token_count` unless a later stage
recorded one). Other metadata (`language_evidence`) is not a FineWeb column and is left out.

Row groups are what a streaming reader (`datasets` streaming, `pyarrow.dataset`) reads at a
time, so they are bounded two ways: at most `rows_per_group` rows (10,000) and ~`group_bytes`
of text (100 MB). At web-page sizes (FineWeb averages ~3 KB of text a document) a group closes
at 10,000 rows, ~30 MB of text, ~10 MB compressed: small enough to stream, large enough for
zstd and for column statistics to pay. The byte bound keeps a run of book-length documents from
making a 1 GB group. Files hold at most `file_rows` rows (500,000: ~1.5 GB of text, ~0.5 GB
compressed, under the Hub's recommended 5 GB a file).

Each file is written as `NAME.tmp` and renamed (`FineWebParquetWriter`, which `corpus process
--format parquet` writes its documents with too); when every part of an input file is written a
record goes to `out/.lmforge/parquet/done/`, so a rerun skips the input files already done and
redoes only the one a killed run was inside. This module imports neither torch nor datatrove.

`write_card(corpus, path)` writes a README.md dataset card: YAML front matter (languages, size
category, `configs` pointing at the Parquet files) and a body with the run's settings and the
counts of stats.json per step and drop reason.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lmforge.documents import DocRecord, find_document_files, iter_documents, write_bytes_atomic
from lmforge.errors import UserError

#: FineWeb's columns, in its order, with their Arrow types (as `pyarrow` names them)
COLUMNS = (
    ("text", "string"), ("id", "string"), ("dump", "string"), ("url", "string"), ("date", "string"),
    ("file_path", "string"), ("language", "string"), ("language_score", "float64"), ("token_count", "int64"),
)
STATE_DIR = Path(".lmforge") / "parquet"
_DUMP = re.compile(r"CC-MAIN-\d{4}-\d{2}", re.IGNORECASE)


class HubExportError(UserError):
    """A corpus folder that cannot be exported; the message names the folder and the fix."""


@dataclass
class ParquetConfig:
    rows_per_group: int = 10_000
    group_bytes: int = 100 << 20
    file_rows: int = 500_000
    compression: str = "zstd"

    def __post_init__(self):
        if self.rows_per_group < 1 or self.file_rows < 1 or self.group_bytes < 1:
            raise ValueError("--rows-per-group and --file-rows must be at least 1")


@dataclass
class ParquetStats:
    inputs: int = 0
    inputs_skipped: int = 0
    documents: int = 0
    files: int = 0
    row_groups: int = 0
    text_bytes: int = 0
    parquet_bytes: int = 0
    errors: dict = field(default_factory=dict)


def fineweb_row(doc) -> dict:
    """One document as a FineWeb row; what the metadata lacks is None.

    >>> fineweb_row(DocRecord("u1", "hi", {"source": "/d/CC-MAIN-2020-34-x.warc.gz", "language": "en"}))["dump"]
    'CC-MAIN-2020-34'
    """
    meta = doc.metadata
    file_path = meta.get("file_path") or meta.get("source")
    dump = meta.get("dump")
    if dump is None and isinstance(file_path, str):
        found = _DUMP.search(file_path)
        dump = found.group(0).upper() if found else None
    score = meta.get("language_score")
    tokens = meta.get("token_count")
    return {
        "text": doc.text, "id": doc.id, "dump": _str(dump), "url": _str(meta.get("url")), "date": _str(meta.get("date")),
        "file_path": _str(file_path), "language": _str(meta.get("language")),
        "language_score": float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        "token_count": int(tokens) if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
    }


def _str(value) -> str | None:
    return None if value is None else str(value)


def arrow_schema():
    import pyarrow as pa

    return pa.schema([pa.field(name, getattr(pa, kind)()) for name, kind in COLUMNS])


def parquet_settings(corpus: str | os.PathLike, config: ParquetConfig) -> dict:
    return {"corpus": os.path.abspath(corpus), "--rows-per-group": config.rows_per_group, "--file-rows": config.file_rows}


def write_parquet(corpus: str | os.PathLike, out: str | os.PathLike, config: ParquetConfig | None = None, *,
                  overwrite: bool = False, on_file: Callable[[int, int], None] | None = None) -> ParquetStats:
    """Write the documents of `corpus` as FineWeb-shaped Parquet under `out/data/`; resumable.

    `on_file(done, total)` is called after each input file (a progress bar)."""
    from lmforge.settings import check_settings, clear_output, read_settings, write_settings

    config = config or ParquetConfig()
    corpus, out = Path(corpus), Path(out)
    try:
        inputs = find_document_files([corpus])
    except FileNotFoundError as exc:
        raise HubExportError(f"{exc}; give a folder written by `lmforge corpus process|extract|dedup`") from None
    inputs = [p for p in inputs if (out / "data") not in p.parents]  # never our own output (CORPUS without documents/)
    state = out / STATE_DIR
    if overwrite:
        clear_output(out, ["data", str(STATE_DIR)], lmforge_made=state.is_dir(), error=HubExportError)
    asked = parquet_settings(corpus, config)
    record = read_settings(state)
    if record is not None:
        if record.get("settings") is None:
            raise HubExportError(f"{state / 'settings.json'}: unreadable; pass --overwrite to start over")
        check_settings(out, record["settings"], asked, HubExportError)
    else:
        if (out / "data").is_dir() and any((out / "data").iterdir()):
            raise HubExportError(f"{out / 'data'} already holds files lmforge did not write; choose another output folder")
        write_settings(state, "corpus parquet", asked)

    stats = ParquetStats(inputs=len(inputs))
    for index, path in enumerate(inputs):
        done = state / "done" / f"{index:05d}.json"
        if done.is_file():
            record = json.loads(done.read_text())
            stats.inputs_skipped += 1
        else:
            record = _convert_file(path, index, out / "data", config)
            write_bytes_atomic(done, json.dumps(record).encode())
        stats.documents += record["rows"]
        stats.files += len(record["files"])
        stats.row_groups += record["row_groups"]
        stats.text_bytes += record["text_bytes"]
        stats.parquet_bytes += record["parquet_bytes"]
        for reason, n in record["errors"].items():
            stats.errors[reason] = stats.errors.get(reason, 0) + n
        if on_file:
            on_file(index + 1, len(inputs))
    return stats


def _convert_file(path: Path, index: int, data_dir: Path, config: ParquetConfig) -> dict:
    """Every document of one input file into `data_dir/{index:03d}_{part:05d}.parquet`."""
    errors: dict = {}
    writer = FineWebParquetWriter(data_dir, f"{index:03d}", config)
    try:
        for doc in iter_documents(path, errors=errors):
            writer.write(doc)
    except BaseException:
        writer.abort()
        raise
    return {"input": str(path), **writer.close(), "errors": errors}


class FineWebParquetWriter:
    """Documents as FineWeb rows (`fineweb_row`) into `data_dir/{prefix}_{part:05d}.parquet`:
    row groups bounded by `config.rows_per_group` rows and `config.group_bytes` of text, a new
    part every `config.file_rows` rows. `corpus parquet` and `corpus process|extract --format
    parquet` (`lmforge.corpus.steps.WriteDocuments`) both write through it.

    Parts are written as `NAME.tmp` and renamed only by `close()`, all together, so a writer
    killed (or `abort()`ed) midway leaves no file under a final name. `close()` returns what it
    wrote: rows, files (names), row_groups, text_bytes, parquet_bytes.
    """

    def __init__(self, data_dir: str | os.PathLike, prefix: str, config: ParquetConfig | None = None):
        self.data_dir, self.prefix, self.config = Path(data_dir), prefix, config or ParquetConfig()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.schema = arrow_schema()
        self.stats = {"rows": 0, "files": [], "row_groups": 0, "text_bytes": 0, "parquet_bytes": 0}
        self._writer = None
        self._parts: list[Path] = []  # finished parts, still under their .tmp names
        self._file_rows = 0
        self._group: dict[str, list] = {name: [] for name, _ in COLUMNS}
        self._group_bytes = 0

    def _tmp(self, part: int) -> Path:
        return self.data_dir / f"{self.prefix}_{part:05d}.parquet.tmp"

    def write(self, doc) -> None:
        """One document (anything with `id`, `text`, `metadata`: a `DocRecord`, datatrove's `Document`)."""
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp(len(self._parts)), self.schema, compression=self.config.compression)
            self._file_rows = 0
        row = fineweb_row(doc)
        for name, _ in COLUMNS:
            self._group[name].append(row[name])
        size = len(doc.text.encode("utf-8"))
        self._group_bytes += size
        self.stats["rows"] += 1
        self.stats["text_bytes"] += size
        self._file_rows += 1
        if self._file_rows >= self.config.file_rows:
            self._close_part()
        elif len(self._group["text"]) >= self.config.rows_per_group or self._group_bytes >= self.config.group_bytes:
            self._flush_group()

    def _flush_group(self) -> None:
        import pyarrow as pa

        if self._group["text"]:
            self._writer.write_table(pa.Table.from_pydict(self._group, schema=self.schema), row_group_size=len(self._group["text"]))
            self.stats["row_groups"] += 1
        self._group, self._group_bytes = {name: [] for name, _ in COLUMNS}, 0

    def _close_part(self) -> None:
        self._flush_group()
        self._writer.close()
        self._writer = None
        tmp = self._tmp(len(self._parts))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        self._parts.append(tmp)

    def close(self) -> dict:
        """Finish the last part and rename every part to its final name; what was written."""
        if self._writer is not None:
            self._close_part()
        for tmp in self._parts:
            final = tmp.with_name(tmp.name.removesuffix(".tmp"))
            os.replace(tmp, final)
            self.stats["files"].append(final.name)
            self.stats["parquet_bytes"] += final.stat().st_size
        self._parts = []
        return self.stats

    def abort(self) -> None:
        """Leave nothing behind: close and delete the parts written so far."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._parts.append(self._tmp(len(self._parts)))
        for tmp in self._parts:
            tmp.unlink(missing_ok=True)
        self._parts = []


# ---- the dataset card ----------------------------------------------------------------------
#: the Hub's `size_categories` bins: (upper bound, label)
SIZE_CATEGORIES = (
    (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T"),
)


def size_category(n: int) -> str:
    """The Hub's size bin of `n` documents.

    >>> size_category(16), size_category(10_000)
    ('n<1K', '10K<n<100K')
    """
    for bound, label in SIZE_CATEGORIES:
        if n < bound:
            return label
    return "n>1T"


@dataclass
class CardFacts:
    """What a card says about a corpus folder, gathered from its files."""

    name: str
    documents: int = 0
    text_bytes: int = 0
    languages: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # stage -> its recorded settings
    parquet_files: list = field(default_factory=list)


def gather_card_facts(corpus: str | os.PathLike, parquet_dir: str | os.PathLike | None = None) -> CardFacts:
    """Count documents, bytes and languages by reading the documents (a dedup folder's stats.json
    has no language counts, and a count read back is the one the files hold); read stats.json
    and the settings the run recorded (`.lmforge/config.json` of process/extract,
    `.lmforge/dedup/settings.json` of dedup)."""
    corpus = Path(corpus)
    facts = CardFacts(name=corpus.name)
    try:
        files = find_document_files([corpus])
    except FileNotFoundError as exc:
        raise HubExportError(f"{exc}; give a folder written by `lmforge corpus process|extract|dedup`") from None
    errors: dict = {}
    for path in files:
        for doc in iter_documents(path, errors=errors):
            facts.documents += 1
            facts.text_bytes += len(doc.text.encode("utf-8"))
            lang = doc.metadata.get("language")
            if lang:
                facts.languages[str(lang)] = facts.languages.get(str(lang), 0) + 1
    facts.stats = _read_json(corpus / "stats.json") or {}
    for stage, rel in (("process", ".lmforge/config.json"), ("dedup", ".lmforge/dedup/settings.json")):
        recorded = _read_json(corpus / rel)
        if recorded:
            facts.settings[recorded.get("mode", stage) if stage == "process" else stage] = recorded
    if parquet_dir is not None and Path(parquet_dir).is_dir():
        folder = Path(parquet_dir)
        if not any(folder.glob("*.parquet")) and (folder / "data").is_dir():
            folder = folder / "data"  # the -o of `corpus parquet`, which writes into its data/
        facts.parquet_files = sorted(folder.glob("*.parquet"))
    if not facts.parquet_files:  # `corpus process|extract --format parquet` wrote its documents as Parquet
        facts.parquet_files = sorted((corpus / "documents").glob("*.parquet"))
    return facts


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def render_card(facts: CardFacts, card_dir: str | os.PathLike, license: str = "other") -> str:
    """The card's text: YAML front matter (through huggingface_hub's `DatasetCardData`, so the
    keys are the ones the Hub reads) and a markdown body."""
    try:
        from huggingface_hub import DatasetCardData
    except ImportError:
        raise HubExportError("lmforge corpus card needs huggingface_hub: pip install 'lmforge[hf]'") from None
    configs, patterns = None, []
    if facts.parquet_files:
        folders = sorted({os.path.relpath(p.parent, card_dir) for p in facts.parquet_files})
        patterns = [f"{f}/*.parquet".replace(os.sep, "/") for f in folders]
        configs = [{"config_name": "default", "data_files": [{"split": "train", "path": patterns}]}]
    data = DatasetCardData(
        license=license,
        language=sorted(facts.languages, key=lambda k: -facts.languages[k]) or None,
        size_categories=[size_category(facts.documents)],
        task_categories=["text-generation"],
        pretty_name=facts.name,
        configs=configs,
        tags=["lmforge", "web-crawl"],
    )
    lines = ["---", data.to_yaml().rstrip(), "---", "", f"# {facts.name}", ""]
    stages = ", ".join(f"`lmforge corpus {s}`" for s in facts.settings) or "lmforge"
    lines += [f"{facts.documents:,} documents, {facts.text_bytes:,} bytes of text (UTF-8), "
              f"in {len(facts.languages)} language(s); made by {stages}.", ""]
    if facts.parquet_files:
        lines += ["## Data", "",
                  "FineWeb-shaped Parquet (`lmforge corpus parquet` or `--format parquet`): columns `text`, `id`, `dump`, `url`, `date`, "
                  "`file_path`, `language`, `language_score`, `token_count` (null where unknown).", "",
                  "```python", "from datasets import load_dataset", f"ds = load_dataset(\"parquet\", data_files={patterns!r}, split=\"train\", streaming=True)", "```", ""]
    for stage, settings in facts.settings.items():
        lines += [f"## How it was made: `corpus {stage}`", "", "| setting | value |", "| --- | --- |"]
        for key, value in _flat(settings.get("settings", settings) if isinstance(settings, dict) else {}):
            if key not in ("format", "version", "stage"):
                lines.append(f"| {key} | {_cell(value)} |")
        lines.append("")
    lines += _counts_section(facts.stats)
    if facts.languages:
        lines += ["## Languages", "", "| language | documents | share |", "| --- | ---: | ---: |"]
        for lang, n in sorted(facts.languages.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"| {lang} | {n:,} | {n / max(facts.documents, 1):.1%} |")
        lines.append("")
    lines += ["## Limitations", "",
              "Web text as crawled: it keeps the pages' own licences, and may hold spam, adult or offensive text "
              "and personal data the filters missed.", ""]
    return "\n".join(lines)


def _flat(settings: dict, prefix: str = ""):
    """(dotted key, value) of nested settings: `filters.gopher_quality.min_doc_words`, 50."""
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _cell(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


def _counts_section(stats: dict) -> list[str]:
    """stats.json as tables: the summary of process/extract (or the counts of dedup), and each
    datatrove step's counters."""
    if not stats:
        return []
    lines = ["## Counts", "", "| step | what | documents |", "| --- | --- | ---: |"]
    s = stats.get("summary")
    if s:
        lines.append(f"| read | WARC records | {s.get('records', 0):,} |")
        for kind, n in sorted(s.get("skipped", {}).items()):
            lines.append(f"| read | skipped: {kind} | {n:,} |")
        for kind, n in sorted(s.get("errors", {}).items()):
            lines.append(f"| read | error: {kind} | {n:,} |")
        lines.append(f"| extract | HTML pages | {s.get('pages', 0):,} |")
        lines.append(f"| extract | main text extracted | {s.get('extracted', 0):,} |")
        for reason, n in sorted(s.get("dropped", {}).items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"| filter | dropped: {reason} | {n:,} |")
        lines.append(f"| write | kept | {s.get('kept', 0):,} |")
    dedup = stats.get("dedup") or (stats if "near_duplicates_removed" in stats else None)
    if dedup:
        for key in ("documents_in", "exact_duplicates_removed", "clusters", "near_duplicates_removed", "kept"):
            if key in dedup:
                lines.append(f"| dedup | {key.replace('_', ' ')} | {dedup[key]:,} |")
    lines.append("")
    steps = stats.get("steps") or []
    if steps:
        lines += ["Counters of each pipeline step:", "", "| step | counter | value |", "| --- | --- | ---: |"]
        for step in steps:
            name = " ".join(str(step.get("name", "")).encode("ascii", "ignore").decode().split()).strip(" -")
            for key, n in step.get("counts", {}).items():
                lines.append(f"| {name} | {key} | {n:,} |")
        lines.append("")
    return lines


def write_card(corpus: str | os.PathLike, path: str | os.PathLike, *, license: str = "other",
               parquet_dir: str | os.PathLike | None = None) -> CardFacts:
    """Write the dataset card of `corpus` to `path` (atomically); the facts it states come back."""
    path = Path(path)
    facts = gather_card_facts(corpus, parquet_dir)
    write_bytes_atomic(path, render_card(facts, path.parent, license).encode("utf-8"))
    return facts
