"""lmforge.train.metrics: the one metrics writer of every training stage, and its trackers."""

from __future__ import annotations

import json

import pytest

from lmforge.train.metrics import MetricsLog, TrackerError, check_trackers, read_metrics


def test_jsonl_is_cut_back_to_the_resumed_step(tmp_path):
    with MetricsLog(tmp_path, 0) as log:
        for step in range(1, 6):
            log.write({"step": step, "loss": 1.0 / step})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "lo')  # a line cut by kill -9
    with MetricsLog(tmp_path, 3) as log:  # resumed from the step-3 checkpoint
        log.write_rows([{"step": 4, "loss": 0.4}, {"step": 5, "loss": 0.3}])
    assert [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "metrics.jsonl")] == [
        (1, 1.0), (2, 0.5), (3, 1.0 / 3), (4, 0.4), (5, 0.3)]


def test_unknown_or_missing_tracker_names_the_fix(monkeypatch):
    with pytest.raises(TrackerError, match="choose from tensorboard, wandb"):
        check_trackers(["mlflow"])
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(TrackerError, match=r"pip install 'lmforge\[track\]'"):
        check_trackers(["wandb"])


def test_tensorboard_mirrors_the_numbers_and_purges_after_a_resume(tmp_path):
    pytest.importorskip("tensorboard", reason="the track extra's tensorboard is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsLog(tmp_path, 0, ["tensorboard"]) as log:
        for step in range(1, 5):
            log.write({"step": step, "loss": 10.0 - step, "note": "text is not mirrored", "ok": True})
    with MetricsLog(tmp_path, 2, ["tensorboard"]) as log:  # resumed at step 2: steps 3, 4 again
        log.write_rows([{"step": 3, "loss": 0.5}, {"step": 4, "loss": 0.25}])
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert events.Tags()["scalars"] == ["loss"]
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 9.0), (2, 8.0), (3, 0.5), (4, 0.25)]


def test_wandb_offline_run_continues_across_a_resume(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the track extra's wandb is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    with MetricsLog(tmp_path, 0, ["wandb"], config={"lr": 0.1}) as log:
        log.write({"step": 1, "loss": 2.0})
    run_id = (tmp_path / "wandb-id").read_text()
    with MetricsLog(tmp_path, 1, ["wandb"]) as log:
        log.write({"step": 2, "loss": 1.0})
    assert (tmp_path / "wandb-id").read_text() == run_id
    runs = sorted(p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert runs and all(name.endswith(run_id) for name in runs)
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["loss"] == 1.0
