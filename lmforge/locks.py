"""One writer per output: an advisory lock on every folder (or file) a command writes.

```
with output_lock("runs/sft", "lmforge align sft ..."):   # OUT/.lmforge.lock, flock(LOCK_EX | LOCK_NB)
    ...                                                # stale *.tmp / .tmp-* of dead writers are gone
```

A second writer into the same output is refused at once (`OutputLocked`, one line naming the
folder, the holder's pid and its command line) instead of both writing: two `align sft` into
one folder used to leave 5 of 30 metrics rows, or fail on a vanished `.tmp`. A file output
(`mix.json`) is locked through `mix.json.lock` beside it.

- The kernel drops a flock when its holder dies (kill -9 included), so the next run proceeds;
  the lock file left behind is reused, and removed when that run ends.
- Holding the lock means no live writer, so on taking it the temporary files a killed writer
  left (`NAME.tmp`, `.tmp-NAME-PID` checkpoint folders) are removed.
- Reentrant within a process: the pipeline runner and the demo hold the lock of their root
  while the stages they call as library functions take theirs. Worker processes a command
  starts (datatrove tasks, torchrun ranks > 0) never take it: the command's launcher holds it
  (`@locks_output` skips ranks other than 0).
- Where the file system refuses the lock file (read-only, no flock support) the command runs
  unlocked: it then fails or succeeds on its own writes as before.

Commands use the `locks_output(param)` decorator; library code the `output_lock` context manager.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, Iterator

from lmforge.errors import UserError

log = logging.getLogger(__name__)

#: the lock file inside an output folder
LOCK_NAME = ".lmforge.lock"

#: resolved lock path -> [fd, depth] of the locks this process holds
_HELD: dict[str, list] = {}


class OutputLocked(UserError, RuntimeError):
    """Another process is writing into this output; the message names it and what to do."""


def lock_path(output: str | os.PathLike, file: bool = False) -> Path:
    """`OUT/.lmforge.lock` for a folder output, `OUT.lock` beside a file output."""
    out = Path(os.path.abspath(os.fspath(output)))
    return out.with_name(out.name + ".lock") if file else out / LOCK_NAME


def command_line() -> str:
    """How this process was started, as a user would type it (`lmforge align sft ...`)."""
    argv = list(sys.argv) or ["lmforge"]
    head = os.path.basename(argv[0])
    if head.endswith(".py") or head.startswith("python"):  # python -m lmforge.cli ...
        head = "lmforge"
    return " ".join([head, *argv[1:]])[:300].replace("\n", " ")


def _holder(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        text = ""
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another process (it has not written its pid yet)"
    return f"pid {pid}" + (f": {command}" if command else "")


@contextlib.contextmanager
def output_lock(output: str | os.PathLike, command: str | None = None, *, file: bool = False, clean: bool = True) -> Iterator[Path]:
    """Hold the lock of `output` (a folder, or with `file=True` a file) for the `with` block.

    Raises OutputLocked at once when another process holds it. On first taking it, removes
    the stale temporary files of killed writers under `output` (unless `clean=False`).
    """
    path = lock_path(output, file=file)
    key = str(path)
    if key in _HELD:  # reentrant: this process already holds it
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    out = path.parent if not file else Path(os.path.abspath(os.fspath(output)))
    created = not path.parent.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, output, file)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        log.warning("%s: cannot take the output lock (%s); running without it", path, exc.strerror)
        fd = None
    if fd is None:
        yield path
        return
    _HELD[key] = [fd, 1]
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command or command_line()}\n".encode("utf-8", "replace"), 0)
        if clean:
            remove_stale_tmp(out, file=file)
        yield path
    finally:
        del _HELD[key]
        # unlink while still holding it: a waiter that opened this inode sees it gone and retries
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when empty: a refused or failed first run leaves nothing


def _acquire(path: Path, output, file: bool) -> int:
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            what = "file" if file else "folder"
            raise OutputLocked(
                f"{os.path.abspath(os.fspath(output))}: another lmforge command is writing to this {what} "
                f"({_holder(path)}); wait for it to finish or stop it, or write to another output"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed this lock file as we opened it: take the new one
    raise OutputLocked(f"{path}: could not take the output lock (it keeps being replaced); run the command again")


def _is_stale_tmp(name: str) -> bool:
    """Temporary names lmforge's atomic writers use: `NAME.tmp` (and `NAME.json.tmp`), `.tmp-NAME`."""
    return name.endswith(".tmp") or name.startswith(".tmp-")


def remove_stale_tmp(output: str | os.PathLike, file: bool = False) -> list[Path]:
    """Remove the temporary files (and `.tmp-*` checkpoint folders) killed writers left in `output`.

    Only call it holding `output`'s lock. A folder inside it that another live command holds
    (an output nested in this one) is left alone, and so is `X.tmp` while `X.lock` is held.
    For a file output, only its own `NAME.tmp` beside it. Returns what was removed.
    """
    out = Path(output)
    removed: list[Path] = []
    if file:
        tmp = out.with_name(out.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    elif out.is_dir():
        for root, dirs, files in os.walk(out):
            live = {name[: -len(".lock")] for name in files if name.endswith(".lock") and _is_held(os.path.join(root, name))}
            if root != str(out) and LOCK_NAME[: -len(".lock")] in live:
                dirs[:] = []  # another command's output, being written now
                continue
            for name in files:
                if _is_stale_tmp(name) and name[: -len(".tmp")] not in live:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(root, name))
                        removed.append(Path(root, name))
            for name in [d for d in dirs if _is_stale_tmp(d)]:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                removed.append(Path(root, name))
                dirs.remove(name)
    if removed:
        log.info("%s: removed %d temporary file(s) a killed run left", out, len(removed))
    return removed


def _is_held(path: str) -> bool:
    """Whether some open file (another process, or another lock of this one) holds this lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


def hold(output: str | os.PathLike, error: Callable[[str], Exception] | None = None, **kwargs) -> contextlib.ExitStack:
    """`output_lock(output, **kwargs)` taken now, as an ExitStack to `with`; refused -> `error(message)`.

    `with hold(out, click.ClickException): ...` turns a refusal into the caller's own error type.
    """
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(output_lock(output, **kwargs))
    except OutputLocked as exc:
        if error is None:
            raise
        raise error(str(exc)) from None
    return stack


def locks_output(param: str, *, file: bool = False, clean: Callable[[dict], bool] | None = None,
                 skip: Callable[[dict], bool] | None = None):
    """Decorator for a click command: hold the lock of the output given as argument `param`.

    Put it under the click decorators (nearest the function). A refused lock becomes a
    `click.ClickException` (one line, exit 1). `clean(kwargs)` says whether stale temporary
    files may be removed (False for a Slurm submission: its tasks write after we return);
    `skip(kwargs)` that the command writes nothing this time (`--explain`).
    Under torchrun only rank 0 takes the lock (the other ranks are the same command's workers).
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            output = kwargs.get(param)
            if (output is None or "://" in str(output) or (skip and skip(kwargs))
                    or int(os.environ.get("RANK", "0") or 0) != 0):
                return func(*args, **kwargs)
            import click

            with hold(output, click.ClickException, file=file, clean=clean(kwargs) if clean else True):
                return func(*args, **kwargs)

        return wrapper

    return decorate
