"""End-to-end `corpus process` against the same pipeline built from stock datatrove steps.

Both run the FineWeb recipe over the same WARC files (the shared Common Crawl / wget /
ClueWeb archives and the demo sample, each repeated `--copies` times so a run lasts long
enough to time), through datatrove's LocalPipelineExecutor with the same tasks and workers:

    stock:   WarcReader -> URLFilter -> Trafilatura(favour_precision) -> LanguageFilter(en, 0.65)
             -> GopherRepetition -> GopherQuality -> C4Quality(no terminal punct) -> FineWebQuality
             -> JsonlWriter
    lmforge: lmforge corpus process (same steps, same thresholds, same LID-176 model)

The stock LanguageFilter downloads lid.176.bin at run time; here it is given the same local
lid.176.ftz lmforge uses, so both do the same work offline. Speed is HTML pages in / wall
second of the executor's run (block lists, models and all), each run in a fresh process so
that nothing one run loaded (URL lists, models) warms the next. Runs: one core (1 task,
1 worker) and `--workers 2` (2 tasks, 2 workers).
Prints one JSON line last; `--json` prints only that.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
SHARED = Path(os.environ.get("LMFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
WARCS = ["cc-main-2020-34-multilingual.warc.gz", "wget-2024-homepages.warc.gz", "clueweb09-ja-near-duplicates.warc.gz",
         "iana-2014-with-revisits.warc.gz", "cc-main-2024-22-whirlwind.warc.gz"]


def make_inputs(folder: Path, copies: int) -> list[str]:
    from lmforge.pipelines.sample import write_sample_warc

    sample = folder / "sample.warc.gz"
    write_sample_warc(sample)
    sources = [SHARED / "warc" / name for name in WARCS if (SHARED / "warc" / name).exists()] + [sample]
    inputs = folder / "inputs"
    inputs.mkdir()
    for c in range(copies):
        for src in sources:
            link = inputs / f"{c:03d}-{src.name}"
            os.symlink(src.resolve(), link)
    return sorted(str(p) for p in inputs.iterdir())


def stock_pipeline(input_dir: str, output_dir: str):
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, LanguageFilter, URLFilter)
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    language_filter = LanguageFilter(languages=["en"], language_threshold=0.65)
    language_filter.model = LocalFT176(["en"])
    return [
        WarcReader(input_dir, glob_pattern="*.warc.gz"),
        URLFilter(),
        Trafilatura(favour_precision=True, timeout=1.0),
        language_filter,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        JsonlWriter(output_dir),
    ]


def _local_ft176():
    from datatrove.utils.lid import FT176LID

    class _LocalFT176(FT176LID):
        """datatrove's LID-176 with the local model instead of a download."""

        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                from lmforge.corpus.langid import default_model_path

                self._model = _FastText(str(default_model_path()))
            return self._model

    return _LocalFT176


def LocalFT176(languages):  # noqa: N802 - a class factory keeps datatrove imports out of module import
    return _local_ft176()(languages)


def run_stock(input_dir: str, out: Path, tasks: int, workers: int) -> float:
    from datatrove.executor import LocalPipelineExecutor

    from lmforge.corpus.execution import _quiet_task_logger

    executor = LocalPipelineExecutor(stock_pipeline(input_dir, str(out / "docs")), tasks=tasks, workers=workers,
                                     logging_dir=str(out / "logs"), start_method="fork")
    start = time.perf_counter()
    with _quiet_task_logger(False):
        executor.run()
    return time.perf_counter() - start


def run_lmforge(inputs: list[str], out: Path, tasks: int, workers: int) -> tuple[float, dict]:
    from lmforge.corpus.execution import ExecutorConfig
    from lmforge.corpus.pipeline import CorpusConfig, run_corpus

    config = CorpusConfig(inputs=inputs, output_dir=str(out), mode="process", languages=["en"], min_language_score=0.65)
    start = time.perf_counter()
    stats = run_corpus(config, ExecutorConfig(tasks=tasks, workers=workers), progress=False)
    return time.perf_counter() - start, stats


def count_stock_kept(out: Path) -> int:
    import gzip

    return sum(1 for p in (out / "docs").rglob("*.jsonl.gz") for _ in gzip.open(p, "rt"))


def run_one(kind: str, inputs_dir: str, out: str, tasks: int, workers: int) -> None:
    """Child process: run one pipeline and print its seconds (and stats) as JSON."""
    inputs = sorted(str(p) for p in Path(inputs_dir).iterdir())
    if kind == "lmforge":
        seconds, stats = run_lmforge(inputs, Path(out), tasks, workers)
        print(json.dumps({"seconds": seconds, "pages": stats["summary"]["pages"], "kept": stats["summary"]["kept"]}))
    else:
        seconds = run_stock(inputs_dir, Path(out), tasks, workers)
        print(json.dumps({"seconds": seconds, "kept": count_stock_kept(Path(out))}))


def fresh_run(kind: str, inputs_dir: str, out: Path, tasks: int, workers: int) -> dict:
    import subprocess

    cmd = [sys.executable, __file__, "--one", kind, inputs_dir, str(out), str(tasks), str(workers)]
    # the inputs are the same pages --copies times: lmforge's class-string cache, which serves a
    # crawl's pages of one site, would make every copy after the first cheaper; keep it per page
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LMFORGE_CLASS_CACHE": "0"})
    if proc.returncode != 0:
        sys.exit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import logging

    # the stock URLFilter's tldextract tries to fetch the public suffix list and logs each
    # failure with a traceback before falling back to its bundled snapshot (offline here)
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=4, help="times each WARC file is repeated")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--one", nargs=5, metavar=("KIND", "INPUTS", "OUT", "TASKS", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, inputs_dir, out, tasks, workers = args.one
        run_one(kind, inputs_dir, out, int(tasks), int(workers))
        return
    if not SHARED.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    result: dict = {"benchmark": "corpus_process", "copies": args.copies}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = make_inputs(tmp, args.copies)
        input_dir = str(Path(inputs[0]).parent)
        for label, tasks, workers in (("1_core", 1, 1), ("2_workers", 2, 2)):
            lm = fresh_run("lmforge", input_dir, tmp / f"lm-{label}", tasks, workers)
            stock = fresh_run("stock", input_dir, tmp / f"stock-{label}", tasks, workers)
            pages = lm["pages"]
            result[label] = {
                "pages": pages,
                "lmforge_seconds": round(lm["seconds"], 2),
                "stock_seconds": round(stock["seconds"], 2),
                "lmforge_docs_per_s": round(pages / lm["seconds"], 1),
                "stock_datatrove_docs_per_s": round(pages / stock["seconds"], 1),
                "speedup": round(stock["seconds"] / lm["seconds"], 2),
                "lmforge_kept": lm["kept"],
                "stock_kept": stock["kept"],
            }
            if not args.json:
                print(f"{label}: {json.dumps(result[label])}", file=sys.stderr)
    result["lmforge_docs_per_s"] = result["1_core"]["lmforge_docs_per_s"]
    result["stock_datatrove_docs_per_s"] = result["1_core"]["stock_datatrove_docs_per_s"]
    result["speedup_1_core"] = result["1_core"]["speedup"]
    result["speedup_2_workers"] = result["2_workers"]["speedup"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
