"""The `lmforge` entry point: one click group, each part registers its own commands.

Subcommands are imported lazily so that `lmforge --help` and `lmforge corpus --help` stay
fast and never import torch or the corpus engines they do not need.
"""

from __future__ import annotations

import errno
import functools
import importlib
import logging
import math
import os
import re
import sys
import traceback

import click

from lmforge.errors import UserError

# name -> "module:attribute"; each part owns its group or command.
COMMANDS: dict[str, str] = {
    "corpus": "lmforge.corpus.cli:corpus",
    "tokenizer": "lmforge.tokenize.cli:tokenizer",
    "shards": "lmforge.tokenize.shards_cli:shards",
    "mix": "lmforge.tokenize.shards_cli:mix",
    "train": "lmforge.train.cli:train",
    "sample": "lmforge.train.cli:sample",
    "align": "lmforge.alignment.cli:align",
    "chat": "lmforge.alignment.chat_cli:chat",
    "eval": "lmforge.alignment.eval_cli:eval_group",
    "export": "lmforge.export.cli:export",
    "pipeline": "lmforge.pipelines.pipeline_cli:pipeline",
    "demo": "lmforge.pipelines.demo_cli:demo",
}


# name -> the one line `lmforge --help` shows, so listing the commands imports none of them
SUMMARIES: dict[str, str] = {
    "corpus": "Crawl dumps (WARC/WET) -> clean, deduplicated documents.",
    "tokenizer": "Byte-level BPE tokenizers: train, show tokens, stats.",
    "shards": "Token shards: build them from documents, inspect, verify.",
    "mix": "Mixture manifests: which shards a run trains on, how much.",
    "train": "Pretrain a GPT on a mixture manifest (resumable, torchrun).",
    "sample": "Generate text from the newest checkpoint of a run.",
    "align": "Alignment: SFT, reward model, DPO, RL (GRPO, PPO).",
    "chat": "Chat with a run's newest checkpoint.",
    "eval": "Evaluate alignment runs on held-out data: reward models, policies, win rates.",
    "export": "Export runs: a Hugging Face model folder (transformers, lm-eval, vLLM).",
    "pipeline": "Run a recipe (TOML) that chains every stage into one folder.",
    "demo": "Every stage, crawl to chat model, on built-in samples (offline).",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used; `summaries` gives the
    one-line help of lazy commands so that listing them imports nothing."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, summaries: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})
        self.summaries = dict(summaries or {})

    def format_commands(self, ctx, formatter):
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        rows = []
        for name in names:
            if name in self.summaries and name in self.lazy:
                rows.append((name, self.summaries[name]))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        names.update(n for n, target in self.lazy.items() if _available(target))
        return sorted(names)

    def get_command(self, ctx, name):
        if name in self.lazy and _available(self.lazy[name]):
            module, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


    def invoke(self, ctx):
        """Run the command; what a user or a disk caused becomes one line (`Error: ...`, exit
        1), anything else (a bug) keeps its traceback. Nested groups run inside this call, so
        this one handler covers every command; `--debug` / LMFORGE_DEBUG=1 re-raises."""
        debug = debug_enabled(ctx)
        try:
            return super().invoke(ctx)
        except click.exceptions.ClickException as exc:
            if debug and exc.__context__ is not None and not getattr(exc, "traceback_shown", False):
                traceback.print_exception(exc.__context__, file=sys.stderr)  # a command turned an error into a line
                exc.traceback_shown = True  # once, though nested groups pass it up through here again
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            message = user_error_message(exc)
            if message is None or debug:
                raise
            raise click.ClickException(message) from exc


#: what to do about the OSErrors a user's own files and disks raise, by errno
_OS_ERROR_HINTS = {
    errno.EACCES: "fix its permissions, or choose another path",
    errno.EPERM: "fix its permissions, or choose another path",
    errno.EROFS: "the file system is read-only: choose another output path",
    errno.ENOSPC: "the disk is full: free some space, then run the same command again to resume",
    errno.EDQUOT: "your disk quota is used up: free some space, then run the same command again to resume",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENOTDIR: "a part of this path is a file, not a folder: check the path",
    errno.EEXIST: "a file is in the way where a folder is needed: check the path",
    errno.EISDIR: "this is a folder where a file was expected: check the path",
}


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """`lmforge --debug ...` or LMFORGE_DEBUG=1: show tracebacks instead of one-line errors."""
    if os.environ.get("LMFORGE_DEBUG", "").strip() not in ("", "0"):
        return True
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.params.get("debug"))


def user_error_message(exc: BaseException) -> str | None:
    """The one line to show for an error a user's file or disk caused, or None for a bug.

    `UserError` (every part's error class) carries its own line. An `OSError` with an errno
    names the file and the fix (`os_error_message`). Errors the libraries raise about a
    user's file (a damaged safetensors or zstd file, torch failing to write a checkpoint on
    a full disk) name the file found in the failing call, when there is one.
    """
    if isinstance(exc, UserError):
        return " ".join(str(exc).split("\n")).strip() or type(exc).__name__
    if isinstance(exc, OSError):
        if exc.filename is None and exc.errno is None:
            return None
        if exc.filename is None:
            where = _path_in_traceback(exc)
            if where is not None:
                exc = OSError(exc.errno, exc.strerror or str(exc), where)
        return os_error_message(exc)
    kind = _library_error_kind(exc)
    if kind is None:
        return None
    where = _path_in_traceback(exc) or "a file"
    code = re.search(r"\(os error (\d+)\)", str(exc))  # Rust libraries (safetensors) report the OS error so
    if code is not None:
        number = int(code.group(1))
        return os_error_message(OSError(number, os.strerror(number), where))
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{where}: {kind} ({first}); {_LIBRARY_HINTS[kind]}"


_LIBRARY_HINTS = {
    "not a readable safetensors file": "the file is damaged or truncated: delete it (or its checkpoint folder) and re-create it",
    "corrupted zstd data": "the file is damaged or truncated: re-create it",
    "cannot write": "the disk is probably full: free some space, then run the same command again to resume",
}


def _library_error_kind(exc: BaseException) -> str | None:
    """What a known library error about a user's file means; imports nothing (a library that
    was never imported cannot have raised)."""
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if name == "SafetensorError" and module.startswith("safetensors"):
        return "not a readable safetensors file"
    if name == "ZstdError" and module.startswith("zstandard"):
        return "corrupted zstd data"
    # torch.save on a full disk: "[enforce fail at inline_container.cc:...] . unexpected pos N vs M"
    if isinstance(exc, RuntimeError) and ("unexpected pos" in str(exc) or "file write failed" in str(exc)):
        return "cannot write"
    return None


#: names of locals that hold the file a failing call was working on, most specific first
_PATH_LOCALS = ("tmp_path", "tmp", "filename", "path", "file", "weights_path", "f")


def _path_in_traceback(exc: BaseException) -> str | None:
    """The file the innermost lmforge (or library) frame of `exc` was working on: a local
    named like a path, or `self.tmp_path`/`self.path`. None when no frame holds one."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        local = frame.f_locals
        candidates = [local.get(name) for name in _PATH_LOCALS]
        for suffix in ("_path", "_file", "_dir"):  # metrics_path, out_dir, ...
            candidates += [value for name, value in local.items() if name.endswith(suffix)]
        owner = local.get("self")
        if owner is not None:
            candidates += [getattr(owner, "tmp_path", None), getattr(owner, "path", None)]
        for value in candidates:
            if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
                text = os.fspath(value)
                if text and ("/" in text or os.sep in text or "." in text) and "\n" not in text:
                    return text
    return None


def os_error_message(exc: OSError) -> str:
    """`PATH: Permission denied; fix its permissions, ...` for an OSError from the user's files."""
    where = exc.filename if exc.filename is not None else "error"
    what = exc.strerror or str(exc)
    hint = _OS_ERROR_HINTS.get(exc.errno)
    return f"{where}: {what}" + (f"; {hint}" if hint else "")


class LocalPath(click.Path):
    """`click.Path` that hands the command an absolute path: relative paths are resolved once,
    here, against the caller's working directory, so nothing downstream (recipes, executors,
    workers started elsewhere) resolves them again. URLs (`s3://`, `https://`) pass unchanged
    where the command reads (`urls=True`) or writes them (`urls="write"`: staged locally and
    uploaded, `lmforge.remote`) and their fsspec filesystem is installed, and are refused by name
    elsewhere: `-o s3://b/out` used to write a local folder named `s3:` and report success.

    `lmforge demo -o demo-out` from /home/me gives the recipe `/home/me/demo-out`; before, the
    recipe's own base folder was joined to the relative path a second time (`demo-out/demo-out/`).
    """

    def __init__(self, *args, urls: bool | str = False, **kwargs):
        super().__init__(*args, **kwargs)
        # fsspec URLs: True where the command reads them, "write" where it writes one (an output);
        # accepted when their filesystem is installed (else refused naming what to install), and
        # refused by name where the command takes none: never made a local folder named `s3:`
        self.urls = urls

    def convert(self, value, param, ctx):
        if value is None:
            return value
        if isinstance(value, str) and "://" in value:
            if self.urls:
                from lmforge.remote import filesystem_problem

                problem = filesystem_problem(value, write=self.urls == "write")
                if problem:
                    self.fail(problem, param, ctx)
                return value
            self.fail(
                f"{value}: this command does not read or write URLs (corpus process/extract/dedup, tokenizer "
                "train, shards build, mix build and train do); use a local or shared-filesystem path, and copy to or "
                "from object storage with its own tool (e.g. aws s3 sync)", param, ctx)
        value = super().convert(value, param, ctx)
        return absolute_path(value)


class RewardSpec(click.ParamType):
    """A reward spec (`gsm8k,format@0.1`, `rm:RUN`, `pkg.mod:fn`) whose `rm:` run paths are made
    absolute here, at the edge, like every other path (a resume from another folder, or a
    worker, must find the same reward model)."""

    name = "reward"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        items = []
        for item in value.split(","):
            head, at, weight = item.strip().partition("@")
            if head.startswith("rm:") and len(head) > 3:
                head = "rm:" + absolute_path(head[3:])
            items.append(head + at + weight)
        return ",".join(items)


class Finite(click.FloatRange):
    """A float flag that must be a finite number, optionally in a range: `--lr nan`, `--lr inf`
    or `--temperature -1` is refused by click naming the flag, before any work starts.

    `Finite(min=0, min_open=True)` is a positive float, `Finite(0, 1)` a share.
    """

    name = "finite float"

    def _describe_range(self) -> str:
        # click writes "[x<=None]" in --help for a range with neither bound
        return "" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def threads_option(f):
    """`--threads N`: torch's CPU threads for this command (per process under torchrun)."""
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="CPU threads per process [torch's default; 1 is best on a busy machine].")(f)


def progress_option(f):
    """`--progress/--no-progress`: the step bar of a training command (the summary table is printed either way)."""
    return click.option("--progress/--no-progress", default=True, show_default=True,
                        help="A progress bar (the summary table is printed either way).")(f)


def tracker_option(f):
    """`--log tensorboard|wandb` (repeatable): mirrors of RUN/metrics.jsonl (lmforge.train.metrics)."""
    from lmforge.train.metrics import TRACKERS, TrackerError, check_trackers

    def installed(ctx, param, value):
        try:
            return check_trackers(value)
        except TrackerError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return click.option("--log", "trackers", multiple=True, type=click.Choice(TRACKERS), callback=installed,
                        help="Also log the metrics to TensorBoard (RUN/tensorboard/) or Weights & Biases (offline "
                             "unless WANDB_MODE says otherwise: RUN/wandb/); repeatable; metrics.jsonl is always written.")(f)


def run_folder_options(more_steps_continue: bool = False):
    """`--resume` and `--overwrite` as every run folder takes them (`lmforge.settings`): the same
    command again resumes anyway; other settings are refused unless --overwrite."""
    more = "; a higher --steps continues a finished run" if more_steps_continue else ""

    def decorate(f):
        f = click.option("--overwrite", is_flag=True, help="Start over: delete the run in -o (its checkpoints, metrics and settings).")(f)
        return click.option("--resume", is_flag=True,
                            help="Only continue: refuse to start a new run if -o holds none. Without it, a rerun of the same "
                                 f"command resumes anyway (after a crash, from the newest checkpoint, exactly){more}.")(f)

    return decorate


def absolute_path(value):
    """An absolute path (same type as given) for a local path; URLs unchanged."""
    text = os.fspath(value)
    if "://" in text:
        return value
    resolved = os.path.abspath(os.path.expanduser(text))
    return type(value)(resolved) if not isinstance(value, str) else resolved


def _available(target: str) -> bool:
    module = target.split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def setup_logging(verbose: int) -> None:
    """Configure logging once, here, for the whole process."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:  # datatrove logs through loguru; keep it quiet unless asked
        from loguru import logger as loguru_logger

        _cache_loguru_lib_dirs()
        loguru_logger.remove()
        loguru_logger.add(sys.stderr, level="DEBUG" if verbose >= 2 else "INFO" if verbose else "WARNING")
    except ImportError:  # pragma: no cover
        pass


def _cache_loguru_lib_dirs() -> None:
    """Compute loguru's list of library folders once per process, not once per sink.

    Every `logger.add` builds an ExceptionFormatter that expands ~290 sysconfig paths (~40 ms);
    datatrove's task loggers add sinks ~8 times in a one-task run, a third of a second of every
    corpus command's start. The list depends only on sysconfig and sys.path, fixed by then.
    """
    try:
        from loguru._better_exceptions import ExceptionFormatter
    except ImportError:  # pragma: no cover - another loguru layout: leave it as it is
        return
    original = ExceptionFormatter.__dict__.get("_get_lib_dirs")
    if isinstance(original, staticmethod) and not hasattr(original.__func__, "cache_info"):
        ExceptionFormatter._get_lib_dirs = staticmethod(functools.cache(original.__func__))


@click.group(cls=LazyGroup, lazy=COMMANDS, summaries=SUMMARIES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error (also LMFORGE_DEBUG=1).")
@click.version_option(package_name="lmforge")
def main(verbose: int, debug: bool) -> None:
    """lmforge: raw web crawl dumps to a small aligned chat model.

    \b
    Stages:
      lmforge corpus process  CC-MAIN-*.warc.gz -o corpus/     # crawl -> clean documents
      lmforge corpus dedup    corpus/ -o dedup/                 # near-duplicate removal
      lmforge tokenizer train dedup/ -o tok/                    # byte-level BPE
      lmforge shards build    dedup/ --tokenizer tok/ -o shards/web
      lmforge mix build       --source web=shards/web:1.0 --budget 1B -o mix.json
      lmforge train           -m mix.json -p tiny --steps 300 -o runs/tiny
      lmforge align sft       --base runs/tiny --data alpaca.json -o runs/sft
      lmforge chat            runs/sft --prompt "Hello"
      lmforge export hf       runs/sft -o hf/sft                # transformers, lm-eval, vLLM
      lmforge pipeline run    recipe.toml -o runs/web           # all of the above from one recipe
      lmforge demo                                              # every stage on a built-in sample
    """
    setup_logging(verbose)


if __name__ == "__main__":  # pragma: no cover
    main()
