"""One writer per output: the advisory lock, its release on kill -9, stale tmp cleanup, and the
case the lock exists for (two `align sft` into one folder)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmforge.corpus.dedup_cli import dedup
from lmforge.locks import LOCK_NAME, OutputLocked, hold, lock_path, locks_output, output_lock, remove_stale_tmp

torch = pytest.importorskip("torch")
from test_sft import FAST, base  # noqa: E402,F401  (test_sft's tiny base run: tokenizer + 2-layer GPT)

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO))

_HOLDER = """
import sys, time
from lmforge.locks import output_lock
with output_lock(sys.argv[1], "lmforge helper --holding", file=sys.argv[2] == "file"):
    print("ready", flush=True)
    time.sleep(120)
"""


def _hold_in_other_process(path: Path, file: bool = False) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), "file" if file else "dir"], env=ENV,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _docs(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i} with a few more words in it"}) + "\n"
                            for i in range(5)))
    return path


def test_a_second_writer_is_refused_naming_the_holder_and_proceeds_after_kill_9(tmp_path):
    src, out = _docs(tmp_path / "in.jsonl"), tmp_path / "out"
    holder = _hold_in_other_process(out)
    try:
        r = CliRunner().invoke(dedup, [str(src), "-o", str(out)])
        assert r.exit_code == 1
        line = r.output.strip()
        assert "\n" not in line and "Traceback" not in line
        assert str(out) in line and f"pid {holder.pid}: lmforge helper --holding" in line
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # the refused run wrote nothing
        with pytest.raises(OutputLocked, match=f"pid {holder.pid}"):
            with output_lock(out):
                pass
    finally:
        _kill9(holder)
    # the kernel released the lock of the killed holder; its lock file is reused, then removed
    assert (out / LOCK_NAME).exists()
    r = CliRunner().invoke(dedup, [str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "stats.json").exists() and not (out / LOCK_NAME).exists()


#: every command that writes an output, with arguments click accepts (the lock is taken before
#: the command reads any of them): `{x}` is an existing file, OUT the locked output
COMMANDS = [
    ["corpus", "process", "{x}", "-o", "OUT"],
    ["corpus", "extract", "{x}", "-o", "OUT"],
    ["corpus", "dedup", "{x}", "-o", "OUT"],
    ["tokenizer", "train", "{x}", "-o", "OUT"],
    ["shards", "build", "{x}", "--tokenizer", "{x}", "-o", "OUT"],
    ["train", "-m", "{x}", "-o", "OUT"],
    ["align", "sft", "--base", "{x}", "--data", "{x}", "-o", "OUT"],
    ["align", "rm", "--base", "{x}", "--data", "{x}", "-o", "OUT"],
    ["align", "dpo", "--policy", "{x}", "--data", "{x}", "-o", "OUT"],
    ["align", "rl", "--policy", "{x}", "--prompts", "{x}", "-o", "OUT"],
    ["pipeline", "run", str(REPO / "recipes" / "tiny-shared-data.toml"), "-o", "OUT"],
    ["demo", "-o", "OUT"],
    ["export", "hf", "{x}", "-o", "OUT"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_writing_command_is_refused_while_its_output_is_locked(tmp_path, argv):
    from lmforge.cli import main

    x = _docs(tmp_path / "x.jsonl")
    out = tmp_path / "out"
    (out / "keep.txt").parent.mkdir()
    (out / "keep.txt").write_text("earlier output")
    holder = _hold_in_other_process(out)
    try:
        args = [str(out) if a == "OUT" else a.replace("{x}", str(x)) for a in argv]
        r = CliRunner().invoke(main, args)
    finally:
        _kill9(holder)
    assert r.exit_code == 1, r.output
    assert f"{out}: another lmforge command is writing to this folder (pid {holder.pid}: lmforge helper --holding)" in r.output
    assert "Traceback" not in r.output
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "keep.txt"]


def test_a_file_output_is_locked_beside_it(tmp_path):
    manifest = tmp_path / "mix.json"
    holder = _hold_in_other_process(manifest, file=True)
    try:
        assert lock_path(manifest, file=True) == tmp_path / "mix.json.lock"
        from lmforge.tokenize.shards_cli import mix_build

        r = CliRunner().invoke(mix_build, ["--source", f"web={tmp_path}", "--budget", "1000", "-o", str(manifest)])
        assert r.exit_code == 1 and f"{manifest}: another lmforge command is writing to this file (pid {holder.pid}" in r.output
        assert not manifest.exists()
    finally:
        _kill9(holder)


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    out = tmp_path / "run"
    with output_lock(out) as path:
        with output_lock(out):  # the pipeline runner inside `pipeline run`, a stage inside the demo
            assert path.exists()
        assert path.exists()
        assert path.read_text().split()[0] == str(os.getpid())
    assert not out.exists()  # created for the lock only, and nothing was written: gone again
    with hold(out, RuntimeError):
        (out / "x").parent.mkdir(parents=True, exist_ok=True)
        (out / "x").write_text("kept")
    assert sorted(p.name for p in out.iterdir()) == ["x"]


def test_workers_of_a_command_do_not_take_the_lock(tmp_path, monkeypatch):
    out = tmp_path / "run"
    calls = []

    @locks_output("out_dir")
    def command(out_dir):
        calls.append(lock_path(out_dir).exists())

    holder = _hold_in_other_process(out)
    try:
        monkeypatch.setenv("RANK", "1")  # a torchrun rank other than 0: rank 0 holds the lock
        command(out_dir=str(out))
        monkeypatch.setenv("RANK", "0")
        import click

        with pytest.raises(click.ClickException, match=f"pid {holder.pid}"):
            command(out_dir=str(out))
    finally:
        _kill9(holder)
    assert calls == [True]


def test_stale_tmp_files_of_a_dead_writer_are_removed_by_the_next_holder(tmp_path):
    out = tmp_path / "corpus"
    stale = [out / "documents" / "00000.jsonl.zst.tmp", out / ".lmforge" / "dedup" / "sigs" / "000001.npy.tmp",
             out / "metrics.tmp", out / "checkpoints" / ".tmp-step_00000005-4242" / "model.safetensors"]
    keep = [out / "documents" / "00001.jsonl.zst", out / "stats.json", out / "notes.tmp.txt"]
    for p in stale + keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    with output_lock(out):
        pass
    assert not any(p.exists() for p in stale) and not (out / "checkpoints" / ".tmp-step_00000005-4242").exists()
    assert all(p.exists() for p in keep)
    # an output nested in this one that a live command holds keeps its temporary files
    inner = out / "train"
    live_tmp = [inner / "metrics.tmp", out / "mix.json.tmp"]
    holders = [_hold_in_other_process(inner), _hold_in_other_process(out / "mix.json", file=True)]
    for p in live_tmp:  # being written by those two
        p.write_bytes(b"x")
    try:
        with output_lock(out):
            pass
    finally:
        for h in holders:
            _kill9(h)
    assert all(p.exists() for p in live_tmp)
    with output_lock(out):  # their writers are dead now
        pass
    assert not any(p.exists() for p in live_tmp)
    # a file output: only its own temporary file
    (tmp_path / "mix.json.tmp").write_text("{")
    (tmp_path / "other.tmp").write_text("{")
    assert remove_stale_tmp(tmp_path / "mix.json", file=True) == [tmp_path / "mix.json.tmp"]
    assert (tmp_path / "other.tmp").exists()


def test_two_sft_runs_into_one_folder_the_second_is_refused_and_the_first_finishes_intact(base, tmp_path):
    """Before the lock: in 2 of 5 trials the survivor exited 0 with 5 of 30 metrics rows."""
    from lmforge.alignment.sft_cli import sft as sft_cmd

    out = tmp_path / "sft"
    args = [str(a) for a in ["--base", base.run, "--data", base.data, "-o", out, "--steps", 60, "--eval-every", 20,
                             "--checkpoint-every", 20, *FAST]]
    first = subprocess.Popen([sys.executable, "-m", "lmforge.cli", "align", "sft", *args], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not _held_by(out, first.pid):
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    second = CliRunner().invoke(sft_cmd, args)
    assert second.exit_code == 1
    assert f"{out}: another lmforge command is writing to this folder (pid {first.pid}: lmforge align sft" in second.output
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 61))
    assert not (out / LOCK_NAME).exists()


def _held_by(out: Path, pid: int) -> bool:
    try:
        return (out / LOCK_NAME).read_text().split()[0] == str(pid)
    except (OSError, IndexError):
        return False


def test_a_pipeline_stage_whose_folder_another_command_writes_is_refused_by_name(tmp_path):
    from lmforge.cli import main

    recipe = REPO / "recipes" / "tiny-shared-data.toml"
    from lmforge.pipelines.recipe import load_recipe, missing_inputs

    if missing_inputs(load_recipe(recipe, output=str(tmp_path / "run"))):
        pytest.skip("the shipped recipe's shared data is absent")
    out = tmp_path / "run"
    holder = _hold_in_other_process(out / "corpus")  # e.g. `lmforge corpus process ... -o run/corpus` by hand
    try:
        r = CliRunner().invoke(main, ["pipeline", "run", str(recipe), "-o", str(out), "--until", "corpus", "--no-progress"])
    finally:
        _kill9(holder)
    assert r.exit_code == 1
    assert f"[corpus] {out / 'corpus'}: another lmforge command is writing to this folder (pid {holder.pid}" in r.output
    assert json.loads((out / "pipeline.json").read_text())["stages"]["corpus"]["status"] == "failed"
