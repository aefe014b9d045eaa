"""GRPO settings for `lmforge demo`, measured on held-out prompts over several seeds.

The demo's GRPO stage starts from its SFT run and trains on `align-data/prompts.jsonl` (200
questions); every policy is scored on `align-data/heldout.jsonl` (100 other questions, one
phrasing of each sum, never a GRPO prompt) by `lmforge.alignment.evaluate.evaluate_policy`:

  * greedy: exact match (the `####` number is right), format compliance, accuracy among
    formatted answers;
  * sampled: `--eval-samples` answers per question at T=1 (the temperature GRPO samples at):
    format compliance and accuracy among formatted answers. Greedy answers of the SFT policy
    are all formatted and ~93% right, so the room GRPO has is in the sampled answers (63%
    formatted, 65% of those right).

For each setting of the grid and each seed: one GRPO run (`train_rl`, the demo's settings with
the setting's changes), then its evaluation (seed-dependent sampling). The SFT policy is
scored once per seed the same way. The table gives each figure after GRPO as the mean over
seeds ± the standard error across seeds, and the gain over SFT with its standard error (the
SE of the per-seed differences), so "gain > 2 SE" is judged on seeds, not on one run.

Measured (the demo's SFT run, 30 GRPO steps, seeds 0-2, 2 busy CPU cores; mean ± SE over seeds):

  setting           greedy EM    sampled fmt  sampled acc|fmt  sampled EM   gain acc|fmt
  sft (before)      0.930        0.670        0.677            0.453
  lr 1e-4 (before)  0.873±0.009  0.929±0.012  0.635±0.006      0.590±0.003  -0.042±0.018
  lr 3e-5 (demo)    0.933±0.009  0.799±0.018  0.668±0.020      0.533±0.012  -0.009±0.002
  lr 3e-5, T 0.7    0.933±0.003  0.807±0.014  0.660±0.010      0.533±0.013  -0.017±0.011
  lr 3e-5, 4x16     0.923±0.007  0.789±0.015  0.671±0.016      0.529±0.013  -0.006±0.006
  lr 5e-5, T 0.7    0.93 (seed 0 only: 0.843 formatted, 0.668 accuracy among formatted)

No setting raised accuracy among formatted answers: the reward's gain is all format.

More updates, and rewards that do not punish a right sum for lacking `####` (the same SFT run,
90 steps at lr 3e-5 = 3x the demo's, which would add ~75 s to the demo; 2 CPU cores shared at
load 10-20, so s/run is not the demo's time):

  setting                 seeds  greedy EM    sampled fmt  sampled acc|fmt  sampled EM   gain acc|fmt
  90 steps (gsm8k)        0-2    0.933±0.009  0.908±0.003  0.664±0.017      0.603±0.014  -0.013±0.012
  90 steps, gsm8k+number  0      0.930        0.885        0.661            0.585        -0.042 (seed 0's SFT: 0.703)
  90 steps, number        0-2    0.910±0.006  0.596±0.026  0.677±0.020      0.403±0.009  -0.000±0.012
  60 steps, dr_grpo,      0-2    0.937±0.007  0.858±0.007  0.649±0.014      0.557±0.010  -0.028±0.008
    scale_rewards none (gsm8k)

(`gsm8k,number`: a right sum scores 2 with `####`, 1 without, a wrong one 0; `number` alone pays
the right sum, `####` or not, so none of the update goes to the format.) None of them sharpens
the sums at T=1. Scored without regard to the form (the `####` number, or else the last number;
800 samples on the held-out questions), the sampled sums are right 0.675 of the time for SFT,
0.653 after 90 steps of `gsm8k`, 0.658 after `gsm8k,number`: GRPO adds `####` to answers whose sums
are no better than before (SFT's unformatted samples are right as often as its formatted ones,
0.68 against 0.67), and the `number` reward's training batches (the share of right sums) go
0.71 -> 0.69 (first and last 10 steps, mean of 3 seeds) while greedy exact match slips to 0.91.
At this scale (8 x 8 samples a step, KL to SFT <= 0.02 after 90 steps) GRPO moves the policy too
little, and too noisily, to change the arithmetic: 3x the updates do not sharpen the sums. Not
run for lack of CPU time: lr 5e-5 at 90 steps (with `gsm8k` or `gsm8k,number`).

Why (no bug found; `benchmarks/grpo_diagnose.py`, sampling-free, on the same SFT run). GRPO's
machinery is right: the trainer's log-probability of every sampled token equals the sampler's
(max |diff| 4e-6 over a demo rollout: left padding, shared prompt cache, T), the mask is exactly
each completion with its end token (tests/test_rl.py checks both), the CPU kernels' GRPO
gradients equal plain autograd's (relative diff <= 2e-6), the reference is a separate frozen
copy and the optimizer holds exactly the policy's parameters. What it moves, teacher-forced on
the 200 prompts it trained on (P(content) = P(operands, sum and `####` digits all right | the
canonical form "a + b = s\\n#### s"); newline = p of the "\\n" that opens `####`):

  run                               P(content)  sum digits  newline  greedy EM (held-out)
  sft                               0.593       0.819       0.659    0.93
  demo GRPO (30 steps, lr 3e-5)     0.591       0.818       0.797    0.92
  lr 1e-4, gsm8k+number             0.582       0.808       0.905    0.86
  32 x 8 samples, number (seed 0)   0.607       0.822       0.612    0.92   held-out P(content) 0.602 (sft 0.600)
  lr 1e-4, number                   0.566       0.783       0.618    0.83
  lr 3e-4, number, block 0 and the  0.589       0.809       0.544    0.69   (greedy answers lose `####`)
    embedding frozen (the per-group figures below)

The content does not move even on the training prompts; the format does. Why, from 16 batches of
GRPO gradients at the SFT policy (8 x 8 samples each, no update):
  * with `gsm8k` the consistent part of the gradient is the format: the mean of 16 batches has
    cosine 0.96 with the gradient of log p(newline), 0.13 with that of the content;
  * without the format (`number`) a batch's gradient is noise: |mean of 16| = 0.210 against 0.214
    for pure noise; cosine with the content direction 0.10 for one batch, 0.17 / 0.22 / 0.32 / 0.45
    for the mean of 2 / 4 / 8 / 16 batches;
  * and a step can gain little before it does harm, whatever its size: Adam's first steps are sign
    steps; one sign step along a batch's gradient changes the content log-prob by +0.0010 at lr
    3e-5, -0.012 at 1e-4, -0.22 at 3e-4 (along the 16-batch mean: +0.0026, -0.009, -0.21), while a
    random sign step of the same size changes it by <= 0.0004: the harm is curvature along the
    gradient's own direction, not noise. So a higher lr loses (measured above: 1e-4 drops greedy
    EM), and more samples per step help slowly (the first-order gain of a unit sign step 45 / 73 /
    97 / 128 / 161 for the mean of 1 / 2 / 4 / 8 / 16 batches: ~sqrt of the samples).
    Measured: 4x the samples (32 prompts x 8 a step, 30 steps, lr 3e-5, `number`; ~4x GRPO's time,
    ~+60 s of demo) raise P(content) on the training prompts by 0.014 (training-batch reward 0.64 ->
    0.69, first and last 5 steps) and on the held-out questions by 0.002: nothing measurable there.
  Per parameter group (one sign step along the mean of 4 `number` batches, each group alone):
  block 0's qkv and output projections carry most of the first-order gain and of the harm (lr
  3e-4, qkv: +0.009 to first order, -0.031 measured); blocks 1-3 respond almost linearly (up to
  3e-4) but gain ~10x less per unit step; trained alone at 3e-4 they did not help either (table).
So no setting within the demo's budget meets "held-out accuracy among formatted answers up by
> 2 SE, greedy EM not lower", and the demo keeps lr 3e-5; at this model size GRPO's per-step gain
on the sums is capped by curvature, and only many more samples per step (gain ~sqrt(samples))
move it, on the training prompts first.

Usage (after `lmforge demo -o demo-out`, or any demo folder with a finished `sft` run):
  nice -n 10 python benchmarks/grpo_demo.py --demo demo-out                 # the grid, 3 seeds
  python benchmarks/grpo_demo.py --demo demo-out --only "lr 3e-5" --seeds 0 1 2 3 4
Prints a table, then one JSON line (last).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmforge.pipelines.demo import GRPO, HELDOUT_SAMPLES, AlignSteps  # noqa: E402

#: name -> changes to the demo's GRPO settings (`lmforge.pipelines.demo.GRPO`); the table marks
#: the demo's own. Measured (3 seeds each, 2 CPU cores shared with other work): see ALIGN_NOTES["rl"]
GRID = {
    "lr 1e-4 (before)": {"lr": 1e-4, "kl_coef": 0.04, "prompts_per_step": 8, "group_size": 8, "temperature": 1.0},
    "lr 3e-5": {"lr": 3e-5, "kl_coef": 0.04, "prompts_per_step": 8, "group_size": 8, "temperature": 1.0},
    "lr 3e-5, T 0.7": {"lr": 3e-5, "kl_coef": 0.04, "prompts_per_step": 8, "group_size": 8, "temperature": 0.7},
    "lr 5e-5, T 0.7": {"lr": 5e-5, "kl_coef": 0.04, "prompts_per_step": 8, "group_size": 8, "temperature": 0.7},
    "lr 3e-5, 4x16": {"lr": 3e-5, "kl_coef": 0.04, "prompts_per_step": 4, "group_size": 16, "temperature": 1.0},
    # more updates: does GRPO sharpen the sums once the format is learnt? (measured: the docstring;
    # the two lr 5e-5 rows were not run)
    "90 steps": {"steps": 90},
    "90 steps, lr 5e-5": {"steps": 90, "lr": 5e-5},
    "60 steps, dr_grpo, scale none": {"steps": 60, "loss_type": "dr_grpo", "scale_rewards": "none"},
    # a right sum without `####` scores 1 (of 2), not 0 like a wrong one (rewards.number_reward)
    "90 steps, gsm8k+number": {"steps": 90, "reward_fn": "gsm8k,number"},
    "90 steps, lr 5e-5, gsm8k+number": {"steps": 90, "lr": 5e-5, "reward_fn": "gsm8k,number"},
    # the sums only: no reward for the `####` form, so every update goes to the arithmetic
    "90 steps, number": {"steps": 90, "reward_fn": "number"},
    # 4x the samples a step (~4x GRPO's time); measured by grpo_diagnose.py only (seed 0, the docstring's "Why")
    "32x8, number": {"prompts_per_step": 32, "reward_fn": "number"},
}

FIGURES = ("greedy_reward", "greedy_accuracy_formatted", "sampled_formatted", "sampled_accuracy_formatted", "sampled_reward")


def demo_folder(path: str) -> Path:
    """A finished `lmforge demo` folder: `path` as it is when its report.json exists, else the demo is
    run into it first (`lmforge demo -o PATH`: about four minutes; it resumes), so the benchmark
    runs with no arguments as every other one does."""
    import subprocess

    demo = Path(path)
    if not (demo / "report.json").is_file():
        print(f"no finished demo in {demo}: running `lmforge demo -o {demo}` first", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "lmforge.cli", "demo", "-o", str(demo)], check=True)
    return demo


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def evaluate(run: Path, heldout: Path, seed: int, samples: int, cache: Path) -> dict:
    """The held-out figures of `run` (read back from `cache` when an earlier call wrote them)."""
    from lmforge.alignment.evaluate import evaluate_policy

    key = {"run": str(run), "seed": seed, "samples": samples}
    if cache.exists() and json.loads(cache.read_text())["key"] == key:
        return json.loads(cache.read_text())["figures"]
    m = evaluate_policy(run, heldout, samples=samples, temperature=1.0, max_tokens=GRPO["max_new_tokens"], seed=seed).metrics
    figures = {k: m[k] for k in FIGURES}
    cache.write_text(json.dumps({"key": key, "figures": figures}))
    return figures


def grpo_run(sft: Path, prompts: Path, out: Path, changes: dict, seed: int, threads: int) -> float:
    """GRPO with the demo's settings and `changes` into `out`; its seconds (a finished run with
    the same settings is kept, and its recorded seconds returned)."""
    from lmforge.alignment.rl import RLConfig, train_rl

    settings = {"steps": AlignSteps().rl, **GRPO, **changes, "checkpoint_every": 0}
    done = out / "grpo_demo.json"
    if done.exists() and json.loads(done.read_text())["settings"] == {**settings, "seed": seed}:
        return json.loads(done.read_text())["seconds"]
    cfg = RLConfig(method="grpo", policy=str(sft), prompts=str(prompts), out_dir=str(out), seed=seed, threads=threads,
                   overwrite=True, **settings)
    t = time.perf_counter()
    train_rl(cfg)
    secs = time.perf_counter() - t
    done.write_text(json.dumps({"settings": {**settings, "seed": seed}, "seconds": secs}))
    return secs


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--demo", default="demo-out", help="a `lmforge demo` output folder; one is made there first if it "
                                                      "holds no finished demo [demo-out]")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", choices=list(GRID), help="these settings of the grid only")
    p.add_argument("--eval-samples", type=int, default=HELDOUT_SAMPLES, help="sampled answers per held-out question")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", help="folder for the GRPO runs [a temporary one]")
    args = p.parse_args(argv)
    import torch

    from lmforge.pipelines.sample_align import ALIGN_FILES, write_align_data

    torch.set_num_threads(args.threads)
    demo = demo_folder(args.demo)
    data = demo / "align-data"
    if not all((data / f"{name}.jsonl").exists() for name in ALIGN_FILES):
        write_align_data(data)
    prompts, heldout, sft = data / "prompts.jsonl", data / "heldout.jsonl", demo / "sft"
    work = Path(args.work or tempfile.mkdtemp(prefix="grpo-demo-"))
    say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    work.mkdir(parents=True, exist_ok=True)
    before = {seed: evaluate(sft, heldout, seed, args.eval_samples, work / f"sft-{seed}.json") for seed in args.seeds}
    say("sft", {k: round(mean_se([before[s][k] for s in args.seeds])[0], 3) for k in FIGURES})
    results = {}
    for name in args.only or list(GRID):
        per_seed = []
        for seed in args.seeds:
            run = work / f"{''.join(c if c.isalnum() or c in '.-' else '_' for c in name)}-{seed}"
            secs = grpo_run(sft, prompts, run, GRID[name], seed, args.threads)
            after = evaluate(run, heldout, seed, args.eval_samples, run / "heldout.json")
            per_seed.append({"seed": seed, "seconds": round(secs, 1), **after})
            say(name, seed, {k: round(v, 3) for k, v in per_seed[-1].items()})
        row = {"changes": GRID[name], "seeds": per_seed}
        for k in FIGURES:
            row[k] = mean_se([r[k] for r in per_seed])
            row[k + "_gain"] = mean_se([r[k] - before[r["seed"]][k] for r in per_seed])
        row["seconds"] = mean_se([r["seconds"] for r in per_seed])[0]
        results[name] = row

    sft_row = {k: mean_se([before[s][k] for s in args.seeds]) for k in FIGURES}
    head = ["setting", "s/run", "greedy EM", "greedy acc|fmt", "sampled fmt", "sampled acc|fmt", "sampled EM", "gain acc|fmt (SE)"]
    lines = [head, ["sft (before)", "", *(f"{sft_row[k][0]:.3f}" for k in FIGURES), ""]]
    for name, row in results.items():
        gain, se = row["sampled_accuracy_formatted_gain"]
        mark = " (demo)" if {**GRPO, **row["changes"]} == GRPO else ""
        lines.append([name + mark, f"{row['seconds']:.0f}", *(f"{row[k][0]:.3f}±{row[k][1]:.3f}" for k in FIGURES),
                      f"{gain:+.3f}±{se:.3f} ({gain / se if se else float('nan'):.1f} SE)"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    print(f"held-out: {heldout} ({sum(1 for _ in open(heldout))} questions, {args.eval_samples} samples each at T=1); "
          f"seeds {args.seeds}; mean ± SE across seeds")
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)))
    out = {"heldout_questions": sum(1 for _ in open(heldout)), "eval_samples": args.eval_samples, "seeds": args.seeds,
           "demo_settings": GRPO, "sft": sft_row, "settings": results}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
