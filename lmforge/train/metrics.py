"""One metrics writer for every training stage (train, align sft / rm / dpo / rl).

`RUN/metrics.jsonl` is the source of truth: one JSON row per logged step, flushed as written,
cut back to the checkpoint's step when a run resumes (`truncate_metrics`), so a resumed run's
file equals an uninterrupted one's. `--log tensorboard` and `--log wandb` mirror every numeric
value of each row to TensorBoard (`RUN/tensorboard/`, events after the resumed step purged) or
Weights & Biases (offline unless `WANDB_MODE` says otherwise: `RUN/wandb/`, one run id per
folder kept in `RUN/wandb-id`, so a resume continues the same W&B run; `wandb sync RUN/wandb`
uploads it later). The trackers are mirrors: nothing reads them back, and a run resumes with
other trackers or none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

METRICS = "metrics.jsonl"
TRACKERS = ("tensorboard", "wandb")


class TrackerError(RuntimeError):
    """A tracker asked for is not installed (the message names the package)."""


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics file; a line cut by kill -9 is skipped."""
    rows = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by kill -9
                continue
    return rows


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only the rows up to `step` (a resumed run rewrites what came after)."""
    path = Path(path)
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def check_trackers(trackers) -> tuple[str, ...]:
    """`trackers` as a tuple of known names; an unknown one or a missing package is a
    `TrackerError` naming the fix, raised before any training starts."""
    names = tuple(dict.fromkeys(trackers or ()))
    for name in names:
        if name not in TRACKERS:
            raise TrackerError(f"--log {name}: choose from {', '.join(TRACKERS)}")
        module = "tensorboard" if name == "tensorboard" else "wandb"
        import importlib.util

        if importlib.util.find_spec(module) is None:
            raise TrackerError(f"--log {name} needs the {module} package: pip install 'lmforge[track]' (or pip install {module})")
    return names


class MetricsLog:
    """RUN/metrics.jsonl from `step` on (rows after it dropped), plus the trackers asked for.

    >>> log = MetricsLog(run_dir, step=0, trackers=("tensorboard",))   # doctest: +SKIP
    >>> log.write({"step": 1, "loss": 5.2, "lr": 3e-4}); log.close()   # doctest: +SKIP
    """

    def __init__(self, run_dir: Path, step: int, trackers=(), config: dict | None = None):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / METRICS
        truncate_metrics(self.path, step)
        self.file = open(self.path, "a")
        self._trackers = [_open_tracker(name, run_dir, step, config or {}) for name in check_trackers(trackers)]

    def write(self, row: dict) -> None:
        self.write_rows([row])

    def write_rows(self, rows: list[dict]) -> None:
        if not rows:
            return
        self.file.write("".join(json.dumps(row) + "\n" for row in rows))
        self.file.flush()
        for tracker in self._trackers:
            for row in rows:
                tracker.log(row)

    def rows(self) -> list[dict]:
        return read_metrics(self.path)

    def close(self) -> None:
        self.file.close()
        for tracker in self._trackers:
            tracker.close()
        self._trackers = []

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _scalars(row: dict) -> dict[str, float]:
    """The numeric values of a row (bools and nested values left out), `step` excluded."""
    return {k: float(v) for k, v in row.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


class _TensorBoard:
    def __init__(self, run_dir: Path, step: int):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run drops the events the interrupted one wrote after its checkpoint
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=step + 1 if step else None)

    def log(self, row: dict) -> None:
        step = int(row.get("step", 0))
        for key, value in _scalars(row).items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class _WandB:
    def __init__(self, run_dir: Path, config: dict):
        import uuid

        import wandb

        id_file = run_dir / "wandb-id"
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "lmforge"), name=run_dir.name, id=run_id,
                              resume="allow", dir=str(run_dir), mode=os.environ.get("WANDB_MODE", "offline"),
                              config=config)

    def log(self, row: dict) -> None:
        self.run.log(_scalars(row), step=int(row.get("step", 0)))

    def close(self) -> None:
        self.run.finish()


def _open_tracker(name: str, run_dir: Path, step: int, config: dict):
    return _TensorBoard(run_dir, step) if name == "tensorboard" else _WandB(run_dir, config)
