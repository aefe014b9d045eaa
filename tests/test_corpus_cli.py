"""The corpus commands end to end: output contract, bad input, resume after kill -9."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zstandard
from click.testing import CliRunner

from conftest import shared_path
from lmforge.cli import main

LMFORGE = [sys.executable, "-m", "lmforge.cli"]


def read_docs(out: Path) -> dict[str, list[dict]]:
    """Every output file's documents, by file name relative to OUT."""
    result = {}
    for path in sorted(out.rglob("*.jsonl.zst")):
        data = zstandard.ZstdDecompressor().stream_reader(open(path, "rb")).read()
        result[str(path.relative_to(out))] = [orjson.loads(line) for line in data.splitlines()]
    return result


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    return result


@pytest.fixture(scope="module")
def sample_warc(tmp_path_factory) -> Path:
    from lmforge.pipelines.sample import write_sample_warc

    path = tmp_path_factory.mktemp("sample") / "sample.warc.gz"
    write_sample_warc(path)
    return path


def test_extract_output_contract(tmp_path):
    warc = shared_path("warc", "cc-main-2020-34-multilingual.warc.gz")
    result = run_cli("corpus", "extract", str(warc), "-o", str(tmp_path / "out"), "--no-progress")
    assert result.exit_code == 0, result.output
    docs = [d for file in read_docs(tmp_path / "out").values() for d in file]
    assert len(docs) >= 10
    for doc in docs:
        assert doc["id"] and doc["text"].strip()
        meta = doc["metadata"]
        assert meta["url"].startswith("http")
        assert meta["date"]
        assert isinstance(meta["language"], str) and 0.0 <= meta["language_score"] <= 1.0
    languages = {d["metadata"]["language"] for d in docs}
    assert {"zh", "ru", "de"} <= languages
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["summary"]["kept"] == len(docs)
    assert stats["summary"]["records"] > stats["summary"]["pages"]
    assert "kept" in result.output and "records" in result.output  # the summary table


def test_missing_input_is_a_clear_error(tmp_path):
    result = run_cli("corpus", "extract", str(tmp_path / "nope.warc.gz"), "-o", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert "nope.warc.gz" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_nonsense_flags_are_clear_errors(tmp_path, sample_warc):
    result = run_cli("corpus", "extract", str(sample_warc), "-o", str(tmp_path / "o"), "--tasks", "0")
    assert result.exit_code == 2 and "--tasks" in result.output
    result = run_cli("corpus", "extract", str(sample_warc), "-o", str(tmp_path / "o"), "--min-language-score", "3")
    assert result.exit_code != 0 and "min-language-score" in result.output
    assert isinstance(result.exception, SystemExit)


def test_bad_archives_do_not_crash(tmp_path):
    bad = shared_path("warc", "bad")
    files = sorted(str(p) for p in bad.iterdir())
    result = run_cli("corpus", "extract", *files, "-o", str(tmp_path / "out"), "--no-progress", "--tasks", "2")
    assert result.exit_code == 0, result.output
    assert isinstance(result.exception, (SystemExit, type(None)))
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["summary"]["records"] > 0


def test_rerun_with_other_settings_is_refused(tmp_path, sample_warc):
    out = tmp_path / "out"
    assert run_cli("corpus", "extract", str(sample_warc), "-o", str(out), "--no-progress").exit_code == 0
    result = run_cli("corpus", "extract", str(sample_warc), "-o", str(out), "--no-progress", "--languages", "de")
    assert result.exit_code != 0 and "other settings" in result.output and "--languages none (asked [de])" in result.output
    result = run_cli("corpus", "extract", str(sample_warc), "-o", str(out), "--no-progress", "--languages", "de", "--overwrite")
    assert result.exit_code == 0, result.output


def test_extraction_timeout_is_counted(tmp_path, sample_warc, monkeypatch):
    from lmforge.corpus import extract
    from lmforge.corpus.pipeline import CorpusConfig, run_corpus

    real = extract.extract_main_text_with_info

    def sometimes_hangs(html, url=None, fallback=True, html_utf8=None):
        if "mirror0" in (url or ""):
            while True:  # a pathological page
                pass
        return real(html, url, fallback, html_utf8)

    monkeypatch.setattr(extract, "extract_main_text_with_info", sometimes_hangs)
    config = CorpusConfig(inputs=[str(sample_warc)], output_dir=str(tmp_path / "out"), mode="extract", extract_timeout=0.2)
    stats = run_corpus(config, progress=False)
    assert stats["summary"]["dropped"]["extract_timeout"] == 4  # mirror0 holds 4 of the 12 copies
    assert stats["summary"]["kept"] > 30


def test_extraction_timeout_is_not_swallowed_by_the_extractor(tmp_path, sample_warc, monkeypatch):
    """A page that hangs inside the fast path (behind the extractor's own `except Exception`)
    is cut off and counted, not turned into an empty fast-path result and then handed to the
    trafilatura fallback with no limit."""
    from lmforge.corpus import extract
    from lmforge.corpus.pipeline import CorpusConfig, run_corpus

    real, real_info = extract._extract, extract.extract_main_text_with_info
    page_url, fallbacks = [""], []

    def remember_url(html, url=None, fallback=True, html_utf8=None):
        page_url[0] = url or ""
        return real_info(html, url, fallback, html_utf8)

    def sometimes_hangs(html):
        if "mirror0" in page_url[0]:
            while True:  # a pathological page, inside the extractor's own `except Exception`
                pass
        return real(html)

    monkeypatch.setattr(extract, "_extract", sometimes_hangs)
    monkeypatch.setattr(extract, "extract_main_text_with_info", remember_url)
    monkeypatch.setattr(extract, "_trafilatura", lambda html: fallbacks.append(page_url[0]) or None)
    config = CorpusConfig(inputs=[str(sample_warc)], output_dir=str(tmp_path / "out"), mode="extract", extract_timeout=0.2)
    stats = run_corpus(config, progress=False)
    assert stats["summary"]["dropped"]["extract_timeout"] == 4  # mirror0 holds 4 of the 12 copies
    assert not [url for url in fallbacks if "mirror0" in url]


def test_extraction_timeout_counts_cpu_not_wall_time(tmp_path, sample_warc, monkeypatch):
    """A page that waits (a loaded machine's stretched wall time) is not cut off; only one that
    burns more CPU than the limit is: the same command writes the same documents at any load."""
    import time

    from lmforge.corpus import extract
    from lmforge.corpus.pipeline import CorpusConfig, run_corpus

    real = extract.extract_main_text_with_info

    def slow_wall_clock(html, url=None, fallback=True, html_utf8=None):
        if "mirror0" in (url or ""):
            time.sleep(0.3)  # longer than the limit in wall time, ~0 CPU
        return real(html, url, fallback, html_utf8)

    monkeypatch.setattr(extract, "extract_main_text_with_info", slow_wall_clock)
    config = CorpusConfig(inputs=[str(sample_warc)], output_dir=str(tmp_path / "out"), mode="extract", extract_timeout=0.2)
    stats = run_corpus(config, progress=False)
    assert "extract_timeout" not in stats["summary"]["dropped"]


@pytest.fixture(scope="module")
def resume_case(tmp_path_factory, sample_warc):
    """Inputs for the kill -9 tests (8 files, 8 tasks) and the output of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("resume")
    inputs = []
    names = ["cc-main-2020-34-multilingual.warc.gz", "wget-2024-homepages.warc.gz", "clueweb09-ja-near-duplicates.warc.gz"]
    for copy in range(2):
        for src in [sample_warc, *(shared_path("warc", name) for name in names)]:
            link = folder / f"{copy}-{src.name}"
            link.symlink_to(src)
            inputs.append(str(link))
    args = ["corpus", "process", *inputs, "--tasks", "8", "--workers", "1", "--no-progress", "--languages", "en,ja,zh,de"]
    reference = folder / "reference"
    done = run_cli(*args, "-o", str(reference))  # in this process: only the killed runs need one of their own
    assert done.exit_code == 0, done.output
    return args, read_docs(reference)


def _wait_for(condition, proc, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("tasks_done", [0, 3, 6])
def test_kill_9_and_resume_gives_the_uninterrupted_output(tmp_path, resume_case, tasks_done):
    """SIGKILL the whole process group once `tasks_done` tasks have finished and the next
    one has started writing, then run the same command again."""
    args, expected = resume_case
    out = tmp_path / "resumed"
    completions = out / ".lmforge" / "process" / "completions"
    proc = subprocess.Popen([*LMFORGE, *args, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def mid_task():
        done = len(list(completions.glob("*"))) if completions.exists() else 0
        writing = (out / "documents" / f"{done:05d}.jsonl.zst.tmp").exists()
        return done >= tasks_done and writing

    interrupted = _wait_for(mid_task, proc)
    if interrupted:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    again = run_cli(*args, "-o", str(out))  # the same command line
    assert again.exit_code == 0, again.output

    assert read_docs(out) == expected
    assert not list(out.rglob("*.tmp"))
    assert interrupted, f"the run finished before task {tasks_done} started writing"


def test_process_filters_count_reasons_and_keep_rejected(tmp_path, sample_warc):
    out = tmp_path / "out"
    result = run_cli("corpus", "process", str(sample_warc), "-o", str(out), "--keep-rejected", "--no-progress")
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())["summary"]
    # planted: 6 pages in other languages, 1 blocklisted URL, 10 spam pages
    assert stats["dropped"]["language_not_wanted"] >= 6
    assert stats["dropped"]["url_banned_word"] == 1
    assert sum(stats["dropped"].values()) >= 17
    rejected = read_docs(out / "rejected")
    assert sum(len(docs) for docs in rejected.values()) == sum(stats["dropped"].values())
    for name, docs in rejected.items():
        assert all(doc["metadata"]["reason"] == name.split("/")[0] for doc in docs)
    kept = [d for docs in read_docs(out / "documents").values() for d in docs]
    assert len(kept) == stats["kept"] and all(d["metadata"]["language"] == "en" for d in kept)


def test_process_thresholds_are_flags(tmp_path, sample_warc):
    strict = tmp_path / "strict"
    result = run_cli("corpus", "process", str(sample_warc), "-o", str(strict), "--no-progress",
                     "--gopher-quality-min-doc-words", "100000")
    assert result.exit_code == 0, result.output
    assert json.loads((strict / "stats.json").read_text())["summary"]["kept"] == 0
    result = run_cli("corpus", "process", str(sample_warc), "-o", str(tmp_path / "x"), "--gopher-quality-min-doc-words", "many")
    assert result.exit_code == 2 and "many" in result.output


def test_process_with_dedup_removes_the_planted_mirrors(tmp_path, sample_warc):
    out = tmp_path / "out"
    result = run_cli("corpus", "process", str(sample_warc), "-o", str(out), "--dedup", "--no-progress")
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dedup"]["near_duplicates_removed"] == 12
    deduped = [d for docs in read_docs(out / "dedup" / "documents").values() for d in docs]
    assert len(deduped) == stats["summary"]["kept"] - 12
    # which: 11 of the 12 planted mirrors, each clustered with its original; copy/6 drops a
    # paragraph (exact word 5-gram Jaccard 0.71 < 0.8) and stays; and one real page that is 98%
    # another (pydoc's execution-model topic inside naming-and-binding)
    import zstandard

    clusters = [json.loads(line) for f in sorted((out / "dedup" / "clusters").glob("*.zst"))
                for line in zstandard.ZstdDecompressor().stream_reader(f.open("rb")).read().splitlines()]
    grouped = [[c["survivor"]["url"], *(r["url"] for r in c["removed"])] for c in clusters]
    mirrors = sorted(u.rsplit("/", 1)[1] for g in grouped for u in g if "/copy/" in u)
    assert mirrors == sorted(str(i) for i in range(12) if i != 6)
    assert all(r["similarity"] >= 0.8 for c in clusters for r in c["removed"])


def test_root_help_lists_every_command_without_importing_them():
    """`lmforge --help` reads the one-line summaries, so it imports neither torch nor datatrove."""
    import subprocess
    import sys

    from lmforge.cli import COMMANDS, SUMMARIES

    assert set(SUMMARIES) == set(COMMANDS)
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from lmforge.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(r.output)\n"
        "print('IMPORTED', sorted(m for m in ('torch', 'datatrove', 'tokenizers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "IMPORTED []" in out
    for name in COMMANDS:
        assert f"  {name} " in out


def test_url_output_is_refused_not_written_as_a_local_folder(tmp_path, monkeypatch):
    """`-o s3://bucket/out` used to exit 0 and write a local folder named `s3:`. A URL is now
    written (tests/test_s3.py) where the command takes one and its fsspec filesystem is
    installed; else it is refused by name, with what to install, before any work."""
    import importlib.util

    from click.testing import CliRunner

    from lmforge.cli import main

    monkeypatch.chdir(tmp_path)
    warc = tmp_path / "crawl.warc.gz"
    warc.write_bytes(b"")
    if importlib.util.find_spec("gcsfs") is None:
        result = CliRunner().invoke(main, ["corpus", "extract", str(warc), "-o", "gs://bucket/out", "--no-progress"])
        assert result.exit_code == 2 and "gs://bucket/out: reading and writing gs:// needs" in result.output
        assert "pip install gcsfs" in result.output
    result = CliRunner().invoke(main, ["corpus", "extract", str(warc), "-o", "https://example.org/out", "--no-progress"])
    assert result.exit_code == 2 and "https:// is read-only" in result.output
    result = CliRunner().invoke(main, ["corpus", "dedup", "nosuchfs://bucket/docs", "-o", "out"])
    assert result.exit_code == 2 and "nosuchfs:// is not a filesystem fsspec knows" in result.output
    result = CliRunner().invoke(main, ["tokenizer", "train", str(warc), "-o", "s3://bucket/tok"])
    assert result.exit_code == 2 and "this command does not read or write URLs" in result.output
    assert not list(tmp_path.glob("*:"))
