"""`lmforge demo`: every stage that has landed, end to end, on a built-in crawl sample.

The sample is written by `lmforge.pipelines.sample` (offline, deterministic), or `--warc`
names a real crawl file (local path or URL). Each stage writes into one folder and the
demo ends with `report.json` and a table of what each stage did.

Pretraining: corpus process -> dedup -> tokenizer -> shards -> mix -> train (`tiny`) -> sample.
Alignment, on the sums of `lmforge.pipelines.sample_align` (written to OUT/align-data/):
SFT from the pretrained run (OUT/sft), a reward model (OUT/rm), DPO (OUT/dpo) and GRPO with
the verifiable `####` reward (OUT/rl), each from the SFT run, then one `chat` answer from
the GRPO policy. Every policy is also scored the same way: greedy answers to a fixed set of
the prompts, the share whose `####` number is right (`greedy_exact_match`).

A rerun into the same folder skips what is finished and resumes what is not: the pretraining
run and every alignment run continue from their newest checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class AlignSteps:
    """Optimizer steps of the demo's alignment stages, and how many prompts score a policy.

    The defaults are what `lmforge demo` runs (~75 s on 2 CPU cores, SFT the longest at ~30 s;
    the pretraining stages before them take ~12 s); `QUICK` (~10 s) is for the test suite.
    """

    sft: int = 300
    rm: int = 150
    dpo: int = 100
    rl: int = 30
    eval_prompts: int = 100


QUICK = AlignSteps(sft=60, rm=20, dpo=10, rl=4, eval_prompts=16)


def run_demo(output_dir: str | Path, warc: list[str] | None = None, workers: int = 1, progress: bool = True,
             languages: list[str] | None = None, align: AlignSteps = AlignSteps()) -> dict:
    """Run the demo into `output_dir` (resuming where an earlier demo stopped)."""
    from lmforge.corpus.execution import ExecutorConfig
    from lmforge.corpus.pipeline import CorpusConfig, run_corpus

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"output_dir": str(out), "stages": {}}
    started = time.perf_counter()

    if warc:
        inputs = list(warc)
        report["input"] = inputs
    else:
        from lmforge.pipelines.sample import write_sample_warc

        sample = out / "sample" / "lmforge-sample.warc.gz"
        planted = write_sample_warc(sample) if not sample.exists() else None
        inputs = [str(sample)]
        report["input"] = {"sample": str(sample), "planted": planted}

    t = time.perf_counter()
    executor = ExecutorConfig(tasks=max(1, workers), workers=max(1, workers))
    corpus_cfg = CorpusConfig(inputs=inputs, output_dir=str(out / "corpus"), mode="process",
                              languages=languages if languages is not None else ["en"], keep_rejected=True)
    stats = run_corpus(corpus_cfg, executor, progress=progress)
    report["stages"]["corpus process"] = {"seconds": round(time.perf_counter() - t, 2), **stats["summary"]}

    if _has("lmforge.corpus.dedup"):
        from lmforge.corpus import dedup

        t = time.perf_counter()
        dstats = dedup.run_dedup([str(out / "corpus" / "documents")], str(out / "dedup"), dedup.DedupConfig(), executor)
        keys = ("documents_in", "exact_duplicates_removed", "near_duplicates_removed", "clusters", "kept")
        report["stages"]["corpus dedup"] = {"seconds": round(time.perf_counter() - t, 2), **{k: dstats[k] for k in keys if k in dstats}}

    if _has("lmforge.tokenize.train"):
        report["stages"].update(_tokenizer_stage(out))
    if _has("lmforge.tokenize.mix") and (out / "tokenizer").exists():
        report["stages"].update(_shards_and_mix_stage(out))
    if _has("torch") and _has("lmforge.train.trainer") and (out / "mix.json").exists():
        report["stages"].update(_train_stage(out, progress=progress))
    if _has("torch") and _has("lmforge.alignment.rl") and (out / "run" / "checkpoints").is_dir():
        stages, report["align_data"] = _align_stages(out, align, progress=progress)
        report["stages"].update(stages)

    report["seconds"] = round(time.perf_counter() - started, 2)
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, default=str))
    tmp.replace(out / "report.json")
    return report


def _tokenizer_stage(out: Path) -> dict:
    """Train the demo tokenizer on the deduplicated crawl and the reference source."""
    from lmforge.tokenize.train import TrainConfig, train_tokenizer

    source = out / "dedup" if (out / "dedup" / "documents").exists() else out / "corpus"
    t = time.perf_counter()
    reference = _reference_documents(out / "reference" / "pydoc-topics.jsonl")
    result = train_tokenizer([str(source), str(reference)], str(out / "tokenizer"), TrainConfig(vocab_size=4096, min_frequency=2))
    tok = result.tokenizer
    example = "The quick brown fox jumps over the lazy dog, 12345 times."
    ids = tok.encode(example)
    return {"tokenizer train": {
        "seconds": round(time.perf_counter() - t, 2),
        "vocab_size": tok.vocab_size,
        "fingerprint": tok.fingerprint[:16],
        "example_tokens": len(ids),
        "example_bytes_per_token": round(len(example.encode()) / len(ids), 2),
    }}


def _reference_documents(path: Path) -> Path:
    """A second source for the mixture: the Python reference manual's topics (shipped with
    CPython) as whole documents, standing in for the books/reference part of a real mix."""
    import orjson
    from pydoc_data.topics import topics

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            for key in sorted(topics):
                f.write(orjson.dumps({"id": f"pydoc/{key}", "text": topics[key], "metadata": {"source": "pydoc_data"}}) + b"\n")
        tmp.replace(path)
    return path


def _shards_and_mix_stage(out: Path) -> dict:
    """Token shards of the crawl and of a reference source, and a 70/30 mixture manifest."""
    from lmforge.tokenize.build import BuildConfig, build_shards
    from lmforge.tokenize.mix import MixRecipe, SourceSpec, build_manifest

    t = time.perf_counter()
    crawl = out / "dedup" if (out / "dedup" / "documents").exists() else out / "corpus"
    web = build_shards([str(crawl)], str(out / "tokenizer"), str(out / "shards" / "web"), BuildConfig(frame_tokens=4096))
    ref_docs = _reference_documents(out / "reference" / "pydoc-topics.jsonl")
    ref = build_shards([str(ref_docs)], str(out / "tokenizer"), str(out / "shards" / "reference"), BuildConfig(frame_tokens=4096))
    tokens = web.source.get("tokens", 0) + ref.source.get("tokens", 0)
    shards_info = {"seconds": round(time.perf_counter() - t, 2), "web_tokens": web.source.get("tokens"),
                   "reference_tokens": ref.source.get("tokens"), "bytes_on_disk": web.source.get("bytes", 0) + ref.source.get("bytes", 0)}
    t = time.perf_counter()
    recipe = MixRecipe(
        sources=[SourceSpec("web", str(out / "shards" / "web"), weight=0.7),
                 SourceSpec("reference", str(out / "shards" / "reference"), weight=0.3)],
        budget=max(1, 2 * tokens),
        val_tokens=2000,
    )
    manifest = build_manifest(recipe, out / "mix.json")
    mix_info = {"seconds": round(time.perf_counter() - t, 2), "budget": manifest.budget}
    for source in manifest.sources:
        mix_info[f"{source.name}"] = f"weight {source.weight:.2f}, {source.tokens:,} tokens, {source.epochs:.2f} epochs"
    return {"shards build": shards_info, "mix build": mix_info}


def _train_stage(out: Path, steps: int = 60, progress: bool = True) -> dict:
    """Pretrain the `tiny` GPT on the mixture for a few steps (~15 s on 2 CPU cores), then
    sample from it with the KV cache. A rerun resumes from the newest checkpoint."""
    from lmforge.train.sample import sample_text
    from lmforge.train.trainer import TrainConfig, train

    run = out / "run"
    t = time.perf_counter()
    info = _finished_run(run, steps)
    if info is None:
        resume = (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir())
        cfg = TrainConfig(manifest=str(out / "mix.json"), out_dir=str(run), preset="tiny", steps=steps,
                          eval_every=steps // 2, eval_tokens=2048, checkpoint_every=steps // 2, resume=resume)
        summary = train(cfg)
        info = {"steps": summary.steps, "parameters": summary.params,
                "loss": f"{summary.first_loss:.2f} -> {summary.loss:.2f}" if summary.first_loss else round(summary.loss, 2)}
        for source, val in summary.val.items():
            if isinstance(val, dict) and val.get("bpb") is not None:
                info[f"val_bpb_{source}"] = round(val["bpb"], 3)
    info = {"seconds": round(time.perf_counter() - t, 2), **info}
    t = time.perf_counter()
    prompt = "An exception is"
    text = sample_text(run, prompt, max_tokens=24, temperature=0.8, top_k=50, seed=0)
    return {"train": info, "sample": {"seconds": round(time.perf_counter() - t, 2), "text": (prompt + text).replace("\n", " ")[:160]}}


def _finished_run(run: Path, steps: int) -> dict | None:
    """What an earlier demo's finished run reached (from its metrics), or None."""
    import json

    metrics = run / "metrics.jsonl"
    if not metrics.exists():
        return None
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not rows or rows[-1].get("step", 0) < steps:
        return None
    info = {"steps": rows[-1]["step"], "loss": f"{rows[0]['loss']:.2f} -> {rows[-1]['loss']:.2f}", "note": "trained earlier"}
    info.update({f"val_bpb_{k.split('/', 1)[1]}": round(v, 3) for k, v in rows[-1].items() if k.startswith("val_bpb/")})
    return info


def _scalars(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str))}


# ---- alignment ------------------------------------------------------------------------------
def _align_stages(out: Path, steps: AlignSteps, progress: bool = True) -> tuple[dict, dict]:
    """SFT, reward model, DPO and GRPO on the built-in sums, then one chat answer (see the
    module docstring); returns the stages' report rows and what the data holds. A finished
    stage is not trained again: its row is read back from its metrics and checkpoints."""
    from lmforge.pipelines.sample_align import write_align_data

    folder = out / "align-data"
    files = {name: folder / f"{name}.jsonl" for name in ("sft", "preferences", "prompts")}
    if not all(p.exists() for p in files.values()):
        write_align_data(folder)
    data = {"folder": str(folder), **{name: _count_lines(p) for name, p in files.items()}}
    prompts = _eval_prompts(files["prompts"], steps.eval_prompts)
    data["eval_prompts"] = len(prompts)

    stages = {"align sft": _sft_stage(out, files["sft"], steps.sft, progress)}
    sft_match = _exact_match(out / "sft", prompts, stages["align sft"])
    stages["align rm"] = _rm_stage(out, files["preferences"], steps.rm, progress)
    stages["align dpo"] = _dpo_stage(out, files["preferences"], steps.dpo, progress)
    _exact_match(out / "dpo", prompts, stages["align dpo"])
    stages["align rl"] = _grpo_stage(out, files["prompts"], steps.rl, progress)
    rl_match = _exact_match(out / "rl", prompts, stages["align rl"])
    stages["align rl"]["greedy_exact_match"] = f"{sft_match:.2f} -> {rl_match:.2f}"
    stages["chat"] = _chat_stage(out / "rl")
    return stages, data


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _run_stage(run: Path, steps: int, label: str, fields: tuple[str, ...], progress: bool, start) -> dict:
    """Call `start(resume, on_step)` unless `run` already holds a checkpoint at `steps`;
    `resume` is True when it holds an earlier one. Returns seconds and a note on what it did."""
    from lmforge.alignment.reward import Progress
    from lmforge.train.trainer import latest_checkpoint, read_state

    t = time.perf_counter()
    ckpt = latest_checkpoint(run)
    done = None if ckpt is None else int(read_state(ckpt)["step"])
    if done is not None and done >= steps:
        return {"seconds": 0.0, "note": "trained earlier"}
    if progress:
        with Progress(label, steps, fields) as on_step:
            start(done is not None, on_step)
    else:
        start(done is not None, None)
    return {"seconds": round(time.perf_counter() - t, 2), **({"note": f"resumed at step {done}"} if done is not None else {})}


def _metrics(run: Path) -> list[dict]:
    from lmforge.train.trainer import METRICS, read_metrics

    return read_metrics(run / METRICS)


def _first_last(rows: list[dict], key: str, digits: int = 2, k: int = 1) -> str:
    """'first -> last' of a metric over a run's rows; with k > 1, each end is a mean of k rows."""
    vals = [r[key] for r in rows if r.get(key) is not None]
    k = max(1, min(k, len(vals) // 2))
    return f"{sum(vals[:k]) / k:.{digits}f} -> {sum(vals[-k:]) / k:.{digits}f}"


def _sft_stage(out: Path, data: Path, steps: int, progress: bool) -> dict:
    """Supervised fine-tuning of the pretrained demo model on the answers.

    32 conversations a step at lr 3e-3 for 300 steps (~30 s): the `tiny` model then states 95%
    of the sums right (greedy); the same run stopped at 200 steps got 53%."""
    from lmforge.alignment.sft import SFTConfig, sft
    from lmforge.train.trainer import latest_checkpoint, read_state

    run = out / "sft"
    info = _run_stage(run, steps, "sft", ("loss",), progress, lambda resume, on_step: sft(SFTConfig(
        base=str(out / "run"), data=[str(data)], out_dir=str(run), steps=steps, batch_size=32, lr=3e-3, warmup=10,
        val_fraction=0.05, eval_every=0, checkpoint_every=max(1, steps // 2), resume=resume), on_step))
    rows = _metrics(run)
    base_val, val = read_state(latest_checkpoint(run)).get("base_val_loss"), rows[-1].get("val_loss/heldout")
    return {**info, "steps": rows[-1]["step"], "loss": _first_last(rows, "loss"),
            "val_loss": f"{base_val:.2f} -> {val:.2f}" if base_val is not None and val is not None else val}


def _rm_stage(out: Path, data: Path, steps: int, progress: bool) -> dict:
    """A reward model from the SFT run: Bradley-Terry on (right, wrong) answer pairs; the
    held-out pairwise accuracy is measured at the end (chance: 0.5)."""
    from lmforge.alignment.reward import RewardConfig, train_reward_model

    run = out / "rm"
    info = _run_stage(run, steps, "rm", ("loss", "accuracy", "val_accuracy"), progress,
                      lambda resume, on_step: train_reward_model(RewardConfig(
                          base=str(out / "sft"), data=str(data), out_dir=str(run), steps=steps, batch_size=16, lr=3e-4,
                          warmup=10, val_fraction=0.1, eval_every=0, checkpoint_every=max(1, steps // 2), resume=resume), on_step))
    rows = _metrics(run)
    return {**info, "steps": rows[-1]["step"], "loss": _first_last(rows, "loss"),
            "heldout_accuracy": round(rows[-1]["val_accuracy"], 3), "heldout_margin": round(rows[-1]["val_margin"], 2)}


def _dpo_stage(out: Path, data: Path, steps: int, progress: bool) -> dict:
    """DPO from the SFT run (also its frozen reference) on the same pairs.

    lr 3e-5, measured here: held-out accuracy 0.875, greedy exact match 0.95 -> 0.85. At 1e-4
    the accuracy was lower (0.825) and the chosen answers lost so much likelihood too that the
    greedy exact match fell to 0.63 (DPO lowers both answers' likelihood, the rejected more)."""
    from lmforge.alignment.dpo import DPOConfig, train_dpo

    run = out / "dpo"
    info = _run_stage(run, steps, "dpo", ("loss", "accuracy", "val_accuracy"), progress,
                      lambda resume, on_step: train_dpo(DPOConfig(
                          policy=str(out / "sft"), data=str(data), out_dir=str(run), steps=steps, batch_size=16, beta=0.1,
                          lr=3e-5, warmup=10, val_fraction=0.1, eval_every=0, checkpoint_every=max(1, steps // 2),
                          resume=resume), on_step))
    rows = _metrics(run)
    return {**info, "steps": rows[-1]["step"], "loss": _first_last(rows, "loss", 3),
            "heldout_accuracy": round(rows[-1]["val_accuracy"], 3), "heldout_margin": round(rows[-1]["val_margin"], 3)}


#: GRPO's reported mean reward is averaged over this many steps at each end: one step's 64
#: samples leave its mean a standard error of ~0.06
REWARD_WINDOW = 5


def _grpo_stage(out: Path, prompts: Path, steps: int, progress: bool) -> dict:
    """GRPO from the SFT run, rewarded by the exact `####` number of each sampled answer.

    8 prompts x 8 samples a step at lr 1e-4: measured here, the mean reward rises from 0.40 to
    0.56 in 30 steps (4 x 8 a step: 0.31 -> 0.47, noisier), while the greedy exact match dips
    from 0.95 to 0.90: the updates sharpen the sampled answers and disturb a few memorised
    greedy ones. At lr 5e-4 and above the KL passed 0.2 and the reward fell."""
    from lmforge.alignment.rl import RLConfig, train_rl

    run = out / "rl"
    info = _run_stage(run, steps, "grpo", ("reward", "kl"), progress, lambda resume, on_step: train_rl(RLConfig(
        method="grpo", policy=str(out / "sft"), prompts=str(prompts), out_dir=str(run), steps=steps, prompts_per_step=8,
        group_size=8, max_new_tokens=24, lr=1e-4, kl_coef=0.04, checkpoint_every=max(1, steps // 2), resume=resume), on_step))
    rows = _metrics(run)
    window = max(1, min(REWARD_WINDOW, len(rows) // 2))
    return {**info, "steps": rows[-1]["step"], "samples_per_step": 64, "mean_reward": _first_last(rows, "reward", 2, window),
            "reward_averaged_over": f"{window} steps at each end", "kl": round(rows[-1]["kl"], 4)}


def _eval_prompts(path: Path, n: int) -> list:
    from lmforge.alignment.data import load_prompts

    return list(load_prompts(path))[:n]


def _exact_match(run: Path, prompts: list, row: dict) -> float:
    """Share of `prompts` whose greedy answer from `run` states the right `####` number;
    also written to the stage's report `row`, whose seconds include the evaluation's."""
    from lmforge.alignment.chat import load_chat_model, respond
    from lmforge.alignment.rewards import gsm8k_reward

    t = time.perf_counter()
    model, tok = load_chat_model(run)
    right = sum(gsm8k_reward(respond(model, tok, ex.prompt, max_tokens=24, temperature=0), ex.answer) for ex in prompts)
    row["greedy_exact_match"] = round(right / len(prompts), 3)
    row["seconds"] = round(row.get("seconds", 0.0) + time.perf_counter() - t, 2)
    return row["greedy_exact_match"]


#: the question `chat` asks the final policy, and its answer
CHAT_QUESTION, CHAT_ANSWER = "Leo has 7 shells and gets 5 more. How many shells does Leo have now?", "7 + 5 = 12\n#### 12"


def _chat_stage(run: Path) -> dict:
    """One greedy `lmforge chat` answer from the final policy, checked like GRPO's reward."""
    from lmforge.alignment.chat import load_chat_model, respond
    from lmforge.alignment.rewards import gsm8k_reward

    t = time.perf_counter()
    model, tok = load_chat_model(run)
    answer = respond(model, tok, [{"role": "user", "content": CHAT_QUESTION}], max_tokens=24, temperature=0)
    return {"seconds": round(time.perf_counter() - t, 2), "model": run.name, "prompt": CHAT_QUESTION,
            "answer": answer.replace("\n", " / "), "correct": gsm8k_reward(answer, CHAT_ANSWER) == 1.0}
