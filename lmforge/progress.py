"""The one progress bar every command draws: a label, the bar, done/total, an optional info
text, and the time elapsed or left.

    with ProgressBar("train", total=steps, info=True, transient=False) as bar:
        run(on_step=bar.on_step(lambda row: f"loss {row['loss']:.4f}"))

`disable=True` (a command's --no-progress) draws nothing; rich itself draws nothing live when
the console is not a terminal (a non-transient bar then prints its last state once, at the
end). rich is imported when a bar is built, never when this module is.

`task_bar` is the corpus readers' bar: one per datatrove task, in the task's own process.
`ProgressBar.polling` draws work done elsewhere (Ray workers, the processes of datatrove's
local executor) from what it leaves in files: completion markers, part records.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable


class ProgressBar:
    """One rich progress bar (one task), used as a context manager.

    label: the text before the bar (rich markup allowed); `update(description=...)` changes it.
    total: the steps, files or bytes to do (None: not known yet, set later with `update(total=)`).
    info: a text column after the count (a string: its first text), set with `update(info=...)`.
    bytes: show done/total as sizes (MB/GB) instead of counts.
    elapsed: show the time elapsed instead of the time left.
    spinner: a spinner before the label.
    transient: clear the bar when done (False: leave its last state on screen).
    lazy: draw the bar on the first update, so a run that fails before its first step prints
    only its error.
    stderr: draw on stderr (False: stdout); `console` is that console, to print under the bar.
    """

    def __init__(self, label: str, total: float | None = None, *, info: bool | str = False, bytes: bool = False, elapsed: bool = False,
                 spinner: bool = False, transient: bool = True, lazy: bool = False, disable: bool = False, stderr: bool = True):
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        columns: list[Any] = [SpinnerColumn()] if spinner else []
        columns += [TextColumn("{task.description}"), BarColumn(), DownloadColumn() if bytes else MofNCompleteColumn()]
        if info is not False:
            columns.append(TextColumn("{task.fields[info]}"))
        columns.append(TimeElapsedColumn() if elapsed else TimeRemainingColumn())
        self.console = Console(stderr=stderr)
        # off a terminal a transient bar has nothing to leave behind, yet rich still ends it with a
        # blank line: one per bar in a piped log
        disable = disable or (transient and not self.console.is_terminal)
        self.progress = Progress(*columns, console=self.console, transient=transient, disable=disable)
        self.label, self.total, self.lazy = label, total, lazy
        self.info = info if isinstance(info, str) else ""
        self.task = None

    def __enter__(self) -> ProgressBar:
        if not self.lazy:
            self._start()
        return self

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    def _start(self) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=self.total, info=self.info)

    def update(self, **kwargs) -> None:
        """rich's `Progress.update` of the task: completed=, total=, advance=, description=, info=."""
        if self.task is None:  # lazy: drawn now, with the total this first update brings
            self.total = kwargs.get("total", self.total)
            self._start()
        self.progress.update(self.task, **kwargs)

    def advance(self, n: float = 1) -> None:
        self.update(advance=n)

    def next_phase(self, description: str, total: float | None = None) -> None:
        """Hide the current task and start a new one (its own count and clock) under `description`."""
        if self.task is None:
            self._start()
        self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(description, total=total, info="")

    def on_step(self, info: Callable[[dict], str] | tuple[str, ...]) -> Callable[[dict], None]:
        """A trainer's `on_step`: each metrics row moves the bar to `row["step"]` and shows `info(row)`,
        or with a tuple of metrics keys, those of them the row has as `key value` (4 digits)."""
        if not callable(info):
            keys = info
            info = lambda row: "  ".join(f"{k} {row[k]:.4g}" for k in keys if k in row)  # noqa: E731
        return lambda row: self.update(completed=row.get("step", 0), info=info(row))

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()

    @contextlib.contextmanager
    def polling(self, look: Callable[[], dict | None], interval: float = 0.5):
        """While the block runs, a thread calls `look()` every `interval` seconds and gives what
        it returns to `update` (completed=, total=, info=; None: no change), and once more when
        the block ends: the bar of work whose progress only shows in files other processes or
        machines write (a Ray worker's own bar never reaches this terminal). A `look` that
        fails to read (a file being replaced) is tried again at the next tick."""
        import threading

        stop = threading.Event()

        def tick() -> None:
            try:
                changes = look()
            except (OSError, ValueError):
                return
            if changes:
                self.update(**changes)

        def loop() -> None:
            while not stop.wait(interval):
                tick()

        thread = threading.Thread(target=loop, name="progress-poll", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            tick()


def task_bar(rank: int, world_size: int, desc: str, progress: bool = True):
    """The progress bar of one datatrove reader task (records read): one line per task, `task N`
    when there are several; off with `progress=False` or when stderr is not a terminal. tqdm,
    not rich: the tasks run in processes of their own, and tqdm's `position` keeps their lines
    apart where one rich display per process would draw over the others."""
    from tqdm.auto import tqdm

    return tqdm(
        desc=f"task {rank}" if world_size > 1 else desc,
        unit=" rec",
        disable=None if progress else True,
        leave=False,
        mininterval=0.5,
        position=rank % 8 if world_size > 1 else None,
    )
