"""`lmforge demo`: every stage that has landed, end to end, on built-in samples.

The demo is a pipeline recipe (`demo_recipe`, run by `lmforge.pipelines.runner` exactly as
`lmforge pipeline run` runs a TOML recipe) on inputs it writes itself, offline: a crawl sample
(`lmforge.pipelines.sample`, or `--warc` names a real crawl file), the Python reference
manual's topics as a second source, the other sources of the LLaMA mixture read from their own
formats by `corpus ingest` (`INGEST`: small real samples shipped in lmforge/pipelines/samples/,
whose NOTICE.md says where each comes from), and the sums of `lmforge.pipelines.sample_align`
for alignment (OUT/align-data/).

Pretraining: corpus process -> dedup -> corpus ingest (code, wikipedia, books, arxiv,
stackexchange) -> tokenizer -> shards -> mix (LLaMA's proportions) -> train (`tiny`) -> sample.
Alignment: SFT from the pretrained run (OUT/sft), a reward model (OUT/rm), DPO (OUT/dpo) and
GRPO with the verifiable `####` reward (OUT/rl), each from the SFT run, then one `chat` answer
from the GRPO policy. Every policy is also scored the same way, on 100 held-out questions
(`align-data/heldout.jsonl`, one phrasing of each sum, never a GRPO prompt): greedy answers, the
share whose `####` number is right (`greedy_exact_match`); SFT and GRPO also by 4 sampled
answers each at T=1, format compliance apart from accuracy among formatted answers, each
figure ± its standard error. 100 is every sum once: at a greedy exact match of 0.93 its SE is
0.026, and the 400 sampled answers give format and accuracy SEs of 0.02-0.03; more held-out
phrasings would leave GRPO fewer than its 200 prompts.

It ends with `report.json` (a row per stage) and a table; OUT/pipeline.json is the pipeline's
own record. A rerun into the same folder skips what is finished and resumes what is not.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

from lmforge.documents import write_bytes_atomic


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


#: pretraining steps of the demo's `tiny` GPT (4,096 tokens a step; ~15 s on 2 CPU cores)
TRAIN_STEPS = 60


@dataclass(frozen=True)
class AlignSteps:
    """Optimizer steps of the demo's alignment stages (and of its pretraining, `train`), and
    how many held-out questions score a policy.

    The defaults are what `lmforge demo` runs (~50 s on 2 CPU cores with AVX512-BF16, GRPO the
    longest at ~20 s; the pretraining stages before them take ~12 s); `QUICK` (~10 s) is for
    the test suite. Its 20 pretraining steps still lower the loss by ~2.5 (8.3 -> ~5.6 at
    step 20 of the 60-step run; the test asks for 1.0).
    """

    sft: int = 300
    rm: int = 150
    dpo: int = 100
    rl: int = 30
    eval_prompts: int = 100
    train: int = TRAIN_STEPS


QUICK = AlignSteps(sft=60, rm=20, dpo=10, rl=4, eval_prompts=16, train=20)

#: the samples `corpus ingest` reads in the demo (package data; NOTICE.md there names origins and licences)
SAMPLES = Path(__file__).parent / "samples"

#: the demo's mixture: LLaMA's table (CommonCrawl 67%, C4 15%, GitHub 4.5%, Wikipedia 4.5%,
#: Books 4.5%, arXiv 2.5%, StackExchange 2%) with the crawl as "web" and the reference manual in
#: C4's place; each ingested source: (name, `corpus ingest` source, inputs under SAMPLES, weight).
#: Every source keeps 2 documents or more: the validation split (`val_tokens`) takes a source's
#: last whole documents and refuses to take all of them.
#: They are not deduplicated again (`dedup = false`): code drops exact duplicates and books
#: near-duplicates as they are read, and a `corpus dedup` per source would cost ~5 s each.
#: Measured (full `lmforge demo`, 2 busy CPU cores) against the mix before them (web 70%,
#: reference 30%; `ALIGN_NOTES` were measured on it), before -> with them: SFT greedy exact match
#: 0.93 -> 0.88 (± 0.03 each), sampled accuracy among formatted answers 0.70 -> 0.73, GRPO's
#: gain -0.4 SE both, DPO held-out accuracy 0.86 -> 0.89, RM 0.78 -> 0.76; the chat answer
#: became right. (A first try with 10% code from click's sdist had cost SFT's sampled accuracy
#: 0.70 -> 0.38.) The new run used one OpenMP thread, the old one two.
WEB_WEIGHT, REFERENCE_WEIGHT = 0.67, 0.15
INGEST = (
    ("code", "code", ["code/*.tar.gz"], 0.045),  # iniconfig, six (MIT) and html2text (GPL-3.0: dropped by the licence filter)
    ("wikipedia", "wikipedia", ["wikipedia"], 0.045),  # 26 pages of gensim's enwiki test dump: 5 articles
    ("books", "books", ["books"], 0.045),  # two Gutenberg editions of Alice (one a near-duplicate) and As You Like It
    ("arxiv", "arxiv", ["arxiv"], 0.025),  # emcee's paper (arXiv:1202.3665) and george's
    ("stackexchange", "stackexchange", ["stackexchange"], 0.02),  # Posts.xml rows of cstheory meta and stackoverflow.com
)


def demo_recipe(out: Path, inputs: list[str], reference: Path, align_files: dict[str, Path] | None, *, workers: int = 1,
                languages: list[str] | None = None, align: AlignSteps = AlignSteps()) -> dict:
    """The demo as a pipeline recipe (the same tables a TOML recipe has): the crawl (67%), the
    reference texts (15%) and the `INGEST` sources (LLaMA's proportions) into a `tiny` GPT,
    then, with `align_files`, SFT from it and a reward model, DPO and GRPO from the SFT run.
    Each alignment setting's measured reason is in `ALIGN_NOTES`."""
    recipe = {
        "pipeline": {"output": str(out), "workers": max(1, workers)},
        "corpus": {"inputs": list(inputs), "languages": list(languages if languages is not None else ["en"]), "keep_rejected": True},
        "dedup": {},
        "ingest": [{"name": name, "source": source, "inputs": [str(SAMPLES / x) for x in inputs], "weight": weight, "dedup": False}
                   for name, source, inputs, weight in INGEST],
        "tokenizer": {"vocab_size": 4096, "min_frequency": 2},
        "shards": {"frame_tokens": 4096},
        "mix": {"budget": align.train * 4096, "val_tokens": 2000, "web_weight": WEB_WEIGHT,
                "source": [{"name": "reference", "documents": str(reference), "weight": REFERENCE_WEIGHT}]},
        "train": {"preset": "tiny", "steps": align.train, "eval_every": align.train // 2, "eval_tokens": 2048,
                  "checkpoint_every": align.train // 2},
    }
    if align_files is not None:
        half = lambda n: max(1, n // 2)  # noqa: E731
        recipe.update({
            "sft": {"data": [str(align_files["sft"])], "steps": align.sft, "batch_size": 32, "lr": 3e-3, "warmup": 10,
                    "val_fraction": 0.05, "eval_every": 0, "checkpoint_every": half(align.sft)},
            "rm": {"data": str(align_files["preferences"]), "steps": align.rm, "batch_size": 16, "lr": 3e-4, "warmup": 10,
                   "val_fraction": 0.1, "eval_every": 0, "checkpoint_every": half(align.rm)},
            "dpo": {"data": str(align_files["preferences"]), "steps": align.dpo, "batch_size": 16, "beta": 0.1, "lr": 3e-5,
                    "warmup": 10, "val_fraction": 0.1, "eval_every": 0, "checkpoint_every": half(align.dpo)},
            "rl": {"method": "grpo", "prompts": str(align_files["prompts"]), "steps": align.rl, **GRPO, "checkpoint_every": half(align.rl)},
        })
    return recipe


#: the demo's GRPO settings besides its steps (`AlignSteps.rl`); `benchmarks/grpo_demo.py` varies them
GRPO = {"prompts_per_step": 8, "group_size": 8, "max_new_tokens": 24, "lr": 3e-5, "kl_coef": 0.04, "temperature": 1.0}
#: sampled answers (T=1) per held-out question when a policy is scored
HELDOUT_SAMPLES = 4


#: why the alignment stages run with the settings above (measured on 2 CPU cores; the figures
#: of the default run are those of SFT, RM and DPO in bf16 autocast, as `--precision auto` picks
#: on a CPU with AVX512-BF16; the comparisons between settings were measured in float32)
ALIGN_NOTES = {
    "sft": "32 conversations a step at lr 3e-3 for 300 steps (~16 s in bf16, ~30 s in float32): the `tiny` model "
           "then states 94% of the sums right (greedy; 95% in float32); the same run stopped at 200 steps got 53%.",
    "rm": "Bradley-Terry on (right, wrong) answer pairs; held-out pairwise accuracy ~0.73 (0.76 in float32; chance 0.5).",
    "dpo": "lr 3e-5: held-out accuracy 0.80, greedy exact match 0.94 -> 0.90 (all float32: 0.875, 0.95 -> 0.85). "
           "At 1e-4 the accuracy was lower (0.825 against 0.875) and the chosen answers lost so much likelihood that "
           "the greedy exact match fell to 0.63.",
    "rl": "8 prompts x 8 samples a step at lr 3e-5, KL beta 0.04, T=1, 30 steps; scored on 100 held-out questions "
          "(greedy, and 4 samples each at T=1), mean +- SE over 3 seeds (benchmarks/grpo_demo.py): greedy exact match "
          "0.93 -> 0.93 +- 0.01, sampled answers formatted 0.67 -> 0.80 +- 0.02, accuracy among formatted 0.68 -> 0.67 "
          "+- 0.02 (gain -0.01: none), sampled exact match 0.45 -> 0.53 +- 0.01. At lr 1e-4 greedy exact match fell "
          "to 0.87 +- 0.01 (formatted 0.93, accuracy among formatted 0.64); training at T 0.7 (0.93, 0.81, 0.66) or 4 prompts x 16 "
          "samples (0.92, 0.79, 0.67) changed nothing. So within the demo's ~30 steps GRPO teaches the `####` format, not the sums. "
          "Not a bug (benchmarks/grpo_diagnose.py, teacher-forced on its training prompts: P(right sum | form) 0.593 -> "
          "0.591, p(choosing `####`) 0.66 -> 0.80): a batch's gradient is mostly format (with `gsm8k`) or noise (without), "
          "and a step along it harms the sums by curvature before it sharpens them (see benchmarks/grpo_demo.py).",
}


def run_demo(output_dir: str | Path, warc: list[str] | None = None, workers: int = 1, progress: bool = True,
             languages: list[str] | None = None, align: AlignSteps = AlignSteps()) -> dict:
    """Run the demo into `output_dir` (resuming where an earlier demo stopped)."""
    from lmforge.pipelines.recipe import parse_recipe
    from lmforge.pipelines.runner import run_pipeline

    out = Path(output_dir).absolute()  # the recipe is based here: its paths must not be joined to a relative folder twice
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
    reference = _reference_documents(out / "reference" / "pydoc-topics.jsonl")
    align_files = None
    if _has("torch"):
        from lmforge.pipelines.sample_align import ALIGN_FILES, write_align_data

        folder = out / "align-data"
        align_files = {name: folder / f"{name}.jsonl" for name in ALIGN_FILES}
        if not all(p.exists() for p in align_files.values()):
            write_align_data(folder)
    else:  # without torch (pip install 'lmforge[train]') the demo stops at the mixture
        report["note"] = "torch is not installed: training and alignment skipped"

    recipe = parse_recipe(demo_recipe(out, inputs, reference, align_files, workers=workers, languages=languages, align=align), base=out)
    if not _has("torch"):
        for stage in ("train", "sft", "rm", "dpo", "rl"):
            recipe.stages.pop(stage, None)
    record = run_pipeline(recipe, progress=progress, log=lambda msg: None)
    report["pipeline"] = str(out / "pipeline.json")
    report["stages"].update(_pretraining_rows(out, record["stages"]))
    if align_files is not None:
        stages, report["align_data"] = _align_rows(out, record["stages"], align_files, align)
        report["stages"].update(stages)

    report["seconds"] = round(time.perf_counter() - started, 2)
    write_bytes_atomic(out / "report.json", json.dumps(report, indent=2, default=str).encode())
    return report


def _seconds(entry: dict) -> float:
    return round(float(entry.get("seconds", 0.0)), 2)


def _pretraining_rows(out: Path, stages: dict) -> dict:
    """The report rows of the pretraining stages, from what the pipeline wrote."""
    rows = {}
    corpus = json.loads((out / "corpus" / "stats.json").read_text())
    rows["corpus process"] = {"seconds": _seconds(stages["corpus"]), **corpus["summary"]}
    dedup = json.loads((out / "dedup" / "stats.json").read_text())
    keys = ("documents_in", "exact_duplicates_removed", "near_duplicates_removed", "clusters", "kept")
    rows["corpus dedup"] = {"seconds": _seconds(stages["dedup"]), **{k: dedup[k] for k in keys if k in dedup}}
    if "ingest" in stages:
        rows["corpus ingest"] = {"seconds": _seconds(stages["ingest"]), **_ingest_figures(out)}

    from lmforge.tokenize.tokenizer import Tokenizer

    tok = Tokenizer.load(out / "tokenizer")
    example = "The quick brown fox jumps over the lazy dog, 12345 times."
    ids = tok.encode(example)
    rows["tokenizer train"] = {"seconds": _seconds(stages["tokenizer"]), "vocab_size": tok.vocab_size, "fingerprint": tok.fingerprint[:16],
                               "example_tokens": len(ids), "example_bytes_per_token": round(len(example.encode()) / len(ids), 2)}
    names = ["web", "reference"] + [name for name, *_ in INGEST if (out / "shards" / name / "source.json").exists()]
    sources = {name: json.loads((out / "shards" / name / "source.json").read_text()) for name in names}
    rows["shards build"] = {"seconds": _seconds(stages["shards"]), **{f"{name}_tokens": src.get("tokens") for name, src in sources.items()},
                            "bytes_on_disk": sum(src.get("bytes", 0) for src in sources.values())}
    rows["mix build"] = {"seconds": _seconds(stages["mix"]), **stages["mix"]["figures"]}
    if "train" in stages:
        from lmforge.train.sample import sample_text

        run = out / "train"
        metrics = _metrics(run)
        info = {"seconds": _seconds(stages["train"]), "steps": metrics[-1]["step"], "loss": _first_last(metrics, "loss")}
        info.update({f"val_bpb_{k.split('/', 1)[1]}": round(v, 3) for k, v in metrics[-1].items() if k.startswith("val_bpb/")})
        rows["train"] = {**info, **_note(stages["train"])}
        t = time.perf_counter()
        prompt = "An exception is"
        text = sample_text(run, prompt, max_tokens=24, temperature=0.8, top_k=50, seed=0)
        rows["sample"] = {"seconds": round(time.perf_counter() - t, 2), "text": (prompt + text).replace("\n", " ")[:160]}
    return rows


def _ingest_figures(out: Path) -> dict:
    """Per ingested source: "records in -> kept (dropped: reason n, ...)", from its stats.json."""
    figures = {}
    for name, *_ in INGEST:
        summary = json.loads((out / "ingest" / name / "raw" / "stats.json").read_text())["summary"]
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(summary.get("dropped", {}).items(), key=lambda kv: -kv[1]))
        figures[name] = f"{summary.get('records', 0)} in -> {summary.get('kept', 0)} kept" + (f" (dropped: {dropped})" if dropped else "")
    return figures


def _note(entry: dict) -> dict:
    """"trained earlier" (a finished run the pipeline skipped) or "resumed at step N"."""
    figures = entry.get("figures", {})
    if figures.get("trained_earlier"):
        return {"note": "trained earlier"}
    if figures.get("resumed_from"):
        return {"note": f"resumed at step {figures['resumed_from']}"}
    return {}


def _reference_documents(path: Path) -> Path:
    """A second source for the mixture: the Python reference manual's topics (shipped with
    CPython) as whole documents, standing in for the books/reference part of a real mix."""
    import orjson
    from pydoc_data.topics import topics

    if not path.exists():
        write_bytes_atomic(path, b"".join(orjson.dumps({"id": f"pydoc/{key}", "text": topics[key], "metadata": {"source": "pydoc_data"}}) + b"\n"
                                          for key in sorted(topics)))
    return path


# ---- alignment ------------------------------------------------------------------------------
def _align_rows(out: Path, stages: dict, files: dict[str, Path], steps: AlignSteps) -> tuple[dict, dict]:
    """The report rows of SFT, reward model, DPO and GRPO (run by the pipeline), each policy
    scored on the same held-out questions (`heldout.jsonl`, never a GRPO prompt), then one chat
    answer; and what the built-in data holds."""
    data = {"folder": str(files["sft"].parent), **{name: _count_lines(p) for name, p in files.items()}}
    heldout = files["heldout"]
    n = min(steps.eval_prompts, data["heldout"])
    data["eval_prompts"] = n

    rows = {"align sft": _sft_row(out, stages["sft"])}
    sft = _exact_match(out / "sft", heldout, n, rows["align sft"], samples=HELDOUT_SAMPLES)
    rows["align rm"] = _preference_row(out / "rm", stages["rm"], 2)
    rows["align dpo"] = _preference_row(out / "dpo", stages["dpo"], 3)
    _exact_match(out / "dpo", heldout, n, rows["align dpo"])
    rows["align rl"] = _grpo_row(out / "rl", stages["rl"])
    rl = _exact_match(out / "rl", heldout, n, rows["align rl"], samples=HELDOUT_SAMPLES)
    rows["align rl"].update(_before_after(sft, rl, n))
    rows["chat"] = _chat_stage(out / "rl")
    return rows, data


#: the GRPO row's held-out figures, SFT -> GRPO: metric key -> label
BEFORE_AFTER = {"greedy_reward": "greedy_exact_match", "greedy_formatted": "greedy_formatted",
                "greedy_accuracy_formatted": "greedy_accuracy_formatted", "sampled_formatted": "sampled_formatted",
                "sampled_accuracy_formatted": "sampled_accuracy_formatted"}


def _before_after(sft: dict, rl: dict, n: int) -> dict:
    """SFT -> GRPO on the held-out questions, each figure ± its standard error; and the gain in
    accuracy among formatted sampled answers in standard errors of the difference (the goal:
    more than 2, with greedy exact match not falling)."""
    row = {"heldout": f"{n} questions never seen by GRPO; greedy and {HELDOUT_SAMPLES} samples each at T=1"}
    for key, label in BEFORE_AFTER.items():
        row[label] = f"{sft[key]:.2f} ± {sft[key + '_se']:.2f} -> {rl[key]:.2f} ± {rl[key + '_se']:.2f}"
    key = "sampled_accuracy_formatted"
    gain, se = rl[key] - sft[key], (sft[key + "_se"] ** 2 + rl[key + "_se"] ** 2) ** 0.5
    row["sampled_accuracy_gain"] = f"{gain:+.3f} ({gain / se:.1f} SE)" if se > 0 else f"{gain:+.3f}"
    return row


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _metrics(run: Path) -> list[dict]:
    from lmforge.train.trainer import METRICS, read_metrics

    return read_metrics(run / METRICS)


def _first_last(rows: list[dict], key: str, digits: int = 2, k: int = 1) -> str:
    """'first -> last' of a metric over a run's rows; with k > 1, each end is a mean of k rows."""
    vals = [r[key] for r in rows if r.get(key) is not None]
    k = max(1, min(k, len(vals) // 2))
    return f"{sum(vals[:k]) / k:.{digits}f} -> {sum(vals[-k:]) / k:.{digits}f}"


def _sft_row(out: Path, entry: dict) -> dict:
    """SFT: loss first -> last, held-out loss of the base model -> the fine-tuned one."""
    from lmforge.train.trainer import latest_checkpoint, read_state

    run = out / "sft"
    rows = _metrics(run)
    base_val, val = read_state(latest_checkpoint(run)).get("base_val_loss"), rows[-1].get("val_loss/heldout")
    return {"seconds": _seconds(entry), **_note(entry), "steps": rows[-1]["step"], "loss": _first_last(rows, "loss"),
            "val_loss": f"{base_val:.2f} -> {val:.2f}" if base_val is not None and val is not None else val}


def _preference_row(run: Path, entry: dict, digits: int) -> dict:
    """Reward model or DPO: loss first -> last, held-out pairwise accuracy and margin."""
    rows = _metrics(run)
    return {"seconds": _seconds(entry), **_note(entry), "steps": rows[-1]["step"], "loss": _first_last(rows, "loss", digits),
            "heldout_accuracy": round(rows[-1]["val_accuracy"], 3), "heldout_margin": round(rows[-1]["val_margin"], digits)}


#: GRPO's reported mean reward is averaged over this many steps at each end: one step's 64
#: samples leave its mean a standard error of ~0.06
REWARD_WINDOW = 5


def _grpo_row(run: Path, entry: dict) -> dict:
    """GRPO, rewarded by the exact `####` number of each sampled answer: mean reward (averaged
    over `REWARD_WINDOW` steps at each end) and the final KL to the SFT policy."""
    rows = _metrics(run)
    window = max(1, min(REWARD_WINDOW, len(rows) // 2))
    return {"seconds": _seconds(entry), **_note(entry), "steps": rows[-1]["step"], "samples_per_step": GRPO["prompts_per_step"] * GRPO["group_size"],
            "mean_reward": _first_last(rows, "reward", 2, window), "reward_averaged_over": f"{window} steps at each end",
            "kl": round(rows[-1]["kl"], 4)}


def _exact_match(run: Path, prompts: Path, n: int, row: dict, samples: int = 0) -> dict:
    """`lmforge eval policy` (greedy, and `samples` answers each at T=1, on the first `n`
    prompts): the share of greedy answers whose `####` number is right (`greedy_exact_match`
    in the stage's report `row`, whose seconds include the evaluation's), beside format
    compliance and accuracy among formatted answers."""
    from lmforge.alignment.evaluate import evaluate_policy

    t = time.perf_counter()
    m = evaluate_policy(run, prompts, samples=samples, temperature=1.0, max_tokens=GRPO["max_new_tokens"], limit=n).metrics
    row["greedy_exact_match"] = round(m["greedy_reward"], 3)
    row["seconds"] = round(row.get("seconds", 0.0) + time.perf_counter() - t, 2)
    return m


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
