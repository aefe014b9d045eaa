"""`shards build`: documents -> token shards, in parallel, resumable, byte-identical on rerun.

Work is split by input file: input file `i` becomes the shards
`OUT/shards/{i:05d}-{stem}-{k:04d}.tokens.zst`, `k = 0, 1, ...`, each holding whole documents
(BOS first) up to `shard_tokens` tokens (a single document longer than that gets a shard of
its own: documents never straddle shards). `--workers` processes take files in parallel;
each encodes batches with the tokenizer's threaded `encode_batch`.

Resuming: every shard is written to `NAME.tmp` and renamed when complete, and records which
input file and which documents `[first, last)` it holds. A rerun keeps the complete shards of
a file, skips tokenising the documents they hold, and writes the rest; a finished file is
marked by `OUT/.build/part-{i:05d}.json` and skipped entirely. Shard bytes depend only on
the documents and the settings (no timestamps), so an interrupted build finishes with the
same bytes as an uninterrupted one. `OUT/source.json` is written last, when every input file
is done: its presence marks a finished build.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import orjson

from lmforge.documents import write_bytes_atomic as _atomic_write
from lmforge.documents import DocumentFileError, find_document_files, iter_documents
from lmforge.errors import UserError
from lmforge.tokenize.shards import (
    DEFAULT_FRAME_TOKENS,
    DEFAULT_LEVEL,
    SHARD_SUFFIX,
    ShardError,
    ShardReader,
    ShardWriter,
    dtype_for_vocab,
    sha256_file,
)

log = logging.getLogger(__name__)

SOURCE_FILE = "source.json"
SOURCE_FORMAT = "lmforge-source"
SOURCE_VERSION = 1
BUILD_DIR = ".build"
SHARDS_DIR = "shards"
BATCH_DOCS = 256
BATCH_CHARS = 4_000_000

# reasons a document is counted and skipped
MALFORMED_LINE = "malformed_line"
EMPTY_DOCUMENT = "empty_document"


class BuildError(UserError):
    """A build that cannot run or finish; the message names the file and the fix."""


@dataclass
class BuildConfig:
    """Settings of one `shards build`; invalid values fail here, naming the flag."""

    shard_tokens: int = 100_000_000
    frame_tokens: int = DEFAULT_FRAME_TOKENS
    level: int = DEFAULT_LEVEL
    text_key: str = "text"
    workers: int = 1
    strict: bool = False  # a malformed line is an error (naming file and line) instead of a count

    def __post_init__(self):
        if self.shard_tokens < 1:
            raise ValueError(f"--shard-tokens {self.shard_tokens}: must be at least 1 (100000000 is the default)")
        if self.frame_tokens < 1:
            raise ValueError(f"--frame-tokens {self.frame_tokens}: must be at least 1 (65536 is the default)")
        if not 1 <= self.level <= 22:
            raise ValueError(f"--level {self.level}: zstd levels are 1..22 (9 is the default)")
        if self.workers < 1:
            raise ValueError(f"--workers {self.workers}: must be at least 1")

    def settings(self) -> dict:
        """What shard bytes depend on (workers and strictness do not change them)."""
        return {"shard_tokens": self.shard_tokens, "frame_tokens": self.frame_tokens, "level": self.level, "text_key": self.text_key}


@dataclass
class BuildResult:
    out_dir: Path
    source: dict  # the source.json content
    files_total: int = 0
    files_skipped: int = 0  # finished by an earlier run
    shards_written: int = 0
    shards_kept: int = 0  # complete shards of unfinished files kept from an earlier run
    seconds: float = 0.0
    per_file: list[dict] = field(default_factory=list)
    #: `--executor slurm`: the submission (job ids, logging folders) instead of a finished build
    submitted: dict | None = None
    #: datatrove tasks the files were split into (0: the process pool of a plain build)
    tasks: int = 0


def _safe_stem(path: Path) -> str:
    name = path.name
    for suffix in (".jsonl.zst", ".jsonl.gz", ".jsonl", ".txt", ".parquet"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "input"


def shard_name(index: int, path: Path, k: int) -> str:
    return f"{index:05d}-{_safe_stem(path)}-{k:04d}{SHARD_SUFFIX}"


# ---- one input file (runs in a worker) ------------------------------------------------------

_worker: dict = {}


def _init_worker(tokenizer_dir: str, queue, threads: int) -> None:
    from lmforge.tokenize.tokenizer import Tokenizer

    _worker["tok"] = Tokenizer.load(tokenizer_dir)
    _worker["queue"] = queue
    _worker["threads"] = threads


def _report(kind: str, value) -> None:
    q = _worker.get("queue")
    if q is not None:
        q.put((kind, value))
    cb = _worker.get("callback")
    if cb is not None:
        cb(kind, value)


def _kept_shards(out_dir: Path, index: int, path: Path, fingerprint: str, settings: dict) -> list[dict]:
    """Complete shards of this input from an earlier run, in order, that match the settings."""
    kept = []
    k = 0
    while True:
        p = out_dir / SHARDS_DIR / shard_name(index, path, k)
        if not p.is_file():
            break
        try:
            with ShardReader(p) as r:
                meta = r.meta
        except ShardError:
            break
        if meta.get("fingerprint") != fingerprint or meta.get("input") != str(path) or meta.get("build") != settings or "doc_range" not in meta or "text_bytes" not in meta:
            break
        if kept and meta["doc_range"][0] != kept[-1]["doc_range"][1]:
            break
        kept.append({"path": p, "meta": meta, "doc_range": meta["doc_range"]})
        k += 1
    return kept


def _shard_entry(out_dir: Path, p: Path, meta: dict) -> dict:
    return {
        "path": p.relative_to(out_dir).as_posix(),
        "tokens": meta["tokens"],
        "documents": meta["documents"],
        "bytes": p.stat().st_size,
        "sha256": sha256_file(p),
    }


def build_file(index: int, path: str, out_dir: str, fingerprint: str, vocab_size: int, cfg_dict: dict) -> dict:
    """Tokenise one input file into its shards; write and return its part record.

    Returns `{"failed": message}` instead when the file cannot be read (the part is not
    written, so a rerun tries the file again).
    """
    cfg = BuildConfig(**cfg_dict)
    tok = _worker["tok"]
    threads = _worker.get("threads", 1)
    path_p, out = Path(path), Path(out_dir)
    settings = cfg.settings()
    kept = _kept_shards(out, index, path_p, fingerprint, settings)
    skip_docs = kept[-1]["doc_range"][1] if kept else 0
    shards = [_shard_entry(out, s["path"], s["meta"]) for s in kept]
    errors: dict[str, int] = {}
    text_bytes = sum(s["meta"]["text_bytes"] for s in kept)
    shard_text_bytes = 0
    tokens = sum(s["tokens"] for s in shards)
    documents = sum(s["documents"] for s in shards)
    k = len(kept)
    writer: ShardWriter | None = None
    first_doc = 0
    dtype = dtype_for_vocab(vocab_size)

    def open_writer(doc_index: int) -> ShardWriter:
        nonlocal first_doc
        first_doc = doc_index
        return ShardWriter(
            out / SHARDS_DIR / shard_name(index, path_p, k),
            fingerprint=fingerprint,
            vocab_size=vocab_size,
            frame_tokens=cfg.frame_tokens,
            level=cfg.level,
            extra={"input": str(path_p), "build": settings},
        )

    def close_writer(end_doc: int) -> None:
        nonlocal writer, k, shard_text_bytes
        writer.extra["doc_range"] = [first_doc, end_doc]
        writer.extra["text_bytes"] = shard_text_bytes
        shard_text_bytes = 0
        meta = writer.close()
        shards.append(_shard_entry(out, writer.path, meta))
        _report("shard", 1)
        writer = None
        k += 1

    def flush(batch: list[tuple[int, str]]) -> None:
        nonlocal writer, tokens, documents, text_bytes, shard_text_bytes
        encoded = tok.encode_batch([t for _, t in batch], bos=True, num_threads=threads)
        for (doc_index, text), ids in zip(batch, encoded):
            n = len(ids)
            if writer is not None and writer.tokens and writer.tokens + n > cfg.shard_tokens:
                close_writer(doc_index)
            if writer is None:
                writer = open_writer(doc_index)
            writer.add_document(np.asarray(ids, dtype=dtype))
            nbytes = len(text.encode("utf-8", errors="surrogatepass"))
            shard_text_bytes += nbytes
            text_bytes += nbytes
            tokens += n
            documents += 1
        _report("tokens", sum(len(x) for x in encoded))

    try:
        batch: list[tuple[int, str]] = []
        chars = 0
        doc_index = -1
        for doc_index, doc in enumerate(iter_documents(path_p, text_key=cfg.text_key, errors=None if cfg.strict else errors)):
            if not doc.text:
                errors[EMPTY_DOCUMENT] = errors.get(EMPTY_DOCUMENT, 0) + 1
                continue
            if doc_index < skip_docs:
                continue
            batch.append((doc_index, doc.text))
            chars += len(doc.text)
            if len(batch) >= BATCH_DOCS or chars >= BATCH_CHARS:
                flush(batch)
                batch, chars = [], 0
        if batch:
            flush(batch)
        if writer is not None:
            close_writer(doc_index + 1)
    except DocumentFileError as exc:
        if writer is not None:
            writer.abort()
        return {"index": index, "input": str(path_p), "failed": str(exc)}
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    part = {
        "index": index,
        "input": str(path_p),
        "documents": documents,
        "tokens": tokens,
        "text_bytes": text_bytes,
        "errors": errors,
        "shards": shards,
        "shards_kept": len(kept),
    }
    _atomic_write(out / BUILD_DIR / f"part-{index:05d}.json", orjson.dumps(part))
    _report("file", 1)
    return part


# ---- the whole build ------------------------------------------------------------------------


def _signature(files: list[Path]) -> list[dict]:
    return [{"path": str(p), "size": p.stat().st_size} for p in files]


def build_shards(
    inputs: Iterable[str | os.PathLike],
    tokenizer_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: BuildConfig | None = None,
    *,
    force: bool = False,
    progress: Callable[[str, object], None] | None = None,
    executor=None,
) -> BuildResult:
    """Build the shards of `inputs` into `out_dir`; returns the summary (also `OUT/source.json`).

    Raises FileNotFoundError (a missing input), lmforge.tokenize.TokenizerError (a missing or
    bad tokenizer folder), BuildError (an output folder built with other settings, inputs
    that could not be read). `progress(kind, value)` gets ("files", n) once, then ("tokens",
    n), ("shard", 1) and ("file", 1) events as work finishes.

    `executor` (an `lmforge.corpus.execution.ExecutorConfig`) runs the files as datatrove
    tasks instead of `cfg.workers` processes here (`build_with_executor`).
    """
    t0 = time.perf_counter()
    if executor is not None:
        return build_with_executor(inputs, tokenizer_dir, out_dir, cfg or BuildConfig(), executor, force=force)
    cfg = cfg or BuildConfig()
    files, tok, out = _prepare(inputs, tokenizer_dir, out_dir, cfg, force)
    tokenizer_dir = Path(tokenizer_dir)
    notify = progress or (lambda kind, value: None)
    notify("files", len(files))
    parts, todo = _finished_parts(out, len(files), notify)
    done_before = set(parts)

    args = [(i, str(files[i]), str(out), tok.fingerprint, tok.vocab_size, asdict(cfg)) for i in todo]
    workers = min(cfg.workers, max(1, len(todo)))
    cpus = os.cpu_count() or 1
    threads = max(1, cpus // workers)
    failed: list[dict] = []
    if workers <= 1:
        _worker.clear()
        _worker.update(tok=tok, queue=None, threads=threads, callback=notify)
        try:
            for a in args:
                r = build_file(*a)
                (failed.append(r) if "failed" in r else parts.__setitem__(a[0], r))
        finally:
            _worker.clear()
    else:
        _run_pool(args, workers, str(tokenizer_dir), threads, notify, parts, failed)

    if failed:
        lines = "\n".join(f"  {r['failed']}" for r in failed)
        raise BuildError(
            f"{len(failed)} of {len(files)} input files could not be read:\n{lines}\n"
            f"fix or remove them and run the same command again: the {len(parts)} finished files are kept"
        )
    source = merge_parts(out, len(files), tokenizer_dir, cfg)
    return _result(out, source, [parts[i] for i in range(len(files))], done_before, t0)


def _result(out: Path, source: dict, parts: list[dict], done_before: set[int], t0: float, tasks: int = 0) -> BuildResult:
    """The summary of a finished build: `parts` of every input, `done_before` the inputs an earlier run finished."""
    new = [p for i, p in enumerate(parts) if i not in done_before]
    return BuildResult(
        out_dir=out, source=source, files_total=len(parts), files_skipped=len(done_before),
        shards_written=sum(len(p["shards"]) - p.get("shards_kept", 0) for p in new),
        shards_kept=sum(p.get("shards_kept", 0) for p in new),
        seconds=time.perf_counter() - t0, per_file=parts, tasks=tasks,
    )


def _prepare(inputs, tokenizer_dir, out_dir, cfg: BuildConfig, force: bool):
    """The input files, the tokenizer and the output folder of a build, with its plan written:
    an output folder holding a build with other settings is refused by name (or cleared with
    `force`), and a build in progress has no `source.json`."""
    from lmforge.tokenize.tokenizer import Tokenizer, TokenizerError

    files = find_document_files(inputs)
    tokenizer_dir = Path(tokenizer_dir)
    if not tokenizer_dir.exists():
        raise TokenizerError(f"{tokenizer_dir}: no such tokenizer folder; train one with `lmforge tokenizer train INPUT -o {tokenizer_dir}`")
    tok = Tokenizer.load(tokenizer_dir)
    out = Path(out_dir)
    build_dir = out / BUILD_DIR
    plan = {
        "tokenizer": {"fingerprint": tok.fingerprint, "vocab_size": tok.vocab_size},
        "settings": cfg.settings(),
        "inputs": _signature(files),
    }
    plan_path = build_dir / "plan.json"
    if plan_path.is_file() and not force:
        try:
            old = orjson.loads(plan_path.read_bytes())
        except orjson.JSONDecodeError:
            old = None
        if old is not None and old != plan:
            from lmforge.settings import changed_settings, flag, show

            what = [k for k in plan if old.get(k) != plan[k]]
            named = []
            if "tokenizer" in what:
                named.append(f"--tokenizer {show((old.get('tokenizer') or {}).get('fingerprint'))} (asked {show(tok.fingerprint)})")
            if "settings" in what:
                named += [f"{name} {show(a)} (asked {show(b)})" for name, a, b in changed_settings(
                    {flag(k): v for k, v in (old.get("settings") or {}).items()}, {flag(k): v for k, v in plan["settings"].items()})]
            if "inputs" in what:
                named.append(f"inputs {len(old.get('inputs') or [])} files (asked {len(plan['inputs'])} files, or changed since)")
            raise BuildError(
                f"{out}: already holds a build with different {' and '.join(what)}: {', '.join(named)}; "
                "use a new output folder, or --overwrite to rebuild it from scratch"
            )
    if force and out.exists():
        import shutil

        for p in list((out / SHARDS_DIR).glob(f"*{SHARD_SUFFIX}*")) + list(build_dir.glob("*")) + [out / SOURCE_FILE]:
            p.unlink(missing_ok=True)
        for stage in (TASKS_DIR, MERGE_DIR):  # datatrove's completion markers would skip the rebuilt tasks
            shutil.rmtree(out / stage, ignore_errors=True)
    (out / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    (out / SOURCE_FILE).unlink(missing_ok=True)  # a build in progress has no summary
    _atomic_write(plan_path, orjson.dumps(plan))
    return files, tok, out


def _finished_parts(out: Path, n_files: int, notify=lambda kind, value: None) -> tuple[dict[int, dict], list[int]]:
    """(input index -> part record of the files an earlier run finished, indices still to do)."""
    parts: dict[int, dict] = {}
    todo: list[int] = []
    for i in range(n_files):
        part = _read_part(out, i)
        if part is not None:
            parts[i] = part
            notify("file", 1)
        else:
            todo.append(i)
    return parts, todo


def build_progress(out: str | os.PathLike) -> dict | None:
    """`{"completed": input files done, "total": input files}` of the build in `out`, from its
    plan and part records: what a progress bar shows of a build whose tasks run in other
    processes or on other machines (`--tasks N`); None before the plan is written."""
    build_dir = Path(out) / BUILD_DIR
    try:
        total = len(orjson.loads((build_dir / "plan.json").read_bytes())["inputs"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return {"completed": sum(1 for p in build_dir.glob("part-*.json") if p.is_file()), "total": total}


def _read_part(out: Path, i: int) -> dict | None:
    """The part record of input `i` when it and all its shards are there, else None."""
    part_path = out / BUILD_DIR / f"part-{i:05d}.json"
    if not part_path.is_file():
        return None
    try:
        part = orjson.loads(part_path.read_bytes())
        if all((out / s["path"]).is_file() for s in part["shards"]):
            return part
    except (orjson.JSONDecodeError, KeyError, TypeError):
        pass
    return None


def merge_parts(out: Path, n_files: int, tokenizer_dir: str | os.PathLike, cfg: BuildConfig) -> dict:
    """Merge the part records of the `n_files` inputs into one `OUT/source.json` (written last,
    atomically) and return it: shards in input order, then shard order within a file, so the
    same inputs give the same source whichever tasks or processes built the parts."""
    plan = orjson.loads((out / BUILD_DIR / "plan.json").read_bytes())
    ordered = [_read_part(out, i) for i in range(n_files)]  # each part read (and its shards checked) once
    missing = [i for i, p in enumerate(ordered) if p is None]
    if missing:
        raise BuildError(f"{out}: {len(missing)} of {n_files} input files have no finished shards (first: input {missing[0]}); "
                         "run the same command again to build them")
    vocab_size = plan["tokenizer"]["vocab_size"]
    shard_list = [s for p in ordered for s in p["shards"]]
    errors: dict[str, int] = {}
    for p in ordered:
        for k, v in p["errors"].items():
            errors[k] = errors.get(k, 0) + v
    tokens = sum(p["tokens"] for p in ordered)
    itemsize = dtype_for_vocab(vocab_size).itemsize
    nbytes = sum(s["bytes"] for s in shard_list)
    text_bytes = sum(p["text_bytes"] for p in ordered)
    source = {
        "format": SOURCE_FORMAT,
        "version": SOURCE_VERSION,
        "tokenizer": {"fingerprint": plan["tokenizer"]["fingerprint"], "vocab_size": vocab_size, "dir": os.path.abspath(tokenizer_dir)},
        "dtype": dtype_for_vocab(vocab_size).name,
        "documents": sum(p["documents"] for p in ordered),
        "tokens": tokens,
        "bytes": nbytes,
        "raw_bytes": tokens * itemsize,
        "compression": round(nbytes / (tokens * itemsize), 4) if tokens else None,
        "text_bytes": text_bytes,
        "settings": cfg.settings(),
        "errors": errors,
        "inputs": [
            {"path": p["input"], "documents": p["documents"], "tokens": p["tokens"], "shards": len(p["shards"]), "errors": p["errors"]}
            for p in ordered
        ],
        "shards": shard_list,
    }
    if not shard_list:
        raise BuildError(f"no documents with a {cfg.text_key!r} text in {n_files} input files; check the inputs or pass --text-key")
    _atomic_write(out / SOURCE_FILE, orjson.dumps(source, option=orjson.OPT_INDENT_2))
    return source


# ---- the build as datatrove tasks (--executor local|ray|slurm --tasks N) -----------------------

#: datatrove's logging folders of a task build: the tokenising tasks, and (Slurm) the merge job
TASKS_DIR = ".lmforge/shards"
MERGE_DIR = ".lmforge/shards-merge"


class ShardTask:
    """One datatrove task of a `shards build`: the input files `rank, rank + world_size, ...`,
    each tokenised by `build_file` into its own shards and part record, exactly as the
    processes of a local build do (so the shards are the same bytes whatever the task count).
    A file already finished is skipped; a file that cannot be read fails the task (its log
    names the file) after the others are done."""

    name = "shards"

    def __init__(self, files: list[str], out_dir: str, tokenizer_dir: str, cfg: BuildConfig, threads: int = 1):
        self.files, self.out_dir, self.tokenizer_dir, self.cfg, self.threads = files, out_dir, tokenizer_dir, cfg, threads

    def __call__(self, data, rank: int = 0, world_size: int = 1):
        self.run(rank, world_size)
        return iter(())

    def run(self, rank: int, world_size: int) -> None:
        from lmforge.tokenize.tokenizer import Tokenizer

        out = Path(self.out_dir)
        todo = [i for i in range(rank, len(self.files), world_size) if _read_part(out, i) is None]
        if not todo:
            return
        tok = Tokenizer.load(self.tokenizer_dir)
        _worker.clear()
        _worker.update(tok=tok, queue=None, threads=self.threads)
        failed = []
        try:
            for i in todo:
                r = build_file(i, self.files[i], self.out_dir, tok.fingerprint, tok.vocab_size, asdict(self.cfg))
                if "failed" in r:
                    failed.append(r["failed"])
        finally:
            _worker.clear()
        if failed:
            raise BuildError("; ".join(failed))


class MergeTask(ShardTask):
    """The one task after every `ShardTask` under Slurm (a job that waits for the tokenising
    array): `merge_parts` writes `OUT/source.json`, as the driver does on the other engines."""

    name = "merge"

    def run(self, rank: int, world_size: int) -> None:
        if rank == 0:
            merge_parts(Path(self.out_dir), len(self.files), self.tokenizer_dir, self.cfg)


def build_with_executor(inputs, tokenizer_dir, out_dir, cfg: BuildConfig, executor, *, force: bool = False) -> BuildResult:
    """`build_shards` as `executor.tasks` datatrove tasks on `executor`'s engine (local processes,
    a Ray cluster, Slurm job arrays), then one merge into `OUT/source.json`.

    Input file `i` goes to task `i % tasks`, and its shards and part record are what a local
    build writes for it (`build_file`), so the merged source is the same whatever the number
    of tasks: the same shards, in input-file order, documents in file order within them. Paths
    are made absolute first (a Ray worker resolves a relative one where `ray start` ran), so a
    build from relative paths records absolute ones. Local and Ray runs wait and merge here;
    a task that fails is a BuildError naming it and its log. Slurm: the tasks' job array and a
    merge job that waits on it (`--dependency=afterok`, cancelled if a task fails) are
    submitted, and the result's `submitted` says which; `lmforge shards status OUT` follows it.
    A rerun skips finished files and finished tasks.
    """
    import dataclasses
    import json
    import shutil

    from lmforge.corpus.execution import check_engine, make_executor, release_ray_actors
    from lmforge.corpus.pipeline import failed_tasks_message, unfinished_tasks

    t0 = time.perf_counter()
    check_engine(executor)
    inputs = [str(p) if "://" in str(p) else os.path.abspath(p) for p in inputs]
    out = Path(os.path.abspath(out_dir))
    tokenizer_dir = os.path.abspath(tokenizer_dir)
    files, tok, out = _prepare(inputs, tokenizer_dir, out, cfg, force)
    files = [os.path.abspath(f) for f in files]
    done_before = set(_finished_parts(out, len(files))[0])
    tasks = max(1, min(executor.tasks, len(files)))
    executor = dataclasses.replace(executor, tasks=tasks, workers=min(executor.workers, tasks))
    logging_dir = out / TASKS_DIR
    try:  # datatrove skips a rank by its completion marker: one of a run with another task count covers other files
        if json.loads((logging_dir / "executor.json").read_text()).get("world_size") != tasks:
            shutil.rmtree(logging_dir / "completions", ignore_errors=True)
    except (OSError, ValueError, AttributeError):
        pass
    if executor.executor == "slurm":
        threads = executor.slurm_cpus_per_task
    elif executor.executor == "local":
        threads = max(1, (os.cpu_count() or 1) // executor.workers)
    else:
        threads = 1
    step = ShardTask(files, str(out), tokenizer_dir, cfg, threads)
    if executor.executor == "slurm" and len(done_before) < len(files):
        # the merge runs again whatever its marker says: `_prepare` removed the source.json it wrote
        shutil.rmtree(out / MERGE_DIR / "completions", ignore_errors=True)
        tasks_job = make_executor([step], executor, logging_dir)
        merge_cfg = dataclasses.replace(executor, tasks=1, workers=1, extra={**executor.extra, "depends": tasks_job})
        merge_job = make_executor([MergeTask(files, str(out), tokenizer_dir, cfg)], merge_cfg, out / MERGE_DIR)
        merge_job.run()  # launches the tasks' array first, then the merge job that waits on it
        return BuildResult(out_dir=out, source={}, files_total=len(files), files_skipped=len(done_before),
                           seconds=time.perf_counter() - t0,
                           submitted={"executor": "slurm", "tasks": tasks, "tasks_job": tasks_job.job_id, "merge_job": merge_job.job_id,
                                      "logging_dir": str(logging_dir)})
    try:
        if len(done_before) < len(files):  # (every file done: a Slurm rerun merges here, submitting nothing)
            engine = make_executor([step], executor, logging_dir)
            engine.keep_going = True  # local: every task runs, and the failed ones are named below, as on Ray
            engine.run()
    finally:
        release_ray_actors()
    if len(done_before) < len(files) and unfinished_tasks(logging_dir, tasks):
        raise BuildError(f"{failed_tasks_message(logging_dir, tasks)}; run the same command again to resume "
                         "(finished files are kept)")
    source = merge_parts(out, len(files), tokenizer_dir, cfg)
    return _result(out, source, [_read_part(out, i) for i in range(len(files))], done_before, t0, tasks)


def _run_pool(args, workers, tokenizer_dir, threads, notify, parts, failed) -> None:
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # no fork after tokenizer threads have run
    q = ctx.Queue()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(tokenizer_dir, q, threads)) as pool:
        pending = {pool.submit(build_file, *a): a[0] for a in args}

        def drain():
            while True:
                try:
                    kind, value = q.get_nowait()
                except queue_mod.Empty:
                    return
                notify(kind, value)

        try:
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                drain()
                for fut in done:
                    i = pending.pop(fut)
                    r = fut.result()
                    (failed.append(r) if "failed" in r else parts.__setitem__(i, r))
            drain()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
