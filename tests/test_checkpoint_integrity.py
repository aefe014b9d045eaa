"""Checkpoint integrity: state.json records the sha256 of every file of its checkpoint (and of
itself); a flipped byte, a cut or a deleted file is one clear error naming it when a model is
loaded (sample, chat, align --base), and a resume falls back to the newest good checkpoint,
says so, and still ends bit for bit where the uninterrupted run ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner
from test_sft import _conversations
from test_train_data import make_mix

from lmforge.cli import main
from lmforge.train.model import GPT, preset_config
from lmforge.train.trainer import (
    FILES_KEY,
    MODEL_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
    STATE_SHA256_KEY,
    CheckpointError,
    checkpoint_dirs,
    load_model,
    newest_good_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)

torch.set_num_threads(1)


def run_cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    out = result.output + (getattr(result, "stderr", "") or "")
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result, out


def flip(path, pos=None):
    data = bytearray(path.read_bytes())
    pos = len(data) // 2 if pos is None else pos
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_state(path):
    state = json.loads(path.read_text())
    state["step"] += 1  # a hand edit that still parses
    path.write_text(json.dumps(state, indent=1))


DAMAGE = {
    "flip-model": (MODEL_FILE, flip),
    "truncate-model": (MODEL_FILE, truncate),
    "delete-model": (MODEL_FILE, os.remove),
    "flip-optimizer": (OPTIMIZER_FILE, flip),
    "truncate-optimizer": (OPTIMIZER_FILE, truncate),
    "delete-optimizer": (OPTIMIZER_FILE, os.remove),
    "edit-state": (STATE_FILE, edit_state),
    "garbage-state": (STATE_FILE, lambda p: p.write_bytes(b"\x00not json")),
    "delete-state": (STATE_FILE, os.remove),
}
MODEL_DAMAGE = [k for k in DAMAGE if "optimizer" not in k]  # what loading a model for sampling must catch


@pytest.fixture
def base(tmp_path):
    """A run with two checkpoints (steps 5 and 6) of an untrained 2-layer GPT, a tokenizer, chat data."""
    from test_sft import CAPITALS
    from test_chat_format import CHAT_TEXTS

    from lmforge.tokenize import Tokenizer
    from lmforge.tokenize.train import TrainConfig, train_on_texts

    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    texts = CHAT_TEXTS + [f"The capital of {c} is {x}." for c, x in CAPITALS]
    (tok_dir / "tokenizer.json").write_bytes(train_on_texts(texts, TrainConfig(vocab_size=400, min_frequency=1)))
    tok = Tokenizer.load(tok_dir)
    torch.manual_seed(0)
    model = GPT(preset_config("tiny", tok.vocab_size, n_layer=2, n_embd=64, n_head=2, block_size=64))
    run = tmp_path / "run"
    for step in (5, 6):
        fake = SimpleNamespace(step_count=step, raw_model=model, optimizer=model.optimizer(1e-3),
                               cfg=SimpleNamespace(to_dict=lambda: {"preset": "test"}))
        save_checkpoint(run, fake, {"tokenizer_dir": str(tok_dir), "tokenizer_fingerprint": tok.fingerprint}, keep=2)
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in _conversations()))
    return SimpleNamespace(run=run, data=data, root=tmp_path, newest=checkpoint_dirs(run)[-1], older=checkpoint_dirs(run)[0])


def test_state_records_every_file_and_itself(base):
    state = json.loads((base.newest / STATE_FILE).read_text())
    assert set(state[FILES_KEY]) == {MODEL_FILE, OPTIMIZER_FILE}
    assert all(v.startswith("sha256:") and len(v) == 71 for v in state[FILES_KEY].values())
    assert state[STATE_SHA256_KEY].startswith("sha256:")
    assert verify_checkpoint(base.newest)["step"] == 6
    assert newest_good_checkpoint(base.run) == base.newest


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_verify_names_the_damaged_file(base, damage):
    name, how = DAMAGE[damage]
    how(base.newest / name)
    with pytest.raises(CheckpointError) as err:
        verify_checkpoint(base.newest)
    assert str(base.newest) in str(err.value) and name in str(err.value)
    assert newest_good_checkpoint(base.run) == base.older  # resume falls back


@pytest.mark.parametrize("damage", MODEL_DAMAGE)
@pytest.mark.parametrize("command", ["sample", "chat", "sft"])
def test_loading_a_damaged_model_is_one_line_naming_it(base, damage, command):
    name, how = DAMAGE[damage]
    how(base.newest / name)
    args = {
        "sample": ("sample", base.run, "--prompt", "The", "--max-tokens", "3"),
        "chat": ("chat", base.run, "--prompt", "hi", "--max-tokens", "3"),
        "sft": ("align", "sft", "--base", base.run, "--data", base.data, "-o", base.root / "sft", "--steps", "1"),
    }[command]
    result, out = run_cli(*args)
    assert result.exit_code == 1, out
    assert f"{base.newest.name}: {name}" in out, out
    assert f"pass the newest good one, {base.older}" in out, out
    assert not (base.root / "sft" / "checkpoints").exists()


def test_loading_a_damaged_step_folder_names_it(base):
    flip(base.older / MODEL_FILE)
    with pytest.raises(CheckpointError, match="model.safetensors does not match its sha256 in state.json"):
        load_model(base.older)
    load_model(base.newest)  # the other one is fine


def test_old_checkpoints_without_hashes_load_with_a_warning(base, caplog):
    path = base.newest / STATE_FILE
    state = json.loads(path.read_text())
    del state[FILES_KEY], state[STATE_SHA256_KEY]
    path.write_text(json.dumps(state))
    with caplog.at_level("WARNING"):
        load_model(base.newest)
    assert "loaded unchecked" in caplog.text
    truncate(base.newest / MODEL_FILE)  # damaged and unchecked: still one error naming the file
    with pytest.raises(CheckpointError, match="model.safetensors cannot be loaded"):
        load_model(base.newest)


# ---- resume ------------------------------------------------------------------------------------
ARGS = ["--preset", "tiny", "--batch-tokens", "512", "--micro-batch", "2", "--eval-tokens", "256", "--eval-every", "4",
        "--checkpoint-every", "4", "--threads", "1", "--seed", "3", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def train_args(mix, out, *extra):
    return ["train", "-m", str(mix), "-o", str(out), "--steps", "12", *ARGS, *extra]


def train(mix, out, *extra):
    """The resume as a user runs it: its own process, its stderr as the user reads it."""
    return subprocess.run([sys.executable, "-m", "lmforge.cli", *train_args(mix, out, *extra)], env=ENV, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run, trained in this process (a subprocess would spend ~4 s importing torch)."""
    root = tmp_path_factory.mktemp("resume")
    mix = make_mix(root, docs=120, val_tokens=600)
    done = CliRunner().invoke(main, train_args(mix, root / "straight"))
    assert done.exit_code == 0, done.output
    return SimpleNamespace(mix=mix, run=root / "straight")


def rows(run):
    return [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"} for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("damage", ["flip-model", "truncate-optimizer"])  # the rest: test_verify_names_the_damaged_file
def test_resume_falls_back_to_the_newest_good_checkpoint_and_ends_identical(straight, tmp_path, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight.run, run)
    step_8, step_12 = checkpoint_dirs(run)[-2:]
    assert (step_8.name, step_12.name) == ("step_00000008", "step_00000012")
    name, how = DAMAGE[damage]
    how(step_12 / name)
    done = train(straight.mix, run, "--resume")
    assert done.returncode == 0, done.stderr
    assert f"{step_12}: {name}" in done.stderr and "resuming from step_00000008" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert rows(run) == rows(straight.run)
    assert (step_12 / MODEL_FILE).read_bytes() == (straight.run / "checkpoints" / "step_00000012" / MODEL_FILE).read_bytes()
    verify_checkpoint(step_12)  # rewritten whole


def test_resume_with_no_good_checkpoint_left_says_what_to_do(straight, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(straight.run, run)
    for ckpt in checkpoint_dirs(run):
        flip(ckpt / MODEL_FILE)
    done = train(straight.mix, run, "--resume")
    assert done.returncode == 1
    assert "no good checkpoint is left" in done.stderr and "delete that folder" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# ---- the align stages ----------------------------------------------------------------------------
def test_align_resume_and_reward_model_loading_check_hashes(base, tmp_path):
    import shutil

    from lmforge.alignment.reward import AlignmentError, load_reward_model, start_run

    run = tmp_path / "copy"  # a copy: start_run records the run's settings in its folder
    shutil.copytree(base.run, run)
    newest, older = (run / p.relative_to(base.run) for p in (base.newest, base.older))

    def resume():  # as rm, dpo and rl start: a run from before settings.json, nothing to compare
        return start_run(run, "rm", {}, (None, {}, newest), steps=10**6, resume=True)

    flip(newest / OPTIMIZER_FILE)
    assert resume() == older  # rm, dpo and rl resume from the good one
    flip(older / MODEL_FILE)
    with pytest.raises(AlignmentError, match="no good checkpoint is left"):
        resume()
    flip(base.older / MODEL_FILE)
    with pytest.raises(AlignmentError, match=r"step_00000005: model.safetensors does not match its sha256"):
        load_reward_model(base.older)
