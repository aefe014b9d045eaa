"""`lmforge demo` end to end on the built-in sample: every landed stage runs and reports."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lmforge.cli import main


def test_demo_runs_every_stage_and_resumes(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    stages = report["stages"]
    assert list(stages) == ["corpus process", "corpus dedup", "tokenizer train", "shards build", "mix build", "train", "sample"]
    assert stages["corpus process"]["kept"] > 30
    assert stages["corpus dedup"]["near_duplicates_removed"] == 12  # the mirrors the sample plants
    assert stages["mix build"]["budget"] > 0
    first, last = (float(x) for x in stages["train"]["loss"].split(" -> "))
    assert last < first - 1.0  # the loss falls
    assert stages["sample"]["text"].startswith("An exception is")
    for name in ("corpus", "dedup", "tokenizer", "shards", "run"):
        assert (out / name).is_dir()

    again = CliRunner().invoke(main, ["demo", "-o", str(out), "--no-progress"])  # a rerun resumes, not redoes
    assert again.exit_code == 0, again.output
    assert json.loads((out / "report.json").read_text())["stages"]["train"]["note"] == "trained earlier"
