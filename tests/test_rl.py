"""GRPO, PPO and `lmforge align rl`: the pieces checked by hand, one step end to end on a tiny GPT."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest
import torch
from click.testing import CliRunner
from test_reward import base_run, prefs, tok_dir  # noqa: F401  (fixtures)

from lmforge.alignment.rewards import REWARD_FUNCTIONS, extract_answer, gsm8k_reward, number_reward, resolve_reward
from lmforge.alignment.rl import clipped_policy_loss, gae, group_advantages, kl_k3, sample_group

torch.set_num_threads(1)


def rl_cli(args):
    from lmforge.alignment.rl_cli import rl

    return CliRunner().invoke(rl, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("rl-prompts") / "prompts.jsonl"
    with open(path, "w") as f:
        for a in range(12):
            f.write(json.dumps({"question": f"what is {a} and {a + 1}", "answer": f"add them\n#### {2 * a + 1}"}) + "\n")
    return path


@pytest.fixture
def odd_length_reward(monkeypatch):
    """A reward with variance even for a random model: 1 if the completion text has odd length."""
    monkeypatch.setitem(REWARD_FUNCTIONS, "odd", lambda text, answer: float(len(text) % 2))
    return "odd"


# ---- verifiable rewards -----------------------------------------------------------------------
def test_every_gsm8k_training_answer_parses(shared_data):
    from lmforge.alignment.data import load_prompts

    path = shared_data / "align" / "gsm8k-train-7473.jsonl"
    examples = list(load_prompts(path))
    assert len(examples) == 7473
    numbers = [extract_answer(ex.answer) for ex in examples]
    assert all(n is not None for n in numbers)
    assert all(gsm8k_reward(ex.answer, ex.answer) == 1.0 for ex in examples)
    first = examples[0].answer
    assert numbers[0] == "72" and gsm8k_reward("I think\n#### 72", first) == 1.0 and gsm8k_reward("#### 71", first) == 0.0


@pytest.mark.parametrize("text, expected", [
    ("#### 72", "72"), ("so\n#### 1,000", "1000"), ("#### $18.00", "18"), ("#### -3", "-3"), ("#### 0.5", "1/2"),
    ("#### 12 apples", "12"), ("#### 5\nthen #### 7", "7"), ("no marker 72", None), ("#### seventy", None), ("####", None),
])
def test_extract_answer_forms(text, expected):
    assert extract_answer(text) == expected


def test_gsm8k_reward_compares_numbers_not_strings():
    assert gsm8k_reward("#### 1,000", "#### 1000") == 1.0
    assert gsm8k_reward("#### 18.0", "18") == 1.0
    assert gsm8k_reward("the answer is 18", "#### 18") == 0.0
    with pytest.raises(ValueError):
        gsm8k_reward("#### 1", "no number here")


def test_number_reward_pays_a_right_sum_without_the_marker_never_a_wrong_one():
    assert number_reward("7 + 5 = 12", "#### 12") == 1.0
    assert number_reward("7 + 5 = 12\n#### 11", "#### 12") == 0.0  # the `####` number counts when there is one
    assert number_reward("7 + 5 = 11", "12") == 0.0
    reward = resolve_reward("gsm8k,number")  # right and formatted > right > wrong, formatted or not
    assert [reward(c, "#### 12") for c in ("7 + 5 = 12\n#### 12", "7 + 5 = 12", "7 + 5 = 11\n#### 11", "7 + 5 = 11", "")] == [2, 1, 0, 0, 0]
    assert not reward.reference_ok("no number here")


# ---- the pieces by hand -------------------------------------------------------------------------
def test_group_advantages_are_normalised_within_each_group():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 0.0, 4.0]])
    a = group_advantages(r)
    assert torch.allclose(a.mean(1), torch.zeros(3), atol=1e-6)
    assert torch.allclose(a[0], torch.tensor([1.0, -1.0, -1.0, 1.0]) * (0.5 / (0.5774 + 1e-4)), atol=1e-3)
    assert torch.equal(a[1], torch.zeros(4))  # no signal in a group that all scored the same
    assert torch.allclose(a[2].std(), torch.tensor(1.0), atol=1e-3) and a[2, 3] > 0 > a[2, 0]


def test_clipped_objective_equals_the_hand_computed_value():
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1, 3.0]]))  # ratios 1.5, 0.5, 1.1, (3.0 masked out)
    adv = torch.tensor([[1.0, 1.0, -1.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    loss, clip_frac = clipped_policy_loss(logp, old, adv, mask, clip=0.2)
    # -min(1.5, 1.2) = -1.2;  -min(0.5, 0.8) = -0.5;  -min(-1.1, -1.1) = 1.1;  mean = -0.2
    assert loss.item() == pytest.approx(-0.2, abs=1e-6)
    assert clip_frac.item() == pytest.approx(1 / 3)


def test_kl_is_zero_when_policy_equals_reference_and_positive_otherwise():
    p = torch.log_softmax(torch.randn(3, 7), -1)
    assert torch.equal(kl_k3(p, p), torch.zeros(3, 7))
    q = torch.log_softmax(torch.randn(3, 7), -1)
    assert (kl_k3(p, q) >= 0).all() and kl_k3(p, q).sum() > 0


def test_gae_by_hand():
    r = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    v = torch.tensor([[0.5, 0.5, 0.5, 9.0]])
    m = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the last position is padding
    adv, ret = gae(r, v, m, gamma=1.0, lam=1.0)  # Monte Carlo: return 1 everywhere
    assert torch.allclose(adv, torch.tensor([[0.5, 0.5, 0.5, 0.0]])) and torch.allclose(ret, torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    adv0, _ = gae(r, v, m, gamma=1.0, lam=0.0)  # one-step TD: r + V(next) - V
    assert torch.allclose(adv0, torch.tensor([[0.0, 0.0, 0.5, 0.0]]))


def test_batched_greedy_sampling_equals_generate(base_run):
    from lmforge.alignment.reward import load_base
    from lmforge.train.sample import generate

    model, _, tok = load_base(base_run)
    prompt = tok.encode("rivers flow to", bos=True)
    want = generate(model, prompt, 10, temperature=0, stop={tok.assistant_end_id}, vocab_size=tok.vocab_size)
    got = sample_group(model, prompt, 3, 10, temperature=0, top_k=None, generator=torch.Generator().manual_seed(0),
                       stop_id=tok.assistant_end_id, vocab_size=tok.vocab_size)
    assert got == [want] * 3


# ---- end to end ---------------------------------------------------------------------------------
def test_one_grpo_step_end_to_end(base_run, prompts, odd_length_reward, tmp_path):
    from safetensors.torch import load_file

    from lmforge.train.trainer import load_model

    out = tmp_path / "grpo"
    r = rl_cli(["--method", "grpo", "--policy", base_run, "--prompts", prompts, "-o", out, "--reward-fn", odd_length_reward,
                "--steps", 1, "--prompts-per-step", 2, "-G", 4, "--max-new-tokens", 8, "--lr", 1e-3])
    assert r.exit_code == 0, r.output
    assert "mean reward" in r.output and "KL to reference" in r.output
    (row,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert row["step"] == 1 and 0 <= row["reward"] <= 1 and 1 <= row["completion_len"] <= 8
    assert row["kl"] == 0.0  # the policy is the reference until the first update
    assert math.isfinite(row["loss"])
    model, state = load_model(out)
    assert state["kind"] == "policy" and state["config"]["method"] == "grpo"
    before = load_file(base_run / "checkpoints/step_00000000/model.safetensors")
    after = load_file(out / "checkpoints/step_00000001/model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the update moved the policy


def test_grpo_resume_gives_the_uninterrupted_weights(base_run, prompts, odd_length_reward, tmp_path):
    from safetensors.torch import load_file

    args = ["--policy", base_run, "--prompts", prompts, "--reward-fn", odd_length_reward, "--prompts-per-step", 2, "-G", 2,
            "--max-new-tokens", 6, "--lr", 1e-3]
    assert rl_cli([*args, "-o", tmp_path / "full", "--steps", 2]).exit_code == 0
    assert rl_cli([*args, "-o", tmp_path / "cut", "--steps", 1]).exit_code == 0
    r = rl_cli([*args, "-o", tmp_path / "cut", "--steps", 2, "--resume"])
    assert r.exit_code == 0 and "resumed at 1" in r.output
    a = load_file(tmp_path / "full/checkpoints/step_00000002/model.safetensors")
    b = load_file(tmp_path / "cut/checkpoints/step_00000002/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_one_ppo_step_end_to_end_against_a_reward_model(base_run, prefs, prompts, tmp_path):
    from lmforge.alignment.reward_cli import rm

    r = CliRunner().invoke(rm, ["--base", str(base_run), "--data", str(prefs), "-o", str(tmp_path / "rm"), "--steps", "3", "--lr", "1e-3"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "ppo"
    args = ["--method", "ppo", "--policy", base_run, "--reward", tmp_path / "rm", "--prompts", prompts, "--prompts-per-step", 2,
            "-G", 2, "--max-new-tokens", 8, "--lr", 1e-3, "--epochs", 2]
    r = rl_cli([*args, "-o", out, "--steps", 2, "--checkpoint-every", 1])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2] and all(math.isfinite(row["value_loss"]) for row in rows)
    ckpt = out / "checkpoints/step_00000002"
    assert (ckpt / "value.safetensors").is_file() and (ckpt / "model.safetensors").is_file()
    r = rl_cli([*args, "-o", out, "--steps", 3, "--resume"])
    assert r.exit_code == 0 and "resumed at 2" in r.output


@pytest.mark.parametrize("extra, message", [
    (["--method", "ppo"], "needs --reward"),
    (["--reward-fn", "nope"], "--reward-fn 'nope'"),
    (["-G", "1"], "use 2 or more"),
    (["--max-new-tokens", "200"], "lower it"),
    (["--method", "ppo", "--reward", "{base}"], "not a reward model"),
])
def test_rl_user_mistakes_are_one_line_errors(extra, message, base_run, prompts, tmp_path):
    extra = [a.format(base=base_run) for a in extra]
    r = rl_cli(["--policy", base_run, "--prompts", prompts, "-o", tmp_path / "out", *extra])
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output


def test_rl_missing_prompts_file(base_run, tmp_path):
    r = rl_cli(["--policy", base_run, "--prompts", tmp_path / "none.jsonl", "-o", tmp_path / "out"])
    assert r.exit_code == 1 and "no such prompts file" in r.output


def test_rl_rerun_is_a_no_op_other_settings_are_refused_by_name_and_overwrite_starts_over(base_run, prompts, odd_length_reward, tmp_path):
    out = tmp_path / "rl"
    args = ["--policy", base_run, "--prompts", prompts, "--reward-fn", odd_length_reward, "--prompts-per-step", 2, "-G", 2,
            "--max-new-tokens", 6, "-o", out, "--steps", 1]
    assert rl_cli(args).exit_code == 0
    rows = (out / "metrics.jsonl").read_text()
    same = rl_cli(args)
    assert same.exit_code == 0 and "already finished (1 steps); nothing to do" in same.output
    assert (out / "metrics.jsonl").read_text() == rows
    other = rl_cli([*args, "--kl-coef", 0.1, "--temperature", 0.7])
    assert other.exit_code == 1 and "--kl-coef 0.0 (asked 0.1)" in other.output and "--temperature 1.0 (asked 0.7)" in other.output
    assert (out / "metrics.jsonl").read_text() == rows
    over = rl_cli([*args, "--kl-coef", 0.1, "--overwrite"])
    assert over.exit_code == 0 and "nothing to do" not in over.output
    assert json.loads((out / "settings.json").read_text())["settings"]["--kl-coef"] == 0.1


def test_score_completions_splits_format_from_accuracy():
    from lmforge.alignment.evaluate import score_completions

    m = score_completions(["#### 4", "#### 5", "four", "so #### 4"], ["#### 4"] * 4, "gsm8k")
    assert m["reward"] == pytest.approx(0.5) and m["formatted"] == pytest.approx(0.75)
    assert m["accuracy_formatted"] == pytest.approx(2 / 3)
    assert m["reward_se"] == pytest.approx((1 / 3) ** 0.5 / 2)  # sample sd of [1,0,0,1] over sqrt(4)


def test_eval_policy_reports_greedy_and_sampled_with_format_apart(base_run, prompts):
    from click.testing import CliRunner

    from lmforge.cli import main

    args = ["eval", "policy", str(base_run), "--prompts", str(prompts), "--samples", "3", "--max-tokens", "8", "--limit", "4"]
    r = CliRunner().invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output.strip().splitlines()[-1])
    assert m["prompts_evaluated"] == 4 and m["samples"] == 3
    for kind in ("greedy", "sampled"):
        assert 0 <= m[f"{kind}_reward"] <= m[f"{kind}_formatted"] <= 1 and f"{kind}_reward_se" in m
    assert 0 <= m["pass@3"] <= 1
    again = CliRunner().invoke(main, [*args, "--json"])
    assert json.loads(again.output.strip().splitlines()[-1]) == m  # seeded: the same figures
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0 and "accuracy among formatted" in table.output
    bad = CliRunner().invoke(main, ["eval", "policy", str(base_run), "--prompts", str(prompts), "--reward", "nope"])
    assert bad.exit_code == 1 and "--reward 'nope': choose one of gsm8k" in bad.output


def test_rewards_are_plugins_with_weights_and_a_failing_one_scores_zero(tmp_path, monkeypatch, caplog):
    import sys

    from lmforge.alignment.rewards import RewardSpecError, resolve_reward

    plugin = tmp_path / "my_rewards.py"
    plugin.write_text(
        "def short(completion, reference):\n    return 1.0 if len(completion) < 10 else 0.0\n\n"
        "def picky(completion, reference):\n    if 'boom' in completion:\n        raise KeyError('boom')\n    return 0.5\n"
        "picky.check_reference = lambda reference: reference != 'unusable'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_rewards", None)
    r = resolve_reward("gsm8k,format@0.1,my_rewards:short@2")
    assert r("#### 7", "#### 7") == pytest.approx(1 + 0.1 + 2)
    assert r("it is eight, #### 8", "#### 7") == pytest.approx(0.1)
    picky = resolve_reward("my_rewards:picky")
    assert picky("fine", "x") == 0.5
    assert picky("boom", "x") == 0.0 and picky("boom again", "x") == 0.0  # scored 0, counted, no crash
    assert picky.errors == {"my_rewards:picky: KeyError": 2}
    assert picky.reference_ok("x") and not picky.reference_ok("unusable")  # the loader skips such prompts up front
    for spec, message in (("nope", "'nope': choose one of gsm8k, format"), ("my_rewards:absent", "cannot load it"),
                          ("no_such_module_xyz:f", "cannot load it"), ("gsm8k@heavy", "must be a number"), (",", "name at least one")):
        with pytest.raises(RewardSpecError, match=message):
            resolve_reward(spec)


def test_grpo_with_combined_rewards_reports_tied_groups_and_reward_errors(base_run, prompts, tmp_path):
    out = tmp_path / "rl"
    r = rl_cli(["--policy", base_run, "--prompts", prompts, "--reward-fn", "gsm8k,format@0.5", "--prompts-per-step", 2, "-G", 2,
                "--max-new-tokens", 4, "-o", out, "--steps", 1])
    assert r.exit_code == 0, r.output
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["reward_errors"] == 0 and 0 <= row["tied_groups"] <= 1


def test_loss_types_and_reward_scaling_as_trl_defines_them():
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]))
    old = logp.clone()  # ratio 1: the loss is -A per token
    adv = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])  # a 3-token and a 1-token completion
    dapo, _ = clipped_policy_loss(logp, old, adv, mask, 0.2)
    grpo, _ = clipped_policy_loss(logp, old, adv, mask, 0.2, loss_type="grpo")
    dr, _ = clipped_policy_loss(logp, old, adv, mask, 0.2, loss_type="dr_grpo", max_len=4)
    assert float(dapo) == pytest.approx((-3 + 1) / 4)  # every token counts once
    assert float(grpo) == pytest.approx((-1 + 1) / 2)  # every sequence counts once
    assert float(dr) == pytest.approx((-3 + 1) / (2 * 4))  # a constant normaliser
    # clip-higher: a ratio of 1.25 is clipped at 1.2 but not at 1.28 (positive advantage)
    up = old + math.log(1.25)
    _, frac = clipped_policy_loss(up, old, adv.abs(), mask, 0.2)
    _, frac_high = clipped_policy_loss(up, old, adv.abs(), mask, 0.2, clip_high=0.28)
    assert float(frac) == 1.0 and float(frac_high) == 0.0
    r = torch.tensor([[1.0, 0.0], [3.0, 1.0]])
    assert group_advantages(r, scale="none").tolist() == [[0.5, -0.5], [1.0, -1.0]]
    batch = group_advantages(r, scale="batch")
    assert batch[1, 0] == pytest.approx(1.0 / (float(r.std()) + 1e-4))


def test_old_rl_runs_resume_the_later_options_are_recorded_only_when_set():
    from lmforge.alignment.rl import RLConfig, rl_settings

    cfg = RLConfig(method="grpo", policy="p", prompts="q", out_dir="o")
    keys = rl_settings(asdict(cfg), "p", None, "q", "t")
    assert "--loss-type" not in keys and "--mask-truncated" not in keys  # as a run from before them recorded
    keys = rl_settings(asdict(RLConfig(method="grpo", policy="p", prompts="q", out_dir="o", loss_type="dr_grpo")), "p", None, "q", "t")
    assert keys["--loss-type"] == "dr_grpo"


def test_grpo_with_trl_options_runs_and_masks_truncated_completions(base_run, prompts, odd_length_reward, tmp_path):
    out = tmp_path / "rl"
    r = rl_cli(["--policy", base_run, "--prompts", prompts, "--reward-fn", odd_length_reward, "--prompts-per-step", 2, "-G", 2,
                "--max-new-tokens", 3, "-o", out, "--steps", 1, "--loss-type", "dr_grpo", "--scale-rewards", "none",
                "--clip-high", "0.28", "--epochs", 2, "--mask-truncated"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "settings.json").read_text())["settings"]["--loss-type"] == "dr_grpo"
    bad = rl_cli(["--policy", base_run, "--prompts", prompts, "-o", tmp_path / "x", "--clip-high", "-1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_eval_winrate_judges_two_policies_with_a_reward_model(base_run, prefs, prompts, tmp_path):
    from click.testing import CliRunner

    from lmforge.alignment.reward_cli import rm
    from lmforge.cli import main

    judge = tmp_path / "rm"
    assert CliRunner().invoke(rm, ["--base", str(base_run), "--data", str(prefs), "-o", str(judge), "--steps", "2",
                                   "--val-fraction", "0.25"]).exit_code == 0
    args = ["eval", "winrate", str(base_run), str(base_run), "--judge", str(judge), "--prompts", str(prompts), "--max-tokens", "6", "--limit", "5"]
    r = CliRunner().invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output.strip().splitlines()[-1])
    assert m["win_rate_a"] == 0.5 and m["mean_score_a"] == m["mean_score_b"]  # a policy against itself: every prompt ties
    wrong = CliRunner().invoke(main, ["eval", "winrate", str(base_run), str(base_run), "--judge", str(base_run), "--prompts", str(prompts)])
    assert wrong.exit_code == 1 and "not a reward model" in wrong.output


# ---- a reward model as a reward (rm:RUN) ---------------------------------------------------------
@pytest.fixture(scope="module")
def rm_run(base_run, prefs, tmp_path_factory):
    """A reward model trained for 3 steps from the tiny base (its head is no longer zero)."""
    from lmforge.alignment.reward_cli import rm

    out = tmp_path_factory.mktemp("rl-rm") / "rm"
    r = CliRunner().invoke(rm, ["--base", str(base_run), "--data", str(prefs), "-o", str(out), "--steps", "3", "--lr", "1e-2"])
    assert r.exit_code == 0, r.output
    return out


def test_a_reward_model_scores_the_rendered_conversation_in_batches(base_run, rm_run):
    from lmforge.alignment.reward import encode_response, load_base, load_reward_model
    from lmforge.alignment.rewards import resolve_reward

    _, _, tok = load_base(base_run)
    reward = resolve_reward(f"rm:{rm_run},format@0.5")
    assert reward.needs_prompt
    with pytest.raises(TypeError, match="score_batch"):
        reward("#### 5", "#### 5")  # a reward model needs the prompt
    reward.bind(tok, "cpu")
    model = reward.parts[0][1].model
    reward.bind(tok, "cpu")
    assert reward.parts[0][1].model is model  # loaded once
    convs = [[{"role": "user", "content": "what is 2 and 3"}]] * 2 + [[{"role": "user", "content": "say hello"}]]
    completions = ["so #### 5", "five", ""]
    got = reward.score_batch(convs, completions, ["#### 5"] * 3)
    rm, _ = load_reward_model(rm_run)
    alone = []
    for conv, c in zip(convs, completions):  # each conversation scored alone, unpadded
        ids = encode_response(conv, c or " ", tok, rm.config.block_size).ids
        with torch.no_grad():
            alone.append(float(rm(torch.tensor([ids]), torch.tensor([len(ids)]))))
    assert got == pytest.approx([alone[0] + 0.5, alone[1], alone[2]], abs=1e-5)
    assert len(set(alone)) == 3 and reward.errors == {}


def test_a_reward_model_reward_refuses_other_runs_and_tokenizers(base_run, rm_run):
    from types import SimpleNamespace

    from lmforge.alignment.reward import load_base
    from lmforge.alignment.rewards import RewardSpecError, resolve_reward

    _, _, tok = load_base(base_run)
    with pytest.raises(RewardSpecError, match="no such run"):
        resolve_reward(f"rm:{rm_run}-missing")
    with pytest.raises(RewardSpecError, match="name the reward-model run"):
        resolve_reward("rm:")
    with pytest.raises(RewardSpecError, match="not a reward model"):
        resolve_reward(f"rm:{base_run}").bind(tok, "cpu")
    with pytest.raises(RewardSpecError, match="another tokenizer than the policy's"):
        resolve_reward(f"rm:{rm_run}").bind(SimpleNamespace(fingerprint="another"), "cpu")


def test_grpo_and_eval_policy_against_a_reward_model(base_run, rm_run, prompts, tmp_path):
    from lmforge.cli import main

    out = tmp_path / "rl"
    r = rl_cli(["--policy", base_run, "--prompts", prompts, "--reward-fn", f"rm:{rm_run}", "--prompts-per-step", 2, "-G", 2,
                "--max-new-tokens", 4, "-o", out, "--steps", 1])
    assert r.exit_code == 0, r.output
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert math.isfinite(row["reward"]) and row["reward"] != 0 and row["reward_errors"] == 0
    wrong = rl_cli(["--policy", base_run, "--prompts", prompts, "--reward-fn", f"rm:{base_run}", "-o", tmp_path / "x", "--steps", 1])
    assert wrong.exit_code == 1 and "--reward-fn rm:" in wrong.output and "not a reward model" in wrong.output
    r = CliRunner().invoke(main, ["eval", "policy", str(base_run), "--prompts", str(prompts), "--reward", f"rm:{rm_run}",
                                  "--samples", "2", "--max-tokens", "4", "--limit", "3", "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output.strip().splitlines()[-1])
    assert m["prompts_evaluated"] == 3 and math.isfinite(m["greedy_reward"]) and math.isfinite(m["sampled_reward"])


def test_grpo_kl_defaults_to_zero_and_a_run_that_recorded_another_resumes_with_it(base_run, prompts, odd_length_reward, tmp_path):
    from lmforge.alignment.rl import kl_default
    from lmforge.train.trainer import load_model

    assert kl_default("grpo", None) == 0.0 and kl_default("ppo", None) == 0.04
    args = ["--policy", base_run, "--prompts", prompts, "--reward-fn", odd_length_reward, "--prompts-per-step", 2, "-G", 2,
            "--max-new-tokens", 4, "--lr", 1e-3]
    new = tmp_path / "new"
    assert rl_cli([*args, "-o", new, "--steps", 1]).exit_code == 0
    assert json.loads((new / "settings.json").read_text())["settings"]["--kl-coef"] == 0.0
    old = tmp_path / "old"  # as every run made before the default changed: 0.04 recorded
    assert rl_cli([*args, "-o", old, "--steps", 1, "--beta", 0.04]).exit_code == 0
    r = rl_cli([*args, "-o", old, "--steps", 2])  # no --kl-coef: the run's own 0.04, not the new default
    assert r.exit_code == 0 and "resumed at 1" in r.output, r.output
    assert load_model(old)[1]["config"]["kl_coef"] == 0.04


def test_a_step_whose_advantages_are_all_zero_warns(base_run, prompts, odd_length_reward, tmp_path, caplog):
    """Every completion cut at --max-new-tokens 1 and masked: rewards may differ, but no token
    carries an advantage; or every group ties: either way the step is announced as learning nothing."""
    import logging

    with caplog.at_level(logging.WARNING, logger="lmforge.alignment.rl"):
        r = rl_cli(["--policy", base_run, "--prompts", prompts, "--reward-fn", odd_length_reward, "--prompts-per-step", 2, "-G", 4,
                    "--max-new-tokens", 1, "--mask-truncated", "-o", tmp_path / "rl", "--steps", 2, "--num-iterations", 2,
                    "--epsilon-high", 0.28])
    assert r.exit_code == 0, r.output
    warned = [rec.getMessage() for rec in caplog.records if "learns nothing" in rec.getMessage()]
    assert len(warned) == 2  # one per step (a 1-token completion that ends the turn is rare in an untrained model)


def test_reward_spec_makes_rm_paths_absolute_at_the_edge(tmp_path, monkeypatch):
    """`--reward-fn rm:runs/rm` is recorded with the run's absolute path, like every path flag."""
    from lmforge.cli import RewardSpec

    monkeypatch.chdir(tmp_path)
    spec = RewardSpec().convert("gsm8k, rm:runs/rm@0.5,format@0.1,pkg.mod:fn", None, None)
    assert spec == f"gsm8k,rm:{tmp_path / 'runs' / 'rm'}@0.5,format@0.1,pkg.mod:fn"


def test_grpo_rollout_logprobs_are_the_samplers_own_and_the_mask_is_the_completion(base_run, odd_length_reward, monkeypatch):
    """What GRPO's ratios and advantages rest on: the trainer's teacher-forced log-probability of
    every sampled token equals the sampler's (left-padded, shared-prompt KV cache), and the mask
    covers each completion exactly, its end token included, nothing of the prompt or padding."""
    import lmforge.train.sample as sample
    from lmforge.alignment.data import PromptExample
    from lmforge.alignment.dpo import token_logprobs
    from lmforge.alignment.reward import load_base
    from lmforge.alignment.rl import RLConfig, RLTrainer

    policy, _, tok = load_base(base_run)
    cfg = RLConfig(method="grpo", policy=str(base_run), prompts="-", out_dir="-", reward_fn=odd_length_reward,
                   prompts_per_step=2, group_size=3, max_new_tokens=6, temperature=0.7)
    trainer = RLTrainer(cfg, policy, tok)
    seen, draw = [], sample._sample
    monkeypatch.setattr(sample, "_sample", lambda last, t, k, g: (seen.append(torch.log_softmax(last / t, -1)), draw(last, t, k, g))[1])
    examples = [PromptExample([{"role": "user", "content": q}], "#### 1") for q in ("hi", "a much longer question than the first")]
    ro = trainer.rollout(examples)
    logp = token_logprobs(trainer.policy, ro.ids, tok.vocab_size, cfg.temperature)
    for i, n in enumerate(ro.completion_lens):
        first = int(ro.mask[i].nonzero()[0])  # logp[:, t] scores ids[:, t + 1]
        assert ro.mask[i].tolist() == [0.0] * first + [1.0] * n + [0.0] * (ro.mask.size(1) - first - n)
        for j in range(n):
            token = ro.ids[i, first + 1 + j]
            assert seen[j][i, token].item() == pytest.approx(logp[i, first + j].item(), abs=1e-4)
