"""SFT: batches and masks, the loss against a plain reference loop, exact resume, the CLI, chat."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from test_chat_format import CHAT_TEXTS

from lmforge.alignment.chat import load_chat_model, render, respond
from lmforge.alignment.chat_cli import chat
from lmforge.alignment.sft import ConversationOrder, SFTConfig, SFTError, SFTTrainer, collate, sft
from lmforge.alignment.sft_cli import sft as sft_cmd
from lmforge.train.cli import sample
from lmforge.train.model import GPT, preset_config
from lmforge.train.trainer import CHECKPOINTS, MODEL_FILE, load_model, save_checkpoint

torch.set_num_threads(1)
CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"), ("Egypt", "Cairo"),
            ("Peru", "Lima"), ("Chile", "Santiago"), ("Kenya", "Nairobi"), ("Cuba", "Havana"), ("Nepal", "Kathmandu")]


def _conversations():
    convs = []
    for country, city in CAPITALS:
        convs.append({"messages": [{"role": "user", "content": f"What is the capital of {country}?"},
                                   {"role": "assistant", "content": f"The capital of {country} is {city}."}]})
        convs.append({"messages": [{"role": "system", "content": "Answer briefly."},
                                   {"role": "user", "content": f"Capital of {country}?"},
                                   {"role": "assistant", "content": city}]})
    return convs


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny 'pretrained' run: a real tokenizer and an untrained 2-layer GPT checkpoint, plus data."""
    from lmforge.tokenize.train import TrainConfig, train_on_texts

    root = tmp_path_factory.mktemp("base")
    tok_dir = root / "tok"
    tok_dir.mkdir()
    texts = CHAT_TEXTS + [f"The capital of {c} is {x}." for c, x in CAPITALS]
    (tok_dir / "tokenizer.json").write_bytes(train_on_texts(texts, TrainConfig(vocab_size=400, min_frequency=1)))
    from lmforge.tokenize import Tokenizer

    tok = Tokenizer.load(tok_dir)
    torch.manual_seed(0)
    model = GPT(preset_config("tiny", tok.vocab_size, n_layer=2, n_embd=64, n_head=2, block_size=64))
    fake = SimpleNamespace(step_count=5, raw_model=model, optimizer=model.optimizer(1e-3),
                           cfg=SimpleNamespace(to_dict=lambda: {"preset": "test"}))
    run = root / "run"
    save_checkpoint(run, fake, {"tokenizer_dir": str(tok_dir), "tokenizer_fingerprint": tok.fingerprint}, keep=1)
    data = root / "chats.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in _conversations()))
    return SimpleNamespace(run=run, tok=tok, data=data, root=root)


def invoke(cmd, args, **kw):
    return CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False, **kw)


# ---- batches ----------------------------------------------------------------------------------
def test_collate_pads_and_masks_targets():
    x, y = collate([([0, 4, 9, 5], [0, 0, 1, 1]), ([0, 4, 5], [0, 0, 1])], pad_id=1)
    assert x.tolist() == [[0, 4, 9], [0, 4, 1]]
    assert y.tolist() == [[-1, 9, 5], [-1, 5, -1]]


def test_conversation_order_is_seeded_covers_each_epoch_and_resumes():
    a = ConversationOrder(10, 4, seed=3)
    batches = [a.next() for _ in range(5)]  # 20 = two epochs
    flat = [i for b in batches for i in b]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]  # a new order each epoch
    b = ConversationOrder(10, 4, seed=3)
    b.next(), b.next()
    c = ConversationOrder(10, 4, seed=3)
    c.load_state(b.state())
    assert [c.next() for _ in range(3)] == batches[2:]
    assert ConversationOrder(10, 4, seed=4).next() != batches[0]


# ---- the loss -------------------------------------------------------------------------------
def _reference_loss(model, examples):
    """Mean CE over masked targets, one unpadded conversation at a time, plain F.cross_entropy
    (float32: the tests that compare with it run SFT in float32)."""
    nats, n = 0.0, 0
    for ids, mask in examples:
        logits = model.lm_head(model.hidden(torch.tensor([ids[:-1]])))[0]
        ce = F.cross_entropy(logits.float(), torch.tensor(ids[1:]), reduction="none")
        keep = torch.tensor(mask[1:], dtype=torch.bool)
        nats += ce[keep].sum().item()
        n += int(keep.sum())
    return nats / n


@pytest.mark.parametrize("micro", [4, 2, 1])
def test_step_loss_is_the_mean_over_assistant_tokens_and_accumulation_matches(base, micro):
    model, _ = load_model(base.run)
    convs = [c["messages"] for c in _conversations()]
    examples = [render(c, base.tok) for c in (convs[0], convs[1], convs[5], convs[10])]
    ref = _reference_loss(model, examples)
    cfg = SFTConfig(base=str(base.run), data=[str(base.data)], out_dir="unused", batch_size=4, micro_batch=micro, lr=1e-3, warmup=1, precision="fp32")
    trainer = SFTTrainer(cfg, model, base.tok.pad_id)
    result = trainer.step(examples)
    assert result.loss == pytest.approx(ref, rel=1e-5)
    assert result.targets == sum(sum(m[1:]) for _, m in examples)
    assert trainer.evaluate(examples) < ref  # one step on these very examples lowers their loss


def test_accumulation_gives_the_same_update(base):
    examples = [render(c["messages"], base.tok) for c in _conversations()[:4]]
    weights = []
    for micro in (4, 1):
        model, _ = load_model(base.run)
        cfg = SFTConfig(base=str(base.run), data=[str(base.data)], out_dir="unused", batch_size=4, micro_batch=micro, lr=1e-3, warmup=1, precision="fp32")
        trainer = SFTTrainer(cfg, model, base.tok.pad_id)
        trainer.optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)  # the update is the gradient, not Adam's sign
        trainer.step(examples)
        weights.append(model.state_dict())
    for k in weights[0]:
        torch.testing.assert_close(weights[0][k], weights[1][k], rtol=1e-5, atol=1e-8)


# ---- runs -----------------------------------------------------------------------------------
FAST = ["--batch-size", 4, "--micro-batch", 2, "--lr", 3e-3, "--warmup", 2, "--threads", 1, "--val-fraction", 0.2]


def test_sft_cli_learns_writes_checkpoints_metrics_and_a_table(base, tmp_path):
    out = tmp_path / "sft"
    r = invoke(sft_cmd, ["--base", base.run, "--data", base.data, "-o", out, "--steps", 30, "--eval-every", 10,
                         "--checkpoint-every", 10, *FAST])
    assert r.exit_code == 0, r.output
    assert "train loss (assistant tokens)" in r.output and "16 train, 4 val" in r.output
    assert "30/30" in r.output  # off a terminal the bar prints its last state once
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 31))
    vals = [row["val_loss/heldout"] for row in rows if "val_loss/heldout" in row]
    assert len(vals) == 3 and vals[-1] < vals[0]
    assert sum(r["loss"] for r in rows[-5:]) < sum(r["loss"] for r in rows[:5])  # it learns
    assert sorted(p.name for p in (out / CHECKPOINTS).iterdir()) == ["step_00000020", "step_00000030"]
    state = json.loads((out / CHECKPOINTS / "step_00000030" / "state.json").read_text())
    assert state["stage"] == "sft" and state["loader"] == {"epoch": 7, "offset": 8}  # 30 * 4 = 7 * 16 + 8
    assert state["base_val_loss"] > vals[-1] and state["tokenizer_fingerprint"] == base.tok.fingerprint
    assert state["data"][0]["sha256"].startswith("sha256:")
    # the next stages load it like a pretrained run
    model, _ = load_model(out)
    assert model.config.n_layer == 2
    assert invoke(sample, [out, "--prompt", "The capital", "--max-tokens", 5]).exit_code == 0
    # and it can chain: SFT on top of an SFT run
    r2 = invoke(sft_cmd, ["--base", out, "--data", base.data, "-o", tmp_path / "sft2", "--steps", 1, *FAST, "--no-progress"])
    assert r2.exit_code == 0, r2.output
    assert "1/1" not in r2.output and "train loss (assistant tokens)" in r2.output  # no bar; the summary still


def test_resume_is_exact(base, tmp_path):
    args = ["--base", base.run, "--data", base.data, "--steps", 8, "--eval-every", 4, "--checkpoint-every", 3, *FAST]
    straight = tmp_path / "straight"
    assert invoke(sft_cmd, [*args, "-o", straight]).exit_code == 0
    cut = tmp_path / "cut"

    def crash(row):  # killed after step 5: the newest checkpoint is step 3, metrics run to 5
        if row["step"] == 5:
            raise KeyboardInterrupt

    cfg = dict(base=str(base.run), data=[str(base.data)], out_dir=str(cut), steps=8, eval_every=4, checkpoint_every=3,
               batch_size=4, micro_batch=2, lr=3e-3, warmup=2, val_fraction=0.2)
    with pytest.raises(KeyboardInterrupt):
        sft(SFTConfig(**cfg), on_step=crash)
    assert sorted(p.name for p in (cut / CHECKPOINTS).iterdir()) == ["step_00000003"]
    r = invoke(sft_cmd, [*args, "-o", cut, "--resume"])
    assert r.exit_code == 0 and "resumed at 3" in r.output, r.output
    read = lambda p: [json.loads(x) for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    a, b = read(straight), read(cut)
    assert [x["step"] for x in b] == list(range(1, 9))
    assert [x["loss"] for x in a] == [x["loss"] for x in b]
    assert [x.get("val_loss/heldout") for x in a] == [x.get("val_loss/heldout") for x in b]
    final = f"{CHECKPOINTS}/step_00000008/{MODEL_FILE}"
    assert (straight / final).read_bytes() == (cut / final).read_bytes()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--base", "nope"], "no checkpoint here"),
        (["--resume"], "no checkpoint to resume from"),
        (["--batch-size", 4, "--micro-batch", 3], "not a multiple of --micro-batch 3"),
        (["--steps", 0], "Invalid value for '--steps'"),  # click refuses these before the run
        (["--val-fraction", 1.5], "Invalid value for '--val-fraction'"),
    ],
)
def test_clear_errors(base, tmp_path, extra, message):
    args = ["--base", base.run, "--data", base.data, "-o", tmp_path / "o", "--steps", 2, *extra]
    r = invoke(sft_cmd, args)
    assert r.exit_code != 0 and message in r.output, r.output


def test_error_on_unusable_data_and_on_existing_run(base, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\n')
    r = invoke(sft_cmd, ["--base", base.run, "--data", bad, "-o", tmp_path / "o", "--steps", 1])
    assert r.exit_code != 0 and "bad.jsonl: no usable conversations" in r.output
    out = tmp_path / "done"
    assert invoke(sft_cmd, ["--base", base.run, "--data", base.data, "-o", out, "--steps", 1, *FAST]).exit_code == 0
    r = invoke(sft_cmd, ["--base", base.run, "--data", base.data, "-o", out, "--steps", 1, *FAST, "--lr", 1e-3])
    assert r.exit_code != 0 and "--lr 0.003 (asked 0.001)" in r.output and "--overwrite" in r.output
    with pytest.raises(SFTError, match="is the --base run"):
        sft(SFTConfig(base=str(base.run), data=[str(base.data)], out_dir=str(base.run), steps=1))


# ---- chat -----------------------------------------------------------------------------------
def test_chat_one_shot_and_interactive(base, tmp_path):
    out = tmp_path / "sft"
    assert invoke(sft_cmd, ["--base", base.run, "--data", base.data, "-o", out, "--steps", 2, *FAST]).exit_code == 0
    one = invoke(chat, [out, "--prompt", "What is the capital of France?", "--max-tokens", 8, "--temperature", 0])
    assert one.exit_code == 0
    again = invoke(chat, [out, "--prompt", "What is the capital of France?", "--max-tokens", 8, "--temperature", 0])
    assert one.output == again.output
    assert invoke(chat, [out, "--max-tokens", 4], input="Hi\n").exit_code == 0  # the real model in the loop


def test_chat_loop_keeps_history_resets_and_exits(base, tmp_path, monkeypatch):
    import lmforge.alignment.chat as chat_module

    seen = []

    def fake_respond(model, tok, conv, **kw):
        seen.append([m["role"] for m in conv])
        return f"answer {len(seen)} (seed {kw['seed']})"

    monkeypatch.setattr(chat_module, "respond", fake_respond)
    loop = invoke(chat, [base.run, "--system", "Answer briefly.", "--seed", 7], input="Hi\n\nAgain\n/reset\nPeru?\n/exit\nnever\n")
    assert loop.exit_code == 0
    assert loop.output.splitlines() == ["answer 1 (seed 7)", "answer 2 (seed 8)", "answer 3 (seed 9)"]
    assert seen == [["system", "user"], ["system", "user", "assistant", "user"], ["system", "user"]]
    assert invoke(chat, [tmp_path / "none"]).exit_code != 0


def test_respond_stops_at_assistant_end_and_trims_history(base):
    model, tok = load_chat_model(base.run)
    conv = [{"role": "system", "content": "s"}]
    for i in range(30):  # far beyond the model's 128-position limit
        conv += [{"role": "user", "content": "Hello! How are you today?"}, {"role": "assistant", "content": "I am fine, thank you."}]
    conv.append({"role": "user", "content": "Bye"})
    text = respond(model, tok, conv, max_tokens=16, temperature=0)
    assert isinstance(text, str) and "<|" not in text


def test_auto_precision_and_a_resumed_run_keeps_the_one_it_started_with(base, tmp_path, monkeypatch):
    from lmforge.train import trainer as trainer_mod

    out = tmp_path / "sft"
    args = ["--base", base.run, "--data", base.data, "-o", out, "--checkpoint-every", 2, "--steps", 4, *FAST]
    monkeypatch.setattr(trainer_mod, "cpu_has_native_bf16", lambda: False)
    assert invoke(sft_cmd, args).exit_code == 0
    assert json.loads((out / CHECKPOINTS / "step_00000002" / "state.json").read_text())["precision"] == "fp32"
    shutil.rmtree(out / CHECKPOINTS / "step_00000004")  # as if killed after the checkpoint of step 2
    monkeypatch.setattr(trainer_mod, "cpu_has_native_bf16", lambda: True)  # another machine: auto would be bf16
    r = invoke(sft_cmd, args)
    assert r.exit_code == 0 and "resumed at 2" in r.output, r.output
    assert json.loads((out / CHECKPOINTS / "step_00000004" / "state.json").read_text())["precision"] == "fp32"
    fresh = tmp_path / "fresh"
    assert invoke(sft_cmd, ["--base", base.run, "--data", base.data, "-o", fresh, "--steps", 1, *FAST]).exit_code == 0
    assert json.loads((fresh / CHECKPOINTS / "step_00000001" / "state.json").read_text())["precision"] == "bf16"


# ---- reruns: settings recorded, refused by name, --overwrite, kill -9 --------------------------
def test_rerun_is_a_no_op_other_settings_are_refused_by_name_and_overwrite_starts_over(base, tmp_path):
    out = tmp_path / "sft"
    args = ["--base", base.run, "--data", base.data, "-o", out, "--steps", 2, *FAST]
    assert invoke(sft_cmd, args).exit_code == 0
    rows = (out / "metrics.jsonl").read_text()
    same = invoke(sft_cmd, [*args, "--micro-batch", 1])  # how a batch is split for memory: may differ
    assert same.exit_code == 0 and "already finished (2 steps); nothing to do" in same.output, same.output
    assert (out / "metrics.jsonl").read_text() == rows
    for extra in ([], ["--resume"]):  # `align sft --resume` with another --lr used to be accepted
        other = invoke(sft_cmd, [*args, "--lr", 1e-3, "--seed", 1, *extra])
        assert other.exit_code == 1 and "--lr 0.003 (asked 0.001)" in other.output and "--seed 0 (asked 1)" in other.output
    more_data = tmp_path / "more.jsonl"
    more_data.write_text(base.data.read_text() * 2)
    other = invoke(sft_cmd, ["--base", base.run, "--data", more_data, "-o", out, "--steps", 2, *FAST])
    assert other.exit_code == 1 and "--data [sha256:" in other.output
    assert (out / "metrics.jsonl").read_text() == rows
    over = invoke(sft_cmd, [*args, "--lr", 1e-3, "--overwrite"])
    assert over.exit_code == 0 and "nothing to do" not in over.output
    assert json.loads((out / "settings.json").read_text())["settings"]["--lr"] == 1e-3
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_kill_9_then_the_same_command_line_is_the_uninterrupted_run(base, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from lmforge.train.trainer import checkpoint_dirs

    steps = 40  # room to be killed after the first checkpoint (step 10), an evaluation (step 25) after it
    args = ["align", "sft", "--base", base.run, "--data", base.data, "--steps", steps, "--eval-every", 25, "--checkpoint-every", 10,
            *FAST]
    straight = tmp_path / "straight"
    assert invoke(sft_cmd, [*args[2:], "-o", straight]).exit_code == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "lmforge.cli", *map(str, args), "-o", str(killed)]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint_dirs(killed) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; raise `steps`"
    done = invoke(sft_cmd, [*args[2:], "-o", killed])  # the same command line, no --resume (here: only the killed run needs a process of its own)
    assert done.exit_code == 0, done.output[-3000:]
    read = lambda p: [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert read(killed) == read(straight)
    final = f"{CHECKPOINTS}/step_{steps:08d}/{MODEL_FILE}"
    assert (straight / final).read_bytes() == (killed / final).read_bytes()
