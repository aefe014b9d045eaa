"""`lmforge demo`: every stage that has landed, end to end, on a built-in crawl sample.

The sample is written by `lmforge.pipelines.sample` (offline, deterministic), or `--warc`
names a real crawl file (local path or URL). Each stage writes into one folder and the
demo ends with `report.json` and a table of what each stage did.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_demo(output_dir: str | Path, warc: list[str] | None = None, workers: int = 1, progress: bool = True, languages: list[str] | None = None) -> dict:
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
