"""DPO and `lmforge align dpo` on a tiny GPT and synthetic preferences."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from test_reward import base_run, prefs, tok_dir  # noqa: F401  (fixtures)

torch.set_num_threads(1)


def dpo_cli(args):
    from lmforge.alignment.dpo_cli import dpo

    return CliRunner().invoke(dpo, [str(a) for a in args], catch_exceptions=False)


def rows_of(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_dpo_loss_matches_the_formula_by_hand():
    from lmforge.alignment.dpo import dpo_loss

    pi_c, pi_r, ref_c, ref_r = torch.tensor([-3.0]), torch.tensor([-5.0]), torch.tensor([-4.0]), torch.tensor([-4.5])
    loss, rc, rr = dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.5)
    # 0.5 * ((-3 + 4) - (-5 + 4.5)) = 0.75
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.75))))
    assert rc.item() == pytest.approx(0.5) and rr.item() == pytest.approx(-0.25)


def test_sequence_logprobs_count_only_masked_tokens(base_run):
    from lmforge.alignment.dpo import sequence_logprobs, token_logprobs
    from lmforge.alignment.reward import load_base

    model, _, tok = load_base(base_run)
    ids = torch.tensor([tok.encode("rivers flow to the sea", bos=True)])
    per_token = token_logprobs(model, ids, tok.vocab_size)
    mask = torch.zeros_like(ids, dtype=torch.float32)
    mask[0, 3:] = 1
    assert sequence_logprobs(model, ids, mask, tok.vocab_size).item() == pytest.approx(per_token[0, 2:].sum().item(), rel=1e-5)
    # padding after the sequence changes nothing
    padded = torch.cat([ids, torch.full((1, 5), tok.pad_id)], 1)
    pmask = torch.cat([mask, torch.zeros(1, 5)], 1)
    assert sequence_logprobs(model, padded, pmask, tok.vocab_size).item() == pytest.approx(per_token[0, 2:].sum().item(), rel=1e-5)


def test_dpo_starts_at_log2_and_the_margin_grows(base_run, prefs, tmp_path):
    out = tmp_path / "dpo"
    r = dpo_cli(["--policy", base_run, "--data", prefs, "-o", out, "--steps", 30, "--batch-size", 8, "--lr", 1e-3,
                 "--beta", 0.1, "--eval-every", 10, "--checkpoint-every", 15, "--warmup", 1])
    assert r.exit_code == 0, r.output
    rows = rows_of(out)
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)  # policy == reference at step 0
    assert rows[0]["margin"] == pytest.approx(0.0, abs=1e-6)
    early = sum(r["margin"] for r in rows[:5]) / 5
    late = sum(r["margin"] for r in rows[-5:]) / 5
    assert late > early + 0.5 and rows[-1]["loss"] < 0.5
    assert rows[-1]["reward_chosen"] > rows[-1]["reward_rejected"]
    assert "val_margin" in rows[-1] and "train margin" in r.output
    # the output is a policy run that the pretraining loader (and so `lmforge sample`) reads
    from lmforge.train.trainer import load_model

    model, state = load_model(out)
    assert state["kind"] == "policy" and state["step"] == 30 and state["reference"] == str(base_run.resolve())


def test_dpo_resume_gives_the_uninterrupted_weights(base_run, prefs, tmp_path):
    from safetensors.torch import load_file

    args = ["--policy", base_run, "--data", prefs, "--batch-size", 4, "--lr", 1e-3, "--eval-every", 0]
    assert dpo_cli([*args, "-o", tmp_path / "full", "--steps", 4]).exit_code == 0
    assert dpo_cli([*args, "-o", tmp_path / "cut", "--steps", 2]).exit_code == 0
    r = dpo_cli([*args, "-o", tmp_path / "cut", "--steps", 4, "--resume"])
    assert r.exit_code == 0 and "resumed at 2" in r.output
    a = load_file(tmp_path / "full/checkpoints/step_00000004/model.safetensors")
    b = load_file(tmp_path / "cut/checkpoints/step_00000004/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("case, message", [
    ("no-policy", "no such run"),
    ("reward-model", "is a reward model"),
    ("beta", "Invalid value for '--beta'"),  # click refuses it: a usage error, exit 2
])
def test_dpo_user_mistakes_are_one_line_errors(case, message, base_run, prefs, tmp_path):
    if case == "reward-model":
        from lmforge.alignment.reward_cli import rm

        CliRunner().invoke(rm, ["--base", str(base_run), "--data", str(prefs), "-o", str(tmp_path / "rm"), "--steps", "1"])
    args = {"no-policy": ["--policy", tmp_path / "nope"], "reward-model": ["--policy", tmp_path / "rm"],
            "beta": ["--policy", base_run, "--beta", 0]}[case]
    r = dpo_cli([*args, "--data", prefs, "-o", tmp_path / "out"])
    assert r.exit_code == (2 if case == "beta" else 1) and message in r.output and "Traceback" not in r.output


def test_dpo_auto_precision_and_a_resumed_run_keeps_the_one_it_started_with(base_run, prefs, tmp_path, monkeypatch):
    import json

    from lmforge.train import trainer as trainer_mod

    out = tmp_path / "dpo"
    args = ["--policy", base_run, "--data", prefs, "-o", out, "--batch-size", 4, "--eval-every", 0, "--checkpoint-every", 1]
    monkeypatch.setattr(trainer_mod, "cpu_has_native_bf16", lambda: False)
    assert dpo_cli([*args, "--steps", 1]).exit_code == 0
    monkeypatch.setattr(trainer_mod, "cpu_has_native_bf16", lambda: True)  # another machine: auto would be bf16
    assert dpo_cli([*args, "--steps", 2, "--resume"]).exit_code == 0
    state = json.loads((out / "checkpoints" / "step_00000002" / "state.json").read_text())
    assert state["config"]["precision"] == "fp32"
    fresh = tmp_path / "fresh"
    assert dpo_cli(["--policy", base_run, "--data", prefs, "-o", fresh, "--batch-size", 4, "--steps", 1]).exit_code == 0
    rows = rows_of(fresh)
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)  # in bf16 too: policy and reference agree at step 0
    assert json.loads((fresh / "checkpoints" / "step_00000001" / "state.json").read_text())["config"]["precision"] == "bf16"


def test_dpo_rerun_is_a_no_op_other_settings_are_refused_by_name_and_overwrite_starts_over(base_run, prefs, tmp_path):
    out = tmp_path / "dpo"
    args = ["--policy", base_run, "--data", prefs, "-o", out, "--batch-size", 4, "--steps", 2, "--eval-every", 0]
    assert dpo_cli(args).exit_code == 0
    rows = rows_of(out)
    same = dpo_cli(args)
    assert same.exit_code == 0 and "already finished (2 steps); nothing to do" in same.output and rows_of(out) == rows
    other = dpo_cli([*args, "--beta", 0.5])
    assert other.exit_code == 1 and "--beta 0.1 (asked 0.5)" in other.output and "--overwrite" in other.output
    assert rows_of(out) == rows
    over = dpo_cli([*args, "--beta", 0.5, "--overwrite"])
    assert over.exit_code == 0 and "nothing to do" not in over.output
    assert len(rows_of(out)) == 2 and rows_of(out) != rows
