"""The trainer and the `train` / `sample` commands, on a tiny model and a tiny real manifest."""

from __future__ import annotations

import json
import shutil
import math

import pytest
import torch
from click.testing import CliRunner
from test_train_data import make_mix

from lmforge.train.cli import sample, train
from lmforge.train.model import preset_config
from lmforge.train.trainer import (
    CHECKPOINTS,
    TrainConfig,
    Trainer,
    TrainingError,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    lr_at,
    save_checkpoint,
)

torch.set_num_threads(1)
FAST = ["--preset", "tiny", "--batch-tokens", "512", "--micro-batch", "2", "--eval-tokens", "256", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    return make_mix(tmp_path_factory.mktemp("mix"))


def run(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)


def test_train_writes_metrics_checkpoints_plot_and_a_table(mix, tmp_path):
    out = tmp_path / "run"
    r = run(train, ["-m", mix, "-o", out, "--steps", 12, "--eval-every", 6, "--checkpoint-every", 5, *FAST])
    assert r.exit_code == 0, r.output
    assert "train loss" in r.output and "bits/byte" in r.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 13))
    for key in ("step", "loss", "lr", "tokens", "tokens_per_s"):
        assert key in rows[0]
    assert rows[-1]["tokens"] == 12 * 512
    evals = [row for row in rows if "val_loss/a" in row]
    assert [row["step"] for row in evals] == [6, 12]
    assert all(0 < row["val_bpb/a"] < 10 and 0 < row["val_bpb/b"] < 10 for row in evals)
    assert rows[-1]["loss"] < rows[0]["loss"]  # it learns
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpts = sorted(p.name for p in (out / CHECKPOINTS).iterdir())
    assert ckpts == ["step_00000010", "step_00000012"]  # newest two kept, no temporary left
    state = json.loads((out / CHECKPOINTS / "step_00000012" / "state.json").read_text())
    assert state["step"] == 12 and state["loader"]["sequences"] == 12 * 4
    assert state["tokenizer_fingerprint"].startswith("sha256:") and state["manifest_sha256"].startswith("sha256:")


def test_sample_generates_from_the_newest_checkpoint(mix, tmp_path):
    out = tmp_path / "run"
    assert run(train, ["-m", mix, "-o", out, "--steps", 3, *FAST]).exit_code == 0
    r = run(sample, [out, "--prompt", "The model", "--max-tokens", 12, "--seed", 1])
    assert r.exit_code == 0 and r.output.startswith("The model") and len(r.output) > len("The model")
    again = run(sample, [out, "--prompt", "The model", "--max-tokens", 12, "--seed", 1])
    assert again.output == r.output  # seeded
    greedy = run(sample, [out, "--prompt", "The", "--max-tokens", 5, "--temperature", 0])
    assert greedy.exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["-m", "nope/mix.json"], "no such manifest"),
        (["--batch-tokens", "500"], "not divisible by context 128"),
        (["--resume"], "no checkpoint to resume from"),
        (["--steps", "0"], "Invalid value for '--steps': 0 is not in the range x>=1"),  # click refuses it
    ],
)
def test_clear_errors_without_traceback(mix, tmp_path, args, message):
    base = ["-m", mix, "-o", tmp_path / "run", "--steps", 2, *FAST]
    r = CliRunner().invoke(train, [str(a) for a in base + args])
    assert r.exit_code != 0
    assert message in r.output and "Traceback" not in r.output


def test_unknown_preset_is_a_usage_error(mix, tmp_path):
    r = CliRunner().invoke(train, ["-m", str(mix), "-o", str(tmp_path / "r"), "--preset", "huge"])
    assert r.exit_code == 2 and "huge" in r.output


def test_existing_run_with_other_settings_is_refused_and_sample_needs_a_checkpoint(mix, tmp_path):
    out = tmp_path / "run"
    assert run(train, ["-m", mix, "-o", out, "--steps", 2, *FAST]).exit_code == 0
    r = CliRunner().invoke(train, [str(a) for a in ["-m", mix, "-o", out, "--steps", 4, *FAST]])
    assert r.exit_code == 1 and "--steps 2 (asked 4)" in r.output and "--overwrite" in r.output
    r = CliRunner().invoke(sample, [str(tmp_path / "empty")])
    assert r.exit_code == 1 and "no checkpoint" in r.output


def test_auto_precision_follows_the_hardware_and_a_resumed_run_keeps_its_own(mix, tmp_path, monkeypatch):
    from lmforge.train import trainer as trainer_mod

    assert trainer_mod.resolve_precision("fp32", "cuda") == "fp32" and trainer_mod.resolve_precision("bf16", "cpu") == "bf16"
    assert trainer_mod.resolve_precision("auto", "cuda") == "bf16"
    monkeypatch.setattr(trainer_mod, "cpu_has_native_bf16", lambda: False)
    assert trainer_mod.resolve_precision("auto", "cpu") == "fp32"
    out = tmp_path / "run"
    r = run(train, ["-m", mix, "-o", out, "--steps", 3, "--checkpoint-every", 2, *FAST])
    assert r.exit_code == 0 and "float32" in r.output
    shutil.rmtree(out / CHECKPOINTS / "step_00000003")  # as if killed after the checkpoint of step 2
    # the same run resumed on a machine with native bf16 stays in float32, so it stays exact
    monkeypatch.setattr(trainer_mod, "cpu_has_native_bf16", lambda: True)
    assert trainer_mod.resolve_precision("auto", "cpu") == "bf16"
    r = run(train, ["-m", mix, "-o", out, "--steps", 3, "--checkpoint-every", 2, *FAST])
    assert r.exit_code == 0 and "float32" in r.output and "resumed at 2" in r.output
    state = json.loads((out / CHECKPOINTS / "step_00000003" / "state.json").read_text())
    assert state["precision"] == "fp32"
    r = run(train, ["-m", mix, "-o", tmp_path / "new", "--steps", 1, *FAST])
    assert r.exit_code == 0 and "bf16 autocast" in r.output


def test_tokenizer_that_does_not_match_the_manifest_is_an_error(mix, tmp_path):
    data = json.loads(mix.read_text())
    data["tokenizer"]["vocab_size"] += 100
    data.pop("content_sha256")  # past the manifest's own checksum (older manifests have none): the vocab check itself
    bad = mix.parent / "bad-vocab.json"
    bad.write_text(json.dumps(data))
    r = CliRunner().invoke(train, [str(a) for a in ["-m", bad, "-o", tmp_path / "r", "--steps", 2, *FAST]])
    assert r.exit_code == 1 and "vocab_size" in r.output and "Traceback" not in r.output


# ---- the library pieces ----------------------------------------------------------------------


def _trainer(tmp_path, **kw) -> Trainer:
    cfg = TrainConfig(manifest="unused", out_dir=str(tmp_path), batch_tokens=512, micro_batch=2, **kw)
    return Trainer(cfg, preset_config("tiny", 300))


def test_step_function_accumulates_and_checkpoints_round_trip(tmp_path):
    tr = _trainer(tmp_path, steps=10)
    assert tr.accum == 2
    tokens = torch.randint(0, 300, (4, 129))
    first = tr.step(tokens)
    for _ in range(3):
        last = tr.step(tokens)
    assert last.loss < first.loss and tr.step_count == 4
    ckpt = save_checkpoint(tmp_path, tr, {"loader": None}, keep=2)
    assert latest_checkpoint(tmp_path) == ckpt
    other = _trainer(tmp_path, steps=10)
    load_checkpoint(ckpt, other)
    assert other.step_count == 4
    for a, b in zip(tr.raw_model.state_dict().values(), other.raw_model.state_dict().values()):
        assert torch.equal(a, b)
    assert tr.step(tokens).loss == other.step(tokens).loss  # exact continuation
    model, state = load_model(tmp_path)
    assert state["step"] == 4 and model.config == tr.raw_model.config


def test_muon_steps_learn_and_resume_exactly(tmp_path):
    from lmforge.train.optim import MuonAdamW, orthogonalize

    g = torch.randn(64, 32)
    s = torch.linalg.svdvals(orthogonalize(g).float())
    assert s.min() > 0.5 and s.max() < 1.3  # Newton–Schulz: singular values pushed towards 1
    tr = _trainer(tmp_path, steps=10, optimizer="muon")
    assert isinstance(tr.optimizer, MuonAdamW)
    tokens = torch.randint(0, 300, (4, 129))
    first = tr.step(tokens)
    for _ in range(3):
        last = tr.step(tokens)
    assert last.loss < first.loss
    ckpt = save_checkpoint(tmp_path, tr, {"loader": None}, keep=2)
    other = _trainer(tmp_path, steps=10, optimizer="muon")
    load_checkpoint(ckpt, other)
    for _ in range(2):
        assert tr.step(tokens).loss == other.step(tokens).loss  # momentum and Adam moments restored
    for a, b in zip(tr.raw_model.state_dict().values(), other.raw_model.state_dict().values()):
        assert torch.equal(a, b)


def test_nan_loss_stops_before_the_update(tmp_path):
    tr = _trainer(tmp_path, steps=10)
    before = [p.detach().clone() for p in tr.raw_model.parameters()]
    with torch.no_grad():
        tr.raw_model.wte.weight[5] = float("nan")
    tokens = torch.full((4, 129), 5)
    with pytest.raises(TrainingError, match="loss is nan at step 1.*last good"):
        tr.step(tokens)
    assert tr.step_count == 0
    after = list(tr.raw_model.parameters())
    assert all(torch.equal(a, b) or torch.isnan(b).any() for a, b in zip(before, after))


def test_learning_rate_schedules():
    cos = TrainConfig(manifest="m", out_dir="o", steps=100, warmup=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, cos) == pytest.approx(0.1) and lr_at(9, cos) == pytest.approx(1.0)
    assert lr_at(99, cos) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(55, cos) == pytest.approx(0.55, abs=0.02)
    wsd = TrainConfig(manifest="m", out_dir="o", steps=100, warmup=10, lr=1.0, schedule="wsd", decay_fraction=0.2)
    assert lr_at(50, wsd) == 1.0 and lr_at(79, wsd) == 1.0
    assert lr_at(90, wsd) == pytest.approx(0.55) and lr_at(100, wsd) == pytest.approx(0.1)
    assert all(math.isfinite(lr_at(s, wsd)) for s in range(100))


def test_config_errors_name_the_fix():
    with pytest.raises(TrainingError, match="choose one of"):
        TrainConfig(manifest="m", out_dir="o", preset="huge")
    cfg = TrainConfig(manifest="m", out_dir="o", batch_tokens=128 * 6, micro_batch=4)
    with pytest.raises(TrainingError, match="use --batch-tokens 512 or 1024"):
        cfg.validate(world_size=1)
    TrainConfig(manifest="m", out_dir="o", batch_tokens=1024, micro_batch=4).validate(world_size=2)


def test_loss_plot_without_matplotlib_is_still_a_png():
    import struct
    import zlib

    from lmforge.train.trainer import _png_plot

    png = _png_plot([[(1, 5.0), (2, 4.0), (3, 3.5)], [(2, 4.2), (3, 3.9)]], width=64, height=32)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (64, 32)
    idat = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    assert len(zlib.decompress(idat)) == 32 * (1 + 64 * 3)


def test_rerun_resumes_or_does_nothing_other_settings_are_refused_by_name_overwrite_starts_over(mix, tmp_path):
    out = tmp_path / "run"
    args = ["-m", mix, "-o", out, "--steps", 3, *FAST]
    assert run(train, args).exit_code == 0
    rows = (out / "metrics.jsonl").read_text()
    weights = (out / CHECKPOINTS / "step_00000003" / "model.safetensors").read_bytes()
    # the same command on a finished run: exit 0, nothing trained, nothing changed
    (out / "loss.png").unlink()  # as if killed after its last checkpoint, before the plot
    same = run(train, [*args, "--micro-batch", 1, "--threads", 2])  # how, not what: may differ
    assert same.exit_code == 0 and "already finished (3 steps); nothing to do" in same.output
    assert (out / "metrics.jsonl").read_text() == rows and (out / "loss.png").is_file()
    # other settings: refused by name, with the recorded and the asked value; --resume changes nothing
    for extra in ([], ["--resume"]):
        other = run(train, [*args, "--lr", "0.002", "--batch-tokens", 1024, *extra])
        assert other.exit_code == 1 and "Traceback" not in other.output
        assert "--lr 0.003 (asked 0.002)" in other.output and "--batch-tokens 512 (asked 1024)" in other.output
        assert "--overwrite" in other.output
    assert (out / "metrics.jsonl").read_text() == rows
    # --overwrite starts over with the new settings
    over = run(train, [*args, "--lr", "0.002", "--overwrite"])
    assert over.exit_code == 0 and "nothing to do" not in over.output
    assert json.loads((out / "settings.json").read_text())["settings"]["--lr"] == 0.002
    assert [json.loads(r)["step"] for r in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert (out / CHECKPOINTS / "step_00000003" / "model.safetensors").read_bytes() != weights


def test_a_run_killed_before_its_first_checkpoint_resumes_with_the_same_command(mix, tmp_path):
    from lmforge.train.trainer import TrainConfig, train as train_fn

    straight = tmp_path / "straight"
    args = ["-m", mix, "--steps", 4, "--checkpoint-every", 2, *FAST]
    assert run(train, [*args, "-o", straight]).exit_code == 0
    cut = tmp_path / "cut"

    def crash(row):
        raise KeyboardInterrupt  # after step 1, before the first checkpoint

    cfg = TrainConfig(manifest=str(mix), out_dir=str(cut), steps=4, checkpoint_every=2, batch_tokens=512, micro_batch=2,
                      eval_tokens=256, threads=1)
    with pytest.raises(KeyboardInterrupt):
        train_fn(cfg, on_step=crash)
    assert (cut / "settings.json").is_file() and not (cut / CHECKPOINTS).exists()
    for extra in (["--resume"], []):  # both forms start it from step 0 again
        r = run(train, [*args, "-o", cut, *extra, "--lr", "0.1"])
        assert r.exit_code == 1 and "--lr 0.003 (asked 0.1)" in r.output  # its settings were recorded at the start
    r = run(train, [*args, "-o", cut, "--resume"])
    assert r.exit_code == 0, r.output
    read = lambda p: [{k: v for k, v in json.loads(x).items() if k != "tokens_per_s"} for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert read(cut) == read(straight)


def test_overwrite_never_deletes_a_run_folder_lmforge_did_not_write(mix, tmp_path):
    home = tmp_path / "home"
    (home / "checkpoints").mkdir(parents=True)
    precious = home / "checkpoints" / "notes.txt"
    precious.write_text("years of work")
    r = run(train, ["-m", mix, "-o", home, "--steps", 1, "--overwrite", *FAST])
    assert r.exit_code == 1 and "not written by lmforge" in r.output and str(home) in r.output
    assert precious.read_text() == "years of work"


def test_reading_the_loss_every_few_steps_writes_the_same_rows(mix, tmp_path):
    """--log-every 4 (the CUDA loop: steps queued without waiting, losses read in batches)
    writes every step's row, each exactly as --log-every 1 does, evaluations included."""
    common = ["-m", mix, "--steps", 10, "--eval-every", 5, "--checkpoint-every", 3, *FAST]
    assert run(train, [*common, "-o", tmp_path / "each"]).exit_code == 0
    r = run(train, [*common, "-o", tmp_path / "batched", "--log-every", 4])
    assert r.exit_code == 0, r.output
    read = lambda p: [{k: v for k, v in json.loads(x).items() if k != "tokens_per_s"} for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert read(tmp_path / "batched") == read(tmp_path / "each")
    assert [row["step"] for row in read(tmp_path / "batched")] == list(range(1, 11))
    a = (tmp_path / "each" / CHECKPOINTS / "step_00000010" / "model.safetensors").read_bytes()
    assert (tmp_path / "batched" / CHECKPOINTS / "step_00000010" / "model.safetensors").read_bytes() == a


def test_a_nonfinite_loss_read_late_stops_before_the_next_checkpoint(mix, tmp_path, monkeypatch):
    """With losses read every few steps the update of a NaN step has happened, but the loss is
    read before any checkpoint, so the newest checkpoint on disk is still a good one."""
    real = Trainer.step_async

    def poisoned(self, tokens):
        if self.step_count == 4:  # step 5's forward sees NaN weights
            with torch.no_grad():
                self.raw_model.wte.weight.fill_(float("nan"))
        return real(self, tokens)

    monkeypatch.setattr(Trainer, "step_async", poisoned)
    out = tmp_path / "run"
    r = run(train, ["-m", mix, "-o", out, "--steps", 8, "--checkpoint-every", 4, "--log-every", 3, *FAST])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "loss is nan at step 5" in r.output and "no checkpoint was written after it" in r.output
    assert sorted(p.name for p in (out / CHECKPOINTS).iterdir()) == ["step_00000004"]
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_preset_micro_batch_shrinks_to_split_the_global_batch_over_processes():
    """`torchrun --nproc_per_node 2 ... -p tiny` (the README's example): the preset's micro-batch
    is a default, so it becomes the largest that splits the global batch; one asked for is kept
    and refused with the fix when it cannot."""
    from lmforge.train.trainer import TrainConfig, TrainingError

    cfg = TrainConfig(manifest="m.json", out_dir="run", preset="tiny", steps=1)
    cfg.validate(2)
    assert cfg.batch_tokens % (cfg.context * cfg.micro_batch * 2) == 0
    assert cfg.micro_batch == cfg.batch_tokens // (cfg.context * 2)
    asked = TrainConfig(manifest="m.json", out_dir="run", preset="tiny", steps=1, micro_batch=cfg.micro_batch * 2)
    with pytest.raises(TrainingError, match="or a smaller --micro-batch"):
        asked.validate(2)


def test_log_tensorboard_mirrors_the_run_and_a_resume_may_change_trackers(mix, tmp_path):
    """`--log tensorboard` writes RUN/tensorboard/ beside metrics.jsonl; trackers are not a
    setting of the run, so the rerun without them continues it."""
    pytest.importorskip("tensorboard", reason="the track extra's tensorboard is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert run(train, ["-m", mix, "-o", out, "--steps", 2, *FAST, "--log", "tensorboard"]).exit_code == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert "loss" in events.Tags()["scalars"] and [e.step for e in events.Scalars("loss")] == [1, 2]
    r = run(train, ["-m", mix, "-o", out, "--steps", 2, *FAST])
    assert r.exit_code == 0 and "(asked" not in r.output


# ---- --init-from: start pretraining from an lmforge run or a HF Llama-family folder -------------
NO_PRESET = FAST[2:]  # the shape comes from the source


def test_init_from_a_run_starts_from_its_weights_with_a_fresh_optimizer(mix, tmp_path):
    from lmforge.train.trainer import init_source, load_training_manifest

    src = tmp_path / "src"
    assert run(train, ["-m", mix, "-o", src, "--steps", 3, *FAST]).exit_code == 0
    cfg = TrainConfig(manifest=str(mix), out_dir=str(tmp_path / "x"), init_from=str(src), batch_tokens=512, micro_batch=2)
    assert cfg.preset is None and cfg.context == 128  # tiny's shape and context, from the source
    model, _ = init_source(cfg.init_from, load_training_manifest(str(mix)))
    tr = Trainer(cfg, model.config, weights=model.state_dict())
    reference, _ = load_model(src)
    tokens = torch.randint(0, 300, (4, cfg.context + 1))
    with torch.no_grad():
        assert torch.equal(tr.raw_model(tokens[:, :-1])[0], reference(tokens[:, :-1])[0])  # identical logits
        _, want = reference(tokens[:, :-1], tokens[:, 1:])
    assert tr.step_count == 0 and not tr.optimizer.state  # step 0, no AdamW moments
    assert tr.step(tokens).loss == pytest.approx(want.item(), abs=1e-6)  # identical initial loss

    out = tmp_path / "more"
    r = run(train, ["-m", mix, "-o", out, "--init-from", src, "--steps", 2, *NO_PRESET])
    assert r.exit_code == 0, r.output
    assert "started from" in r.output
    state = json.loads((latest_checkpoint(out) / "state.json").read_text())
    assert state["step"] == 2 and state["train_config"]["init_from"] == str(src)
    r = run(train, ["-m", mix, "-o", out, "--init-from", src, "--steps", 2, *NO_PRESET])  # finished: nothing to do
    assert r.exit_code == 0 and "already finished" in r.output
    r = CliRunner().invoke(train, [str(a) for a in ["-m", mix, "-o", tmp_path / "c", "--init-from", src, "--steps", 1, "-p", "d6", *NO_PRESET]])
    assert r.exit_code == 1 and "--preset d6 conflicts with the model of --init-from" in r.output and "n_embd 384 (source: 128)" in r.output
    assert "Traceback" not in r.output
    assert run(train, ["-m", mix, "-o", tmp_path / "d", "--init-from", src, "--steps", 1, "-p", "tiny", *NO_PRESET]).exit_code == 0


def test_init_from_a_llama_folder_saved_by_transformers(mix, tmp_path):
    pytest.importorskip("transformers", reason="the Llama import is checked against transformers' own model")
    from test_export_hf import make_llama_folder
    from transformers import AutoModelForCausalLM

    from lmforge.train.trainer import init_source, load_training_manifest

    folder = make_llama_folder(tmp_path / "llama", mix.parent / "tok")
    manifest = load_training_manifest(str(mix))
    cfg = TrainConfig(manifest=str(mix), out_dir=str(tmp_path / "x"), init_from=str(folder), batch_tokens=512, micro_batch=2)
    assert cfg.context == 64  # max_position_embeddings
    model, _ = init_source(cfg.init_from, manifest)
    tr = Trainer(cfg, model.config, weights=model.state_dict())
    ids = torch.randint(0, manifest.vocab_size, (2, 64))
    with torch.no_grad():
        ref = AutoModelForCausalLM.from_pretrained(folder).eval()(ids).logits
        assert (tr.raw_model(ids)[0][..., : manifest.vocab_size] - ref).abs().max().item() < 1e-4
    r = run(train, ["-m", mix, "-o", tmp_path / "run", "--init-from", folder, "--steps", 2, *NO_PRESET])
    assert r.exit_code == 0, r.output
    assert json.loads((latest_checkpoint(tmp_path / "run") / "state.json").read_text())["model_config"]["mlp"] == "swiglu"

    other = make_llama_folder(tmp_path / "big-vocab", mix.parent / "tok", vocab_size=manifest.vocab_size + 8)
    r = CliRunner().invoke(train, [str(a) for a in ["-m", mix, "-o", tmp_path / "r2", "--init-from", other, "--steps", 1, *NO_PRESET]])
    assert r.exit_code == 1 and f"its vocabulary has {manifest.vocab_size + 8} ids but the manifest's tokenizer {manifest.vocab_size}" in r.output
    assert "Traceback" not in r.output
