"""Exact resume after kill -9, and torchrun data parallelism (gloo, 2 processes), on CPU.

Only what must be another process is one: the run that is killed and the torchrun workers.
The uninterrupted references and the resumes run in this process through click (the same
command line; each subprocess would spend ~4 s of CPU importing torch), so a resume that
matches its reference bit for bit also shows that a run continued in another process than
the one that started it computes the same weights."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_train_data import make_mix

from lmforge.train.cli import train
from lmforge.train.trainer import CHECKPOINTS, MODEL_FILE, checkpoint_dirs

ARGS = ["--preset", "tiny", "--batch-tokens", "512", "--micro-batch", "2", "--eval-tokens", "256", "--eval-every", "25",
        "--checkpoint-every", "10", "--threads", "1", "--seed", "3"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    return make_mix(tmp_path_factory.mktemp("mix"))


def train_args(mix: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["-m", str(mix), "-o", str(out), "--steps", str(steps), *ARGS, *extra]


def train_cmd(mix: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lmforge.train.cli", "train", *train_args(mix, out, steps, *extra)]


def train_here(mix: Path, out: Path, steps: int, *extra: str):
    """`lmforge train ARGS` in this process (click's runner); the result has exit_code and output."""
    return CliRunner().invoke(train, train_args(mix, out, steps, *extra), catch_exceptions=False)


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def comparable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "tokens_per_s"}


def final_weights(run: Path) -> bytes:
    return (checkpoint_dirs(run)[-1] / MODEL_FILE).read_bytes()


STEPS = 40  # room to be killed after the first checkpoint (step 10), an evaluation (step 25) after it


@pytest.fixture(scope="module")
def straight(mix, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    done = train_here(mix, out, STEPS)
    assert done.exit_code == 0, done.output[-3000:]
    return out


@pytest.fixture(scope="module")
def one(mix, tmp_path_factory):
    """The one-process run the torchrun tests compare with: 6 steps, a checkpoint every 3."""
    out = tmp_path_factory.mktemp("one") / "run"
    done = train_here(mix, out, 6, "--checkpoint-every", "3")
    assert done.exit_code == 0, done.output[-3000:]
    return out


@pytest.mark.parametrize("where", ["between checkpoints", "before the first checkpoint"])
def test_kill_9_then_the_same_command_is_bit_for_bit_the_uninterrupted_run(mix, straight, tmp_path, where):
    """kill -9 at any moment, then the very same command line (no --resume): exit 0 and exactly
    the uninterrupted run's metrics and weights; once more: a finished run, nothing to do."""
    extra = ["--checkpoint-every", "0"] if where == "before the first checkpoint" else []  # only the final checkpoint
    killed = tmp_path / "killed"
    cmd = train_cmd(mix, killed, STEPS, *extra)
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    started = (lambda: (killed / "metrics.jsonl").is_file() and (killed / "metrics.jsonl").stat().st_size > 0) if extra \
        else (lambda: bool(checkpoint_dirs(killed)))
    while not started() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.05)  # land somewhere after that, mid-step or mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; raise `STEPS`"
    if extra:
        assert not checkpoint_dirs(killed) and (killed / "settings.json").is_file()
    else:
        assert int(checkpoint_dirs(killed)[-1].name.split("_")[1]) < STEPS

    done = train_here(mix, killed, STEPS, *extra)  # the same command line
    assert done.exit_code == 0, done.output[-3000:]
    a, b = rows(straight), rows(killed)
    assert [r["step"] for r in b] == list(range(1, STEPS + 1))  # cut back to the checkpoint, then continued
    assert [comparable(r) for r in a] == [comparable(r) for r in b]  # losses, lr, val: exactly equal
    assert final_weights(straight) == final_weights(killed)
    again = train_here(mix, killed, STEPS, *extra)
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output[-3000:]
    assert [comparable(r) for r in rows(killed)] == [comparable(r) for r in a]


@pytest.mark.skipif(shutil.which("lmforge", path=str(Path(sys.executable).parent)) is None, reason="lmforge console script not installed")
def test_torchrun_two_processes_match_one(mix, one, tmp_path):
    steps = 6
    two = tmp_path / "two"
    lmforge = shutil.which("lmforge", path=str(Path(sys.executable).parent))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python", lmforge,
           "train", "-m", str(mix), "-o", str(two), "--steps", str(steps), *ARGS, "--checkpoint-every", "3"]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = rows(one), rows(two)
    assert [r["step"] for r in b] == list(range(1, steps + 1))  # only rank 0 wrote
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=0.02)
        assert rb["tokens"] == ra["tokens"]
    assert abs(b[-1]["loss"] - a[-1]["loss"]) / a[-1]["loss"] < 1e-3  # same batches: float-rounding apart
    state = json.loads((checkpoint_dirs(two)[-1] / "state.json").read_text())
    assert state["world_size"] == 2 and state["loader"] == json.loads((checkpoint_dirs(one)[-1] / "state.json").read_text())["loader"]
    assert (two / CHECKPOINTS).is_dir()


@pytest.mark.skipif(shutil.which("lmforge", path=str(Path(sys.executable).parent)) is None, reason="lmforge console script not installed")
def test_torchrun_fsdp_matches_one_process_and_resumes_exactly(mix, one, tmp_path):
    """--fsdp (FSDP2, weights and AdamW state sharded over 2 gloo processes): the losses of one
    process, a checkpoint gathered whole, and an exact resume from it."""
    steps = 6
    two = tmp_path / "two"
    lmforge = shutil.which("lmforge", path=str(Path(sys.executable).parent))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python", lmforge,
           "train", "-m", str(mix), "-o", str(two), "--steps", str(steps), *ARGS, "--checkpoint-every", "3"]
    done = subprocess.run([*cmd, "--fsdp"], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = rows(one), rows(two)
    assert [r["step"] for r in b] == list(range(1, steps + 1))
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-3)
    final = checkpoint_dirs(two)[-1]
    weights = (final / "model.safetensors").read_bytes()
    shutil.rmtree(final)  # as if killed before the last checkpoint
    refused = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)  # without --fsdp
    assert refused.returncode != 0 and "was written with --fsdp; resume it the same way" in refused.stderr
    again = subprocess.run([*cmd, "--fsdp"], env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (checkpoint_dirs(two)[-1] / "model.safetensors").read_bytes() == weights
