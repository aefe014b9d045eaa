"""lmforge.settings: the one rule every output keeps (same settings resume, others are refused by
name, --overwrite deletes only what lmforge wrote). The stages' own tests run it end to end."""

from __future__ import annotations

import json

import pytest

from lmforge.settings import (
    SETTINGS_FILE,
    changed_settings,
    clear_output,
    settings_refusal,
    start_run_folder,
)


class Refused(Exception):
    pass


def test_each_differing_setting_is_named_with_its_recorded_and_asked_value():
    old = {"--lr": 0.003, "--batch-tokens": 4096, "--data": ["sha256:" + "a" * 64], "--seed": 0}
    new = {"--lr": 0.002, "--batch-tokens": 8192, "--data": ["sha256:" + "b" * 64], "--seed": 0}
    changes = changed_settings(old, new)
    assert [name for name, _, _ in changes] == ["--lr", "--batch-tokens", "--data"]
    text = settings_refusal("runs/tiny", changes)
    assert text.startswith("runs/tiny was made with other settings: --lr 0.003 (asked 0.002), --batch-tokens 4096 (asked 8192), "
                           "--data [sha256:aaaaaaaaaaaa…] (asked [sha256:bbbbbbbbbbbb…]); ")
    assert text.endswith("rerun with the same settings to resume, or pass --overwrite to start over")
    assert changed_settings({"--steps": 3}, {"--steps": 3, "--new": 1}, only_common=True) == []
    assert changed_settings({"--shape": (1, 2)}, {"--shape": [1, 2]}) == []  # as read back from JSON


def test_a_run_folder_records_its_settings_then_resumes_refuses_or_starts_over(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Refused, match="--resume: .* has no checkpoint to resume from"):
        start_run_folder(run, "train", {"--lr": 1}, error=Refused, resume=True)
    assert start_run_folder(run, "train", {"--lr": 1}, error=Refused) is False  # a new run, recorded before its first step
    assert json.loads((run / SETTINGS_FILE).read_text())["settings"] == {"--lr": 1}
    assert start_run_folder(run, "train", {"--lr": 1}, error=Refused, resume=True) is True  # killed before a checkpoint: resumes
    with pytest.raises(Refused, match=r"--lr 1 \(asked 2\)"):
        start_run_folder(run, "train", {"--lr": 2}, error=Refused)
    with pytest.raises(Refused, match="holds an lmforge train run, not a sft run"):
        start_run_folder(run, "sft", {"--lr": 1}, error=Refused)
    (run / "metrics.jsonl").write_text("{}\n")
    assert start_run_folder(run, "train", {"--lr": 2}, error=Refused, overwrite=True) is False
    assert not (run / "metrics.jsonl").exists() and json.loads((run / SETTINGS_FILE).read_text())["settings"] == {"--lr": 2}
    (run / SETTINGS_FILE).write_text("{cut")
    with pytest.raises(Refused, match="unreadable"):
        start_run_folder(run, "train", {"--lr": 2}, error=Refused)


def test_overwrite_deletes_only_what_lmforge_wrote(tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_text("keep")
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(Refused, match="not written by lmforge"):
        clear_output(tmp_path, ["metrics.jsonl"], lmforge_made=False, error=Refused)
    assert (tmp_path / "metrics.jsonl").exists()
    clear_output(tmp_path, ["metrics.jsonl", "checkpoints"], lmforge_made=True, error=Refused)
    assert not (tmp_path / "metrics.jsonl").exists() and mine.read_text() == "keep"
