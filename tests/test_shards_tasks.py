"""`shards build --tasks N --executor local`: the input files as datatrove tasks, merged into one
source.json that is byte for byte what the process-pool build writes; a failed task is a
non-zero exit naming it and its log; a rerun resumes; `shards status` reports the run. (The Ray
comparison is in tests/test_ray.py, the real Slurm one in docs/cluster.md.)"""

from __future__ import annotations

import json

from click.testing import CliRunner
from test_shards import inputs, tok_dir, tree_hashes  # noqa: F401 - fixtures

from lmforge.cli import main


def tree(root):
    """Every file of a build that a reader sees (shards and source.json; not the task logs)."""
    return {k: v for k, v in tree_hashes(root).items() if not k.startswith(".lmforge")}


def said(result) -> str:
    """The output with rich's line wrapping (at a temporary path's length) undone."""
    return " ".join(result.output.split())


def build(*args):
    return CliRunner().invoke(main, ["shards", "build", *map(str, args)], catch_exceptions=False)


def test_tasks_write_the_same_shards_and_source_as_a_plain_build(tmp_path, tok_dir, inputs):
    plain = build(inputs, "--tokenizer", tok_dir, "-o", tmp_path / "plain", "--shard-tokens", "1500")
    assert plain.exit_code == 0, plain.output
    one = build(inputs, "--tokenizer", tok_dir, "-o", tmp_path / "one", "--shard-tokens", "1500", "--tasks", "1")
    assert one.exit_code == 0, one.output
    three = build(inputs, "--tokenizer", tok_dir, "-o", tmp_path / "three", "--shard-tokens", "1500", "--tasks", "3", "--workers", "2")
    assert three.exit_code == 0, three.output
    assert "3 local tasks" in said(three) and "total" in said(three)  # the summary table
    # plain and --tasks 1 both ran from one absolute input path here: the same bytes, source.json included
    assert tree(tmp_path / "one") == tree(tmp_path / "plain") == tree(tmp_path / "three")
    assert len(json.loads((tmp_path / "three" / "source.json").read_text())["shards"]) > 3
    assert sorted(p.name for p in (tmp_path / "three" / ".lmforge" / "shards" / "completions").iterdir()) == ["00000", "00001", "00002"]

    status = CliRunner().invoke(main, ["shards", "status", str(tmp_path / "three")])
    assert status.exit_code == 0, status.output
    assert "3/3 tasks done" in status.output and "source.json" in status.output


def test_a_failed_task_names_itself_and_its_log_then_the_rerun_builds_only_it(tmp_path, tok_dir, inputs):
    """Task 1 of 3 cannot write the part record of its file (a folder is in the way): the other
    tasks still run, the exit is 1 naming task 1, its error and its log, no source.json; the
    same command then builds only what task 1 had to."""
    out = tmp_path / "out"
    blocker = out / ".build" / "part-00001.json"
    blocker.mkdir(parents=True)
    args = [inputs, "--tokenizer", tok_dir, "-o", out, "--shard-tokens", "1500", "--tasks", "3"]
    r = CliRunner().invoke(main, ["shards", "build", *map(str, args)])
    assert r.exit_code == 1, r.output
    assert "1 of 3 tasks failed: task 1 failed" in said(r) and "Is a directory" in said(r), r.output
    assert "task_00001.log" in said(r) and "Traceback" not in r.output
    assert not (out / "source.json").exists() and (out / ".build" / "part-00002.json").is_file()  # task 2 ran
    status = CliRunner().invoke(main, ["shards", "status", str(out)])
    assert status.exit_code == 1 and "2/3 tasks done" in said(status) and "task 00001" in said(status)

    before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir() if not p.name.startswith("00001-")}
    blocker.rmdir()
    r = build(*args)
    assert r.exit_code == 0, r.output
    assert "2 of 3 files done by an earlier run" in said(r)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir() if not p.name.startswith("00001-")}
    assert after == before  # the files of tasks 0 and 2 were not built again
    ref = build(inputs, "--tokenizer", tok_dir, "-o", tmp_path / "ref", "--shard-tokens", "1500")
    assert ref.exit_code == 0 and tree(out) == tree(tmp_path / "ref")


def test_a_killed_task_resumes_and_another_task_count_rebuilds_nothing_twice(tmp_path, tok_dir, inputs):
    out = tmp_path / "out"
    assert build(inputs, "--tokenizer", tok_dir, "-o", out, "--shard-tokens", "1500", "--tasks", "3").exit_code == 0
    ref = tree(out)
    # task 2 killed half way: no part record, no completion marker, its last shard half-written
    (out / ".build" / "part-00002.json").unlink()
    (out / ".lmforge" / "shards" / "completions" / "00002").unlink()
    last = sorted((out / "shards").glob("00002-*"))[-1]
    last.rename(last.with_name(last.name + ".tmp"))
    (out / "source.json").unlink()
    r = build(inputs, "--tokenizer", tok_dir, "-o", out, "--shard-tokens", "1500", "--tasks", "2")  # other task count
    assert r.exit_code == 0, r.output
    assert "2 of 3 files done by an earlier run" in said(r) and tree(out) == ref


def test_slurm_without_sbatch_and_url_outputs_are_one_line_errors(tmp_path, tok_dir, inputs, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    r = CliRunner().invoke(main, ["shards", "build", str(inputs), "--tokenizer", str(tok_dir), "-o", str(tmp_path / "o"),
                                  "--executor", "slurm", "--slurm-partition", "cpu", "--tasks", "4"])
    assert r.exit_code == 1 and "needs Slurm's sbatch on PATH" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["shards", "build", str(inputs), "--tokenizer", str(tok_dir), "-o", "memory://bucket/shards",
                                  "--executor", "slurm", "--slurm-partition", "cpu"])
    assert r.exit_code == 2 and "Slurm submission returns before" in r.output
    r = CliRunner().invoke(main, ["shards", "build", str(inputs), "--tokenizer", str(tok_dir), "-o", str(tmp_path / "o"),
                                  "--executor", "slurm"])
    assert r.exit_code == 2 and "--slurm-partition" in r.output


def test_a_task_build_draws_its_files_done_on_a_terminal_and_nothing_with_no_progress(tmp_path, tok_dir, inputs, monkeypatch):
    """The tasks run in processes of their own (or on Ray's workers) and draw nothing here: the
    bar counts the input files done from their part records, up to all of them."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws as on a terminal
    args = [inputs, "--tokenizer", tok_dir, "--shard-tokens", "1500", "--tasks", "2"]
    drawn = build(*args, "-o", tmp_path / "drawn")
    assert drawn.exit_code == 0, drawn.output
    files = len(json.loads((tmp_path / "drawn" / "source.json").read_text())["inputs"])
    assert "shards build" in drawn.output and "files · 2 local tasks" in drawn.output and f"{files}/{files}" in drawn.output
    quiet = build(*args, "-o", tmp_path / "quiet", "--no-progress")
    assert quiet.exit_code == 0 and "files · 2 local tasks" not in quiet.output
