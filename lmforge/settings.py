"""One rule for every output: it records the settings that made it.

A rerun with the same settings resumes (or, when the output is finished, does nothing and says
so); a rerun with other settings is refused, naming each setting with the value the output was
made with and the value asked now; `--overwrite` starts over, but only deletes what lmforge
wrote. Every stage compares through `changed_settings` / `settings_refusal`, so the message reads
the same everywhere:

    runs/tiny was made with other settings: --lr 0.003 (asked 0.002), --batch-tokens 512
    (asked 1024); rerun with the same settings to resume, or pass --overwrite to start over

Run folders (`train`, `align sft/rm/dpo/rl`) keep theirs in `RUN/settings.json`, written before
the first step, so a run killed before its first checkpoint is still recognised. Files and
folders with a record of their own (the tokenizer's `lmforge-tokenizer.json`, a manifest's
content) compare against that. Settings are keyed by the flag a user types (`--lr`), so the
message names what to change. This module imports nothing heavy.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

SETTINGS_FILE = "settings.json"
SETTINGS_FORMAT = "lmforge-settings"
RERUN_FIX = "rerun with the same settings to resume, or pass --overwrite to start over"


def changed_settings(recorded: dict, asked: dict, *, only_common: bool = False) -> list[tuple[str, Any, Any]]:
    """(setting, recorded value, asked value) for each setting that differs, in `asked`'s order.

    `only_common` compares only the settings both sides name (a record from an older lmforge
    that did not record them all).

    >>> changed_settings({"--lr": 0.003, "--seed": 0}, {"--lr": 0.002, "--seed": 0})
    [('--lr', 0.003, 0.002)]
    """
    recorded, asked = _plain(recorded), _plain(asked)
    keys = list(asked) + [k for k in recorded if k not in asked]
    if only_common:
        keys = [k for k in keys if k in recorded and k in asked]
    return [(k, recorded.get(k), asked.get(k)) for k in keys if recorded.get(k) != asked.get(k)]


def settings_refusal(where, changes: list[tuple[str, Any, Any]], fix: str = RERUN_FIX) -> str:
    """`WHERE was made with other settings: --lr 0.003 (asked 0.002), ...; FIX`.

    A setting recorded but left out of this command line reads `--pool mean (now its default)`,
    not `(asked none)`: left out, a setting takes its default."""
    listed = ", ".join(f"{name} {show(old)} ({'now its default' if new is None else 'asked ' + show(new)})"
                       for name, old, new in changes)
    return f"{where} was made with other settings: {listed}; {fix}"


def check_settings(where, recorded: dict, asked: dict, error: type[Exception], *, fix: str = RERUN_FIX,
                   only_common: bool = False) -> None:
    """Raise `error` naming every setting that differs between `recorded` and `asked`."""
    changes = changed_settings(recorded, asked, only_common=only_common)
    if changes:
        raise error(settings_refusal(where, changes, fix))


def show(value) -> str:
    """A setting's value as a message shows it: short, and sha256 digests cut to 12 digits."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if text.startswith("sha256:") and len(text) > 19:
        text = text[:19] + "…"
    return text if len(text) <= 120 else text[:117] + "…"


def _plain(d: dict) -> dict:
    """Tuples as lists, so a record read back from JSON equals the one written."""
    return json.loads(json.dumps(d, default=str))


# ---- run folders: RUN/settings.json -------------------------------------------------------
def read_settings(folder) -> dict | None:
    """The record of `folder/settings.json` ({"format", "stage", "settings"}), or None when there
    is none. An unreadable or foreign one comes back as {"stage": None, "settings": None}, which
    `start_run_folder` refuses (it is written atomically, so lmforge never leaves it half)."""
    path = Path(folder) / SETTINGS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"stage": None, "settings": None}
    if not isinstance(data, dict) or data.get("format") != SETTINGS_FORMAT:
        return {"stage": None, "settings": None}
    return data


def write_settings(folder, stage: str, settings: dict) -> None:
    """Write `folder/settings.json` atomically."""
    from lmforge.documents import write_bytes_atomic

    record = {"format": SETTINGS_FORMAT, "version": 1, "stage": stage, "settings": _plain(settings)}
    write_bytes_atomic(Path(folder) / SETTINGS_FILE, json.dumps(record, indent=1).encode())


#: what a training run writes into its folder; `--overwrite` deletes these and nothing else
RUN_OUTPUTS = ("checkpoints", "metrics.jsonl", "metrics.tmp", "loss.png", ".tmp-loss.png", SETTINGS_FILE)


def clear_output(folder, names: Iterable[str], *, lmforge_made: bool, error: type[Exception], flag: str = "--overwrite") -> None:
    """`--overwrite`: delete `names` inside `folder`, the entries an lmforge run writes there,
    and nothing else. When the folder holds some of them but no sign that lmforge wrote it
    (`lmforge_made` false), refuse rather than delete someone's files."""
    folder = Path(folder)
    present = [folder / n for n in names if (folder / n).exists() or (folder / n).is_symlink()]
    if not present:
        return
    if not lmforge_made:
        raise error(f"{folder} was not written by lmforge (it holds {', '.join(p.name for p in present)} but no record of "
                    f"an lmforge run), and {flag} would delete them; choose another output folder")
    for p in present:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def start_run_folder(folder, stage: str, asked: dict, *, error: type[Exception], resume: bool = False,
                     overwrite: bool = False, legacy: dict | None = None, has_checkpoint: bool = False) -> bool:
    """Check a run folder against the settings asked, before the first step; True when it holds
    this run already (resume from its newest checkpoint, if any), False when it starts fresh.

    - `RUN/settings.json` (or, for a run made before it existed, `legacy`: the settings its
      newest checkpoint recorded, compared where both name a setting) differs from `asked`:
      refused by name, unless `overwrite`, which deletes the run's files and starts over.
    - `resume` with nothing to resume: refused (`--resume` means "continue, never start fresh").
    - Otherwise `asked` is recorded (if it was not already), so a run killed before its first
      checkpoint is recognised by the next one.
    """
    folder = Path(folder)
    record = read_settings(folder)
    made = record is not None or legacy is not None or has_checkpoint
    if overwrite:
        clear_output(folder, RUN_OUTPUTS, lmforge_made=made, error=error)
        record, legacy, has_checkpoint = None, None, False
    if record is not None and record.get("settings") is None:
        raise error(f"{folder / SETTINGS_FILE}: unreadable; pass --overwrite to start the run over, or move it away")
    if record is not None and record.get("stage") != stage:
        raise error(f"{folder} holds an lmforge {record.get('stage')} run, not a {stage} run; "
                    "choose another output folder, or pass --overwrite to start over")
    if record is not None:
        check_settings(folder, record["settings"], asked, error)
    elif legacy is not None:
        check_settings(folder, legacy, asked, error, only_common=True)
    started = record is not None or legacy is not None or has_checkpoint
    if resume and not started:
        raise error(f"--resume: {folder} has no checkpoint to resume from (no run was started there); "
                    "drop --resume to start a new run")
    if record is None:
        folder.mkdir(parents=True, exist_ok=True)
        write_settings(folder, stage, asked)
    return started


def flag(name: str) -> str:
    """A config field's command-line flag: `batch_tokens` -> `--batch-tokens`."""
    return "--" + name.replace("_", "-")


def flags(config: dict, names: Iterable[str], renamed: dict[str, str] | None = None) -> dict:
    """`{flag: value}` for the fields `names` of a config dict, in that order."""
    renamed = renamed or {}
    return {renamed.get(n, flag(n)): config[n] for n in names}


def path_key(path) -> str:
    """A path as a record keeps it: absolute, so a rerun from another directory compares equal."""
    return os.path.abspath(os.fspath(path))
