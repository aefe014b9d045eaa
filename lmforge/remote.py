"""Object storage in and out (`s3://` and any fsspec URL): a local staging folder per URL.

```
with staged_output("s3://bucket/corpus") as local:   # ~/.cache/lmforge/staging/out/corpus-1a2b3c4d5e6f
    run_corpus(..., output_dir=local)                  # every writer, lock and memmap as on a local disk
# then: documents/, rejected/, clusters/, dedup/ uploaded object by object, stats.json last
fetch("s3://bucket/corpus")                            # -> a local copy of its document files
```

Why staging, not writing through fsspec: lmforge's writers are local-file code with properties
a plain object stream does not give — checksummed zstd frames renamed into place, dedup's
memory-mapped signature and shingle arrays, flock output locks. Each object is uploaded whole
(an S3 PUT is atomic: a reader sees the old object or the new one, never half of one), and
`stats.json` goes last: it is the completion marker (a folder without it is not finished).
Objects that an earlier run left under lmforge's own subfolders and this run did not write
are deleted, so the store ends as the staging folder. The run's state (`.lmforge/`: settings,
datatrove's completion markers, logs, dedup's work files) stays in the staging folder, which
is what a rerun resumes from. Two locks: the staging folder's flock (one writer per machine),
and a writer object in the store, `URL/.lmforge-writer.json` (`mix.json.lmforge-writer.json` for
a file), naming the holder's host, pid, staging folder and time: a writer from another machine
(or another staging folder) is refused, naming the holder, while that object is younger than
its lease (`LMFORGE_STORE_LEASE` seconds, default 600; the holder rewrites it every third of
the lease while it runs and deletes it at the end). A holder that died leaves an object that
goes stale after the lease and is then taken over, with a warning. The check is a read, a
write and a read again: two writers starting within the same instant can both pass where the
store has no conditional write; that race is not covered.

Costs: local disk for the whole output (and for fetched inputs: one copy, reused by a rerun
while sizes match). On a Ray cluster over several nodes the staging folder must be one the
workers share: `LMFORGE_STAGING=/shared/lmforge-staging`. Slurm submissions return before
anything is written, so they refuse URL outputs (write to the shared filesystem, then copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

from lmforge.errors import UserError

#: what to install for the fsspec protocols users ask for most
EXTRAS = {"s3": "pip install 'lmforge[s3]' (s3fs)", "s3a": "pip install 'lmforge[s3]' (s3fs)",
          "gs": "pip install gcsfs", "gcs": "pip install gcsfs", "az": "pip install adlfs", "abfs": "pip install adlfs",
          "hf": "pip install huggingface_hub"}
#: protocols fsspec can read but not write
READ_ONLY = ("http", "https")
#: the subfolders an lmforge output holds (kept in sync with the store), and its completion marker
SYNCED = ("documents", "rejected", "clusters", "dedup")
MARKER = "stats.json"
#: the writer object in the store (see the module docstring), and its lease in seconds
WRITER = ".lmforge-writer.json"
DEFAULT_LEASE = 600

log = logging.getLogger(__name__)


class RemoteError(UserError):
    """A URL lmforge cannot read or write (filesystem not installed, unreachable, missing)."""


def is_url(path) -> bool:
    return "://" in os.fspath(path)


def filesystem_problem(url: str, write: bool = False) -> str | None:
    """Why `url` cannot be read (or written) here, naming what to install; None when it can."""
    import fsspec

    protocol = url.split("://", 1)[0].lower()
    if write and protocol in READ_ONLY:
        return f"{url}: {protocol}:// is read-only; write to a local folder or an object store (s3://)"
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError:
        hint = EXTRAS.get(protocol, f"install the fsspec filesystem for {protocol}://")
        return f"{url}: reading and writing {protocol}:// needs its fsspec filesystem: {hint}"
    except ValueError:
        return f"{url}: {protocol}:// is not a filesystem fsspec knows; use a local path or an s3:// URL"
    return None


def staging_root() -> Path:
    """`$LMFORGE_STAGING`, else `~/.cache/lmforge/staging`."""
    root = os.environ.get("LMFORGE_STAGING") or os.path.join(os.path.expanduser("~"), ".cache", "lmforge", "staging")
    return Path(os.path.abspath(root))


def staging_dir(url: str, kind: str) -> Path:
    """The local folder that stands for `url` (`kind`: "out" or "in"): readable name, unique hash."""
    url = url.rstrip("/")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[1].rsplit("/", 1)[-1])[:40] or "root"
    return staging_root() / kind / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _fs(url: str):
    import fsspec

    problem = filesystem_problem(url)
    if problem:
        raise RemoteError(problem)
    return fsspec.core.url_to_fs(url)


def store_root(url: str) -> str:
    """The store (bucket) of `url`: `s3://bucket/a/b` -> `s3://bucket`."""
    protocol, rest = url.split("://", 1)
    return f"{protocol}://{rest.split('/', 1)[0]}"


def store_mirror(url: str) -> Path:
    """The local folder that mirrors the store (bucket) of `url` path for path:
    `s3://bucket/mixes/mix.json` -> `STAGING/store/bucket-HASH/mixes/mix.json`. A manifest and
    the shards it names by relative path keep their layout there, so the relative paths mean
    the same locally and in the store (`mix build -o s3://…`, `train -m s3://…`)."""
    root = staging_dir(store_root(url), "store")
    key = url.split("://", 1)[1].partition("/")[2].strip("/")
    return root / key if key else root


@contextlib.contextmanager
def staged_output(url: str, marker: str = MARKER, synced: tuple = SYNCED, file: bool = False) -> Iterator[Path]:
    """A local folder to write `url`'s output into; uploaded when the block ends without error,
    `marker` last (the file whose presence says the output is complete: `stats.json` of a
    corpus output, `source.json` of shards), stale objects under the `synced` subfolders
    deleted. `file=True`: `url` is one file (`mix.json`); yields the local path that stands
    for it in the store's mirror (`store_mirror`), under its lock, and uploads that file alone."""
    problem = filesystem_problem(url, write=True)
    if problem:
        raise RemoteError(problem)
    from lmforge.locks import output_lock

    if file:
        local = store_mirror(url)
        local.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(local, file=True), store_writer(url + WRITER, local, url):  # mix.json.lmforge-writer.json
            yield local
            _put(local, url)
        return
    local = staging_dir(url, "out")
    local.mkdir(parents=True, exist_ok=True)
    with output_lock(local), store_writer(f"{url.rstrip('/')}/{WRITER}", local, url):
        yield local
        upload(local, url, marker=marker, synced=synced)


def lease_seconds() -> float:
    try:
        return max(float(os.environ.get("LMFORGE_STORE_LEASE", DEFAULT_LEASE)), 1.0)
    except ValueError:
        raise RemoteError(f"LMFORGE_STORE_LEASE={os.environ['LMFORGE_STORE_LEASE']!r}: give seconds, e.g. 600") from None


@contextlib.contextmanager
def store_writer(lock_url: str, staging: Path, output: str) -> Iterator[None]:
    """Hold the writer object `lock_url` in the store for the block (see the module docstring):
    refused (RemoteError naming the holder) while another writer's object is younger than the
    lease; renewed every third of the lease; deleted at the end if it is still ours."""
    fs, path = _fs(lock_url)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "staging": str(staging)}
    lease = lease_seconds()

    def read() -> dict | None:
        try:
            fs.invalidate_cache(path)
            return json.loads(fs.cat_file(path))
        except FileNotFoundError:
            return None
        except ValueError:  # unreadable: treat as a dead writer's
            return {"host": "?", "pid": 0, "staging": "?", "time": 0}

    def mine(holder: dict | None) -> bool:
        return bool(holder) and holder.get("host") == me["host"] and holder.get("staging") == me["staging"]

    def write() -> None:
        fs.pipe_file(path, json.dumps({**me, "time": time.time(), "lease_s": lease}).encode())

    with _store_errors(lock_url, "cannot take the writer lock", "check the URL and the credentials in the environment"):
        holder = read()
        if holder and not mine(holder):
            age = time.time() - float(holder.get("time", 0))
            if age < float(holder.get("lease_s", lease)):
                raise RemoteError(
                    f"{output}: being written by {holder.get('host')} (pid {holder.get('pid')}, staging "
                    f"{holder.get('staging')}) since {time.strftime('%H:%M:%S', time.gmtime(float(holder.get('time', 0))))} UTC; "
                    f"wait for it to finish, or if it died, its lock goes stale "
                    f"{float(holder.get('lease_s', lease)) - age:.0f} s from now (or delete {lock_url})")
            log.warning("%s: taking over a stale lock of %s (pid %s), %.0f s old", lock_url, holder.get("host"), holder.get("pid"), age)
        write()
        if not mine(read()):  # another writer wrote at the same moment: it keeps the store
            holder = read() or {}
            raise RemoteError(f"{output}: another writer ({holder.get('host')}, pid {holder.get('pid')}) "
                              "started at the same moment; wait for it to finish")
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 3):
            with contextlib.suppress(Exception):
                write()

    renewer = threading.Thread(target=renew, name="lmforge-store-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with contextlib.suppress(Exception):
            if mine(read()):
                fs.rm_file(path)


def _put(local: Path, url: str) -> None:
    """Upload one file (one PUT: the store holds the old object or the new one, never half)."""
    fs, path = _fs(url)
    with _store_errors(url, "upload failed", f"{local} is complete: run the same command again to retry the upload"):
        fs.put_file(str(local), path)
    fs.invalidate_cache(path)


def upload(local: str | os.PathLike, url: str, marker: str = MARKER, synced: tuple = SYNCED) -> int:
    """Copy the output in `local` to `url` (everything outside `.lmforge/`), `marker` last;
    delete objects under the `synced` subfolders there that `local` does not have. Returns
    the number of files uploaded."""
    fs, root = _fs(url)
    local = Path(local)
    files = sorted(p for p in local.rglob("*") if p.is_file() and not _private(p.relative_to(local)))
    files.sort(key=lambda p: p.relative_to(local).as_posix() == marker)  # the marker last
    wanted = {p.relative_to(local).as_posix() for p in files}
    with _store_errors(url, "upload failed", f"the output is complete in {local}: run the same command again to retry the upload"):
        if fs.exists(f"{root}/{marker}"):  # the store's copy is unfinished while it changes
            fs.rm(f"{root}/{marker}")
        for sub in synced:
            if fs.exists(f"{root}/{sub}"):
                stale = [p for p in fs.find(f"{root}/{sub}") if p[len(root.rstrip('/')) + 1:] not in wanted]
                if stale:
                    fs.rm(stale)
        for path in files:
            fs.put_file(str(path), f"{root}/{path.relative_to(local).as_posix()}")
    fs.invalidate_cache(root)
    return len(files)


def _store_error(exc: BaseException) -> bool:
    """An error of the store or its client (no such bucket, no credentials, no network)."""
    module = type(exc).__module__ or ""
    return isinstance(exc, OSError) or module.startswith(("botocore", "aiobotocore", "s3fs", "gcsfs", "adlfs", "aiohttp"))


@contextlib.contextmanager
def _store_errors(url, what: str, fix: str) -> Iterator[None]:
    """The store's own errors (not all OSErrors) inside the block as one line,
    `URL: WHAT (Type: message); FIX`; lmforge's own RemoteErrors and other bugs pass through."""
    try:
        yield
    except RemoteError:
        raise
    except Exception as exc:  # noqa: BLE001 - filtered by _store_error
        if not _store_error(exc):
            raise
        raise RemoteError(f"{url}: {what} ({type(exc).__name__}: {exc}); {fix}") from None


def _private(rel: Path) -> bool:
    # a run's own state: `.lmforge/` of corpus outputs, `.build/` of shards (any top-level dot folder)
    return ((rel.parts[0].startswith(".") and len(rel.parts) > 1) or rel.name.endswith((".tmp", ".lock", WRITER))
            or rel.name == ".lmforge.lock")


def fetch(url: str, into: str | os.PathLike | None = None) -> str:
    """A local copy of the file, folder or glob `url` (in the staging folder, or `into`: the
    local folder standing for the url's folder; reused while sizes match); returns the local
    path that stands for it (a folder, file or glob pattern)."""
    fs, path = _fs(url)
    path = path.rstrip("/")
    fs.invalidate_cache()  # a listing cached before another command (or this one) wrote there
    globbed = any(ch in path for ch in "*?[")
    with _store_errors(url, "cannot read it", "check the URL and the credentials in the environment"):
        if globbed:
            base = path[: min(path.index(ch) for ch in "*?[" if ch in path)].rsplit("/", 1)[0]
            remote = [p for p in fs.glob(path) if fs.isfile(p)]
        elif fs.isdir(path):
            base, remote = path, fs.find(path)
        elif fs.isfile(path):
            base, remote = path.rsplit("/", 1)[0], [path]
        else:
            raise RemoteError(f"{url}: no such file or folder in the store; check the URL")
        local = Path(into) if into is not None else staging_dir(url.split("://", 1)[0] + "://" + base, "in")
        for item in remote:
            rel = item[len(base) + 1:]
            if rel and _private(Path(rel)):  # a run's state and work files are not its documents
                continue
            target = local / rel
            size = fs.size(item)
            if target.is_file() and target.stat().st_size == size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            fs.get_file(item, str(tmp))
            os.replace(tmp, target)
    if globbed:
        return str(local / path[len(base) + 1:])
    return str(local if not fs.isfile(path) else local / path.rsplit("/", 1)[1])
