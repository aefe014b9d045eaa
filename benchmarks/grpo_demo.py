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

Usage (after `lmforge demo -o demo-out`, or any demo folder with a finished `sft` run):
  nice -n 10 python benchmarks/grpo_demo.py --demo demo-out                 # the grid, 3 seeds
  python benchmarks/grpo_demo.py --demo demo-out --only demo --seeds 0 1 2 3 4
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

#: name -> changes to the demo's GRPO settings (`lmforge.pipelines.demo.GRPO`)
GRID = {
    "demo": {},
    "old (lr 1e-4, beta 0.04)": {"lr": 1e-4, "kl_coef": 0.04, "prompts_per_step": 8, "group_size": 8, "steps": 30},
    "lr 3e-5": {"lr": 3e-5},
    "lr 1e-5": {"lr": 1e-5},
    "T 0.7": {"temperature": 0.7},
    "4x16": {"prompts_per_step": 4, "group_size": 16},
    "beta 0": {"kl_coef": 0.0},
}

FIGURES = ("greedy_reward", "greedy_accuracy_formatted", "sampled_formatted", "sampled_accuracy_formatted", "sampled_reward")


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def evaluate(run: Path, heldout: Path, seed: int, samples: int) -> dict:
    from lmforge.alignment.evaluate import evaluate_policy

    m = evaluate_policy(run, heldout, samples=samples, temperature=1.0, max_tokens=GRPO["max_new_tokens"], seed=seed).metrics
    return {k: m[k] for k in FIGURES}


def grpo_run(sft: Path, prompts: Path, out: Path, changes: dict, seed: int, threads: int) -> float:
    from lmforge.alignment.rl import RLConfig, train_rl

    settings = {"steps": AlignSteps().rl, **GRPO, **changes, "checkpoint_every": 0}
    cfg = RLConfig(method="grpo", policy=str(sft), prompts=str(prompts), out_dir=str(out), seed=seed, threads=threads,
                   overwrite=True, **settings)
    t = time.perf_counter()
    train_rl(cfg)
    return time.perf_counter() - t


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--demo", required=True, help="a `lmforge demo` output folder with a finished sft run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", choices=list(GRID), help="these settings of the grid only")
    p.add_argument("--eval-samples", type=int, default=HELDOUT_SAMPLES, help="sampled answers per held-out question")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", help="folder for the GRPO runs [a temporary one]")
    args = p.parse_args(argv)
    import torch

    from lmforge.pipelines.sample_align import ALIGN_FILES, write_align_data

    torch.set_num_threads(args.threads)
    demo = Path(args.demo)
    data = demo / "align-data"
    if not all((data / f"{name}.jsonl").exists() for name in ALIGN_FILES):
        write_align_data(data)
    prompts, heldout, sft = data / "prompts.jsonl", data / "heldout.jsonl", demo / "sft"
    work = Path(args.work or tempfile.mkdtemp(prefix="grpo-demo-"))
    say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    before = {seed: evaluate(sft, heldout, seed, args.eval_samples) for seed in args.seeds}
    say("sft", {k: round(mean_se([before[s][k] for s in args.seeds])[0], 3) for k in FIGURES})
    results = {}
    for name in args.only or list(GRID):
        per_seed = []
        for seed in args.seeds:
            secs = grpo_run(sft, prompts, work / f"{name.replace(' ', '_')}-{seed}", GRID[name], seed, args.threads)
            after = evaluate(work / f"{name.replace(' ', '_')}-{seed}", heldout, seed, args.eval_samples)
            per_seed.append({"seed": seed, "seconds": round(secs, 1), **after})
            say(name, seed, {k: round(v, 3) for k, v in per_seed[-1].items()})
        row = {"changes": GRID[name], "seeds": per_seed}
        for k in FIGURES:
            row[k] = mean_se([r[k] for r in per_seed])
            row[k + "_gain"] = mean_se([r[k] - before[r["seed"]][k] for r in per_seed])
        row["seconds"] = mean_se([r["seconds"] for r in per_seed])[0]
        results[name] = row

    sft_row = {k: mean_se([before[s][k] for s in args.seeds]) for k in FIGURES}
    head = ["setting", "s/run", "greedy EM", "greedy acc|fmt", "sampled fmt", "sampled acc|fmt", "gain acc|fmt (SE)"]
    lines = [head, ["sft (before)", "", *(f"{sft_row[k][0]:.3f}" for k in FIGURES[:4]), ""]]
    for name, row in results.items():
        gain, se = row["sampled_accuracy_formatted_gain"]
        lines.append([name, f"{row['seconds']:.0f}", *(f"{row[k][0]:.3f}±{row[k][1]:.3f}" for k in FIGURES[:4]),
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
