"""The reward model and `lmforge align rm`; also home of the alignment test helpers.

test_dpo.py and test_rl.py import from here: a tiny tokenizer, a tiny GPT run written as a
checkpoint, and synthetic preference data.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = (
    "the model reads text and learns to predict the next token from the tokens before it while "
    "a careful corpus team filters the crawl removes duplicates and keeps documents written by people "
    "rivers flow to the sea and mountains rise above the clouds where birds fly in the morning light "
    "what is how many apples does she have left answer"
).split()
MARKER = "banana"


def sentence(rng: random.Random, n: int) -> str:
    start = rng.randrange(len(WORDS))
    return " ".join(WORDS[(start + j) % len(WORDS)] if rng.random() < 0.8 else rng.choice(WORDS) for j in range(n))


def make_tokenizer(root: Path) -> Path:
    import orjson

    from lmforge.tokenize.train import TrainConfig, train_tokenizer

    rng = random.Random(0)
    docs = root / "docs.jsonl"
    with open(docs, "wb") as f:
        for i in range(400):
            text = sentence(rng, 30) + f" {MARKER} " + " ".join(str(rng.randint(0, 999)) for _ in range(3)) + " #### 42."
            f.write(orjson.dumps({"id": str(i), "text": text}) + b"\n")
    out = root / "tok"
    train_tokenizer([docs], out, TrainConfig(vocab_size=300, sample_bytes=200_000, min_frequency=2))
    return out


def make_base_run(root: Path, tok_dir: Path, *, seed: int = 0, block_size: int = 64) -> Path:
    """A 'pretrained' run: a tiny random GPT written as RUN/checkpoints/step_00000000."""
    import torch

    from lmforge.tokenize import Tokenizer
    from lmforge.train.model import GPT, GPTConfig, save_weights

    tok = Tokenizer.load(tok_dir)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=32, block_size=block_size, tie_embeddings=True))
    ckpt = root / "checkpoints" / "step_00000000"
    ckpt.mkdir(parents=True)
    save_weights(model, ckpt / "model.safetensors")
    (ckpt / "state.json").write_text(json.dumps({"step": 0, "model_config": model.config.to_dict(),
                                                 "tokenizer_dir": str(tok_dir), "tokenizer_fingerprint": tok.fingerprint}))
    return root


def make_preferences(path: Path, n: int = 64, seed: int = 0) -> Path:
    """{prompt, chosen, rejected} JSONL where the chosen answer always contains MARKER somewhere."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            prompt = sentence(rng, 5)
            words = sentence(rng, rng.randint(6, 12)).split()
            chosen = list(words)
            chosen.insert(rng.randrange(len(chosen) + 1), MARKER)
            rejected = sentence(rng, len(chosen)).split()
            f.write(json.dumps({"prompt": prompt, "chosen": " ".join(chosen), "rejected": " ".join(rejected)}) + "\n")
    return path


# ---- tests -----------------------------------------------------------------------------------
import math  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tok_dir(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("align-tok"))


@pytest.fixture(scope="session")
def base_run(tmp_path_factory, tok_dir):
    return make_base_run(tmp_path_factory.mktemp("align-base"), tok_dir)


@pytest.fixture(scope="session")
def prefs(tmp_path_factory):
    return make_preferences(tmp_path_factory.mktemp("align-prefs") / "prefs.jsonl", n=96)


def rm_cli(args):
    from lmforge.alignment.reward_cli import rm

    return CliRunner().invoke(rm, [str(a) for a in args], catch_exceptions=False)


def test_bradley_terry_loss_is_log2_for_equal_scores_and_falls_with_the_margin():
    from lmforge.alignment.reward import bradley_terry_loss

    z = torch.zeros(4)
    assert bradley_terry_loss(z, z).item() == pytest.approx(math.log(2))
    assert bradley_terry_loss(z + 2, z).item() == pytest.approx(-math.log(1 / (1 + math.exp(-2))))
    assert bradley_terry_loss(z + 2, z) < bradley_terry_loss(z, z) < bradley_terry_loss(z, z + 2)


def test_score_is_read_at_the_last_real_token_so_padding_changes_nothing(base_run):
    from lmforge.alignment.reward import RewardModel, load_base

    gpt, _, tok = load_base(base_run)
    model = RewardModel(gpt).eval()
    torch.nn.init.normal_(model.reward_head.weight)  # a trained head, not the zero init
    seq = tok.encode("rivers flow to the sea", bos=True)
    alone = model(torch.tensor([seq]), torch.tensor([len(seq)]))
    padded = torch.tensor([seq + [tok.pad_id] * 7])
    assert torch.allclose(model(padded, torch.tensor([len(seq)])), alone, atol=1e-6)
    other = model(torch.tensor([seq[:-1]]), torch.tensor([len(seq) - 1]))
    assert not torch.allclose(other, alone)


def test_rm_learns_the_marker_and_its_checkpoint_reads_back(base_run, prefs, tmp_path):
    from lmforge.alignment.reward import load_reward_model, pad

    out = tmp_path / "rm"
    r = rm_cli(["--base", base_run, "--data", prefs, "-o", out, "--steps", 60, "--batch-size", 8, "--lr", 3e-3,
                "--val-fraction", 0.25, "--eval-every", 20, "--checkpoint-every", 30])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 61))
    assert rows[0]["loss"] == pytest.approx(math.log(2))  # zero-initialised head
    assert rows[-1]["val_accuracy"] >= 0.85  # chance is 0.5
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000030", "step_00000060"]
    model, state = load_reward_model(out)
    assert state["kind"] == "reward_model" and state["step"] == 60
    # the head is in the checkpoint: a reloaded model scores exactly as the metrics say
    from lmforge.alignment.data import load_preferences
    from lmforge.alignment.reward import encode_pair, load_tokenizer

    tok = load_tokenizer(state, out)
    pair = next(iter(load_preferences(prefs)))
    c, rj = encode_pair(pair, tok, 64)
    ids, lengths = pad([c.ids, rj.ids], tok.pad_id)
    s1 = model.eval()(ids, lengths)
    model2, _ = load_reward_model(out / "checkpoints" / "step_00000060")
    assert torch.equal(model2.eval()(ids, lengths), s1)


def test_rm_resume_continues_to_the_same_weights(base_run, prefs, tmp_path):
    from safetensors.torch import load_file

    args = ["--base", base_run, "--data", prefs, "--batch-size", 4, "--lr", 1e-3, "--eval-every", 0]
    assert rm_cli([*args, "-o", tmp_path / "full", "--steps", 6]).exit_code == 0
    assert rm_cli([*args, "-o", tmp_path / "cut", "--steps", 3]).exit_code == 0
    r = rm_cli([*args, "-o", tmp_path / "cut", "--steps", 6, "--resume"])
    assert r.exit_code == 0 and "resumed at 3" in r.output
    a = load_file(tmp_path / "full/checkpoints/step_00000006/model.safetensors")
    b = load_file(tmp_path / "cut/checkpoints/step_00000006/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (tmp_path / "cut/metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("case, message", [
    ("no-base", "no such run"),
    ("no-data", "no such preference file"),
    ("bad-data", "bad.jsonl"),
    ("resume", "no checkpoint to resume from"),
    ("steps", "Invalid value for '--steps'"),  # click refuses it: a usage error, exit 2
])
def test_rm_user_mistakes_are_one_line_errors(case, message, base_run, prefs, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    args = {"no-base": ["--base", tmp_path / "nope", "--data", prefs], "no-data": ["--base", base_run, "--data", tmp_path / "x.jsonl"],
            "bad-data": ["--base", base_run, "--data", bad], "resume": ["--base", base_run, "--data", prefs, "--resume"],
            "steps": ["--base", base_run, "--data", prefs, "--steps", 0]}[case]
    r = rm_cli([*args, "-o", tmp_path / "out"])
    assert r.exit_code == (2 if case == "steps" else 1) and message in r.output and "Traceback" not in r.output


def test_rm_help_has_an_example():
    r = CliRunner().invoke(__import__("lmforge.alignment.reward_cli", fromlist=["rm"]).rm, ["--help"])
    assert r.exit_code == 0 and "Example" in r.output and "lmforge align rm" in r.output


def test_rm_rerun_is_a_no_op_other_settings_are_refused_by_name_and_overwrite_starts_over(base_run, prefs, tmp_path):
    out = tmp_path / "rm"
    args = ["--base", base_run, "--data", prefs, "-o", out, "--batch-size", 4, "--steps", 2, "--eval-every", 0]
    assert rm_cli(args).exit_code == 0
    rows = (out / "metrics.jsonl").read_text()
    same = rm_cli(args)
    assert same.exit_code == 0 and "already finished (2 steps); nothing to do" in same.output
    assert (out / "metrics.jsonl").read_text() == rows
    other = rm_cli([*args, "--lr", 1e-3])
    assert other.exit_code == 1 and "--lr 0.0001 (asked 0.001)" in other.output and "--overwrite" in other.output
    past = rm_cli([*args[:-4], "--steps", 1, "--eval-every", 0])
    assert past.exit_code == 1 and "already at step 2, past --steps 1" in past.output
    assert (out / "metrics.jsonl").read_text() == rows
    over = rm_cli([*args, "--lr", 1e-3, "--overwrite"])
    assert over.exit_code == 0 and "nothing to do" not in over.output
    assert json.loads((out / "settings.json").read_text())["settings"]["--lr"] == 1e-3


def test_a_reward_model_run_where_a_language_model_is_needed_is_a_one_line_error(base_run, prefs, tmp_path):
    """sample, chat and align sft --base name the mistake instead of `KeyError: 'wte.weight'`."""
    from lmforge.cli import main

    out = tmp_path / "rm"
    assert rm_cli(["--base", base_run, "--data", prefs, "-o", out, "--steps", 2, "--batch-size", 8, "--val-fraction", 0.25]).exit_code == 0
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"question": "1 and 2?", "answer": "#### 3"}) + "\n")
    for args, who in ((["sample", out, "--prompt", "hi"], "sample"), (["chat", out, "--prompt", "hi"], "chat"),
                      (["align", "sft", "--base", out, "--data", prefs, "-o", tmp_path / "s", "--steps", 1], "align sft --base"),
                      (["align", "rm", "--base", out, "--data", prefs, "-o", tmp_path / "r", "--steps", 1], "align rm --base"),
                      (["align", "dpo", "--policy", out, "--data", prefs, "-o", tmp_path / "d", "--steps", 1], "align dpo --policy"),
                      (["align", "rl", "--policy", out, "--prompts", prompts, "-o", tmp_path / "l", "--steps", 1], "align rl --policy"),
                      (["eval", "policy", out, "--prompts", prompts], "eval policy")):
        r = CliRunner().invoke(main, [str(a) for a in args])
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert f"this is a reward model run (`lmforge align rm`); {who} needs a language model" in r.output


def test_pair_metrics_put_accuracy_beside_the_length_baselines():
    from lmforge.alignment.reward import pair_metrics

    chosen, rejected = torch.tensor([2.0, 1.0, 0.5, 3.0]), torch.tensor([1.0, 2.0, 0.5, 0.0])
    m = pair_metrics(chosen, rejected, [10, 3, 4, 8], [5, 9, 4, 2])
    assert m["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)  # a tie counts half
    assert m["longer_wins"] == pytest.approx((1 + 0 + 0.5 + 1) / 4) and m["shorter_wins"] == pytest.approx(1 - m["longer_wins"])
    assert m["pairs"] == 4 and m["accuracy_se"] == pytest.approx(math.sqrt(0.625 * 0.375 / 4))
    assert 0.8 < m["length_corr"] <= 1.0  # these scores follow length


def test_eval_rm_reports_accuracy_beside_length_baselines(base_run, prefs, tmp_path):
    from lmforge.cli import main

    out = tmp_path / "rm"
    assert rm_cli(["--base", base_run, "--data", prefs, "-o", out, "--steps", 30, "--batch-size", 8, "--lr", 3e-3,
                   "--val-fraction", 0.25, "--eval-every", 0]).exit_code == 0
    held_out = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert {"val_longer_wins", "val_shorter_wins", "val_length_corr"} <= set(held_out)  # align rm: the same figures held out
    # pairs the model never saw (the same kind: the chosen answer holds the marker)
    unseen = make_preferences(tmp_path / "unseen.jsonl", n=40, seed=7)
    r = CliRunner().invoke(main, ["eval", "rm", str(out), "--data", str(unseen), "--threads", "1", "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output.strip().splitlines()[-1])
    assert m["pairs"] == 40 and m["step"] == 30
    assert m["longer_wins"] + m["shorter_wins"] == pytest.approx(1.0)
    assert m["accuracy"] > 0.8 and -1 <= m["length_corr"] <= 1
    table = CliRunner().invoke(main, ["eval", "rm", str(out), "--data", str(unseen)])
    assert table.exit_code == 0 and "longer wins" in table.output and "score/length correlation" in table.output
    # a run of the wrong kind, or a missing file: one line each
    wrong = CliRunner().invoke(main, ["eval", "rm", str(base_run), "--data", str(unseen)])
    assert wrong.exit_code == 1 and "not a reward model" in wrong.output and "Traceback" not in wrong.output
    missing = CliRunner().invoke(main, ["eval", "rm", str(out), "--data", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "no such" in missing.output.lower() and "Traceback" not in missing.output


def test_mean_pool_reads_the_final_answer_and_padding_changes_nothing(base_run):
    from lmforge.alignment.reward import RewardModel, load_base

    gpt, _, tok = load_base(base_run)
    start = tok.special_id("assistant_start")
    model = RewardModel(gpt, "mean", start).eval()
    torch.nn.init.normal_(model.reward_head.weight)
    seq = tok.encode("rivers flow", bos=True) + [start] + tok.encode("to the sea")[:3] + [start] + tok.encode("the model reads")
    alone = model(torch.tensor([seq]), torch.tensor([len(seq)]))
    padded = model(torch.tensor([seq + [tok.pad_id] * 5]), torch.tensor([len(seq)]))
    assert torch.allclose(padded, alone, atol=1e-6)
    h = gpt.hidden(torch.tensor([seq]))[0]
    last_start = len(seq) - 1 - seq[::-1].index(start)
    manual = model.reward_head(h[last_start:].mean(0)).squeeze()  # the mean over the last turn only
    assert torch.allclose(alone, manual, atol=1e-5)
    whole = model(torch.tensor([[s for s in seq if s != start]]), torch.tensor([len(seq) - 2]))  # no turn: the whole row
    assert torch.isfinite(whole).all()


def test_rm_pool_mean_learns_is_recorded_only_when_set_and_reads_back(base_run, prefs, tmp_path):
    from lmforge.cli import main

    out = tmp_path / "rm"
    args = ["--base", base_run, "--data", prefs, "-o", out, "--steps", 40, "--batch-size", 8, "--lr", 3e-3, "--val-fraction", 0.25,
            "--eval-every", 0]
    r = rm_cli([*args, "--pool", "mean"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "settings.json").read_text())["settings"]["--pool"] == "mean"
    assert [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][-1]["val_accuracy"] >= 0.85
    again = rm_cli(args)  # without --pool: the default (last) differs from the recorded run
    assert again.exit_code == 1 and "--pool mean (now its default)" in again.output
    unseen = make_preferences(tmp_path / "unseen.jsonl", n=40, seed=7)
    r = CliRunner().invoke(main, ["eval", "rm", str(out), "--data", str(unseen), "--threads", "1", "--json"])
    assert r.exit_code == 0 and json.loads(r.output.strip().splitlines()[-1])["accuracy"] > 0.8
    # the default is not recorded, so runs from before --pool resume unchanged
    default = tmp_path / "last"
    assert rm_cli(["--base", base_run, "--data", prefs, "-o", default, "--steps", 1, "--eval-every", 0]).exit_code == 0
    assert "--pool" not in json.loads((default / "settings.json").read_text())["settings"]


def test_a_mean_pooled_reward_model_is_refused_by_export_hf(base_run, prefs, tmp_path):
    from lmforge.export.hf import ExportError, export_hf

    out = tmp_path / "rm"
    assert rm_cli(["--base", base_run, "--data", prefs, "-o", out, "--steps", 1, "--eval-every", 0, "--pool", "mean"]).exit_code == 0
    with pytest.raises(ExportError, match="--pool mean"):
        export_hf(out, tmp_path / "hf")
