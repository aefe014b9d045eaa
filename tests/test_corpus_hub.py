"""`corpus parquet` and `corpus card`: a corpus folder as FineWeb-shaped Parquet and a Hub card."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import shared_path
from lmforge.cli import main
from lmforge.corpus.hub import COLUMNS, fineweb_row, size_category
from lmforge.documents import DocRecord, find_document_files, iter_documents

WARC = "cc-main-2020-34-multilingual.warc.gz"


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A tiny real corpus: `corpus extract` on 16 Common Crawl pages (zh, de, ru, en, nl)."""
    warc = shared_path("warc", WARC)
    out = tmp_path_factory.mktemp("hub") / "extracted"
    result = run_cli("corpus", "extract", str(warc), "-o", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    return out


def corpus_docs(corpus: Path) -> list[DocRecord]:
    return [doc for path in find_document_files([corpus]) for doc in iter_documents(path)]


def test_fineweb_row_maps_metadata_and_leaves_unknowns_null():
    doc = DocRecord("u1", "hello", {"url": "http://a.b/", "date": "2020-08-08T17:27:41Z", "source": f"/x/{WARC}",
                                    "language": "de", "language_score": 0.9, "language_evidence": "main_text"})
    row = fineweb_row(doc)
    assert list(row) == [name for name, _ in COLUMNS]
    assert row["dump"] == "CC-MAIN-2020-34" and row["file_path"] == f"/x/{WARC}"
    assert row["token_count"] is None and row["language_score"] == 0.9
    assert fineweb_row(DocRecord("u2", "x", {}))["dump"] is None
    assert size_category(16) == "n<1K" and size_category(10_000) == "10K<n<100K"


def test_parquet_round_trip_schema_row_groups_and_resume(corpus, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "hub"
    result = run_cli("corpus", "parquet", str(corpus), "-o", str(out), "--rows-per-group", "5", "--file-rows", "12", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "documents (rows)" in result.output  # the summary table
    files = sorted((out / "data").glob("*"))
    assert [f.name for f in files] == ["000_00000.parquet", "000_00001.parquet"]  # FineWeb's naming, 16 rows / 12 a file
    table = pa.concat_tables(pq.read_table(f) for f in files)
    assert [(f.name, str(f.type)) for f in table.schema] == [(n, {"float64": "double"}.get(t, t)) for n, t in COLUMNS]
    docs = corpus_docs(corpus)
    assert table.column("text").to_pylist() == [d.text for d in docs]
    assert table.column("id").to_pylist() == [d.id for d in docs]
    assert table.column("language").to_pylist() == [d.metadata["language"] for d in docs]
    assert set(table.column("dump").to_pylist()) == {"CC-MAIN-2020-34"}
    assert table.column("token_count").null_count == len(docs)  # extract counts no tokens
    meta = pq.ParquetFile(files[0]).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [5, 5, 2]
    assert meta.row_group(0).column(0).compression == "ZSTD"

    again = run_cli("corpus", "parquet", str(corpus), "-o", str(out), "--rows-per-group", "5", "--file-rows", "12", "--no-progress")
    assert again.exit_code == 0 and "already exported" in again.output
    assert not list(out.rglob("*.tmp"))
    other = run_cli("corpus", "parquet", str(corpus), "-o", str(out), "--no-progress")
    assert other.exit_code == 1 and "--rows-per-group 5 (asked 10000)" in other.output


def test_parquet_loads_with_datasets(corpus, tmp_path):
    datasets = pytest.importorskip("datasets", reason="datasets not installed (the hf extra's reference reader)")
    out = tmp_path / "hub"
    assert run_cli("corpus", "parquet", str(corpus), "-o", str(out), "--no-progress").exit_code == 0
    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    assert ds.column_names == [n for n, _ in COLUMNS]
    assert ds["id"] == [d.id for d in corpus_docs(corpus)]


def test_parquet_of_a_folder_without_documents_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("corpus", "parquet", str(tmp_path / "empty"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "no document files" in result.output and "Traceback" not in result.output


def front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, text[:200]
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed: the front matter is not parsed")
    return yaml.safe_load(match.group(1))


def test_card_front_matter_and_counts(corpus, tmp_path):
    pytest.importorskip("huggingface_hub", reason="corpus card needs huggingface_hub (the hf extra)")
    hub = tmp_path / "hub"
    assert run_cli("corpus", "parquet", str(corpus), "-o", str(hub), "--no-progress").exit_code == 0
    result = run_cli("corpus", "card", str(corpus), "-o", str(hub / "README.md"), "--license", "odc-by")
    assert result.exit_code == 0, result.output
    text = (hub / "README.md").read_text()
    meta = front_matter(text)
    stats = json.loads((corpus / "stats.json").read_text())["summary"]
    assert set(meta["language"]) == set(stats["languages"]) and meta["language"][0] == "zh"  # most documents first
    assert meta["license"] == "odc-by" and meta["size_categories"] == ["n<1K"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["configs"][0]["data_files"][0]["path"] == ["data/*.parquet"]
    assert f"| write | kept | {stats['kept']} |" in text
    assert f"| read | WARC records | {stats['records']} |" in text
    assert "| mode | extract |" in text  # the settings the run recorded
    assert f"{stats['kept']} documents" in text
    # --parquet takes the -o folder of `corpus parquet` as well as its data/
    result = run_cli("corpus", "card", str(corpus), "-o", str(tmp_path / "card.md"), "--parquet", str(hub))
    assert result.exit_code == 0, result.output
    assert front_matter((tmp_path / "card.md").read_text())["configs"][0]["data_files"][0]["path"] == ["hub/data/*.parquet"]


def test_card_defaults_to_the_corpus_folder_without_configs(corpus, tmp_path):
    pytest.importorskip("huggingface_hub", reason="corpus card needs huggingface_hub (the hf extra)")
    result = run_cli("corpus", "card", str(corpus), "-o", str(tmp_path / "card.md"))
    assert result.exit_code == 0, result.output
    meta = front_matter((tmp_path / "card.md").read_text())
    assert "configs" not in meta and meta["license"] == "other"


def test_parquet_killed_mid_file_resumes_to_the_same_output(corpus, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from lmforge.corpus import hub

    real = hub.iter_documents

    def dies_after_7(path, **kwargs):
        for i, doc in enumerate(real(path, **kwargs)):
            if i == 7:
                raise KeyboardInterrupt  # a kill in the middle of the second file
            yield doc

    config = hub.ParquetConfig(rows_per_group=2, file_rows=5)
    monkeypatch.setattr(hub, "iter_documents", dies_after_7)
    with pytest.raises(KeyboardInterrupt):
        hub.write_parquet(corpus, tmp_path / "a", config)
    # the input file's parts are renamed together when it is done: no part, no half file, no .tmp
    assert sorted(p.name for p in (tmp_path / "a" / "data").iterdir()) == []
    monkeypatch.setattr(hub, "iter_documents", real)
    resumed = hub.write_parquet(corpus, tmp_path / "a", config)
    fresh = hub.write_parquet(corpus, tmp_path / "b", config)
    assert resumed == fresh and fresh.files == 4 and fresh.row_groups == 10  # 16 rows: 5+5+5+1, groups 2+2+1
    for name in sorted(p.name for p in (tmp_path / "b" / "data").iterdir()):
        assert pq.read_table(tmp_path / "a" / "data" / name).equals(pq.read_table(tmp_path / "b" / "data" / name))


def test_extract_format_parquet_writes_what_corpus_parquet_writes_and_later_stages_read_it(tmp_path):
    """`corpus extract --format parquet` = `corpus extract` + `corpus parquet`, row for row;
    dedup, the card and tokenizer training read the Parquet documents folder.

    Without the trafilatura fallback: its `deduplicate=True` keeps a process-wide cache, so a
    second extraction of the same pages in one process (this test's) drops segments it saw."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    warc, out, jsonl = str(shared_path("warc", WARC)), tmp_path / "pq", tmp_path / "jsonl"
    for folder, fmt in ((jsonl, "jsonl"), (out, "parquet")):
        result = run_cli("corpus", "extract", warc, "-o", str(folder), "--format", fmt, "--no-extract-fallback", "--no-progress")
        assert result.exit_code == 0, result.output
    assert [p.name for p in (out / "documents").iterdir()] == ["00000_00000.parquet"]  # no .tmp left
    assert run_cli("corpus", "parquet", str(jsonl), "-o", str(tmp_path / "hub"), "--no-progress").exit_code == 0
    direct = pq.read_table(out / "documents" / "00000_00000.parquet")
    converted = pa.concat_tables(pq.read_table(f) for f in sorted((tmp_path / "hub" / "data").glob("*.parquet")))
    assert direct.schema == converted.schema and direct.num_rows == 16
    assert direct.to_pylist() == converted.to_pylist()

    result = run_cli("corpus", "extract", warc, "-o", str(out), "--no-extract-fallback", "--no-progress")
    assert result.exit_code != 0 and "--format" in result.output  # a rerun in another format is refused by name
    result = run_cli("corpus", "dedup", str(out), "-o", str(tmp_path / "dedup"), "--exact", "--no-near")
    assert result.exit_code == 0, result.output
    result = run_cli("tokenizer", "train", str(out), "-o", str(tmp_path / "tok"), "--vocab-size", "300", "--no-progress")
    assert result.exit_code == 0, result.output
    for name, folder in (("pq", out), ("jsonl", jsonl)):  # the same tokens from either format
        result = run_cli("shards", "build", str(folder), "--tokenizer", str(tmp_path / "tok"), "-o", str(tmp_path / f"shards-{name}"))
        assert result.exit_code == 0, result.output
    summary = [json.loads((tmp_path / f"shards-{n}" / "source.json").read_text()) for n in ("pq", "jsonl")]
    assert summary[0]["documents"] == summary[1]["documents"] == 16 and summary[0]["tokens"] == summary[1]["tokens"]
    pytest.importorskip("huggingface_hub", reason="corpus card needs huggingface_hub (the hf extra)")
    result = run_cli("corpus", "card", str(out))
    assert result.exit_code == 0, result.output
    meta = front_matter((out / "README.md").read_text())
    assert meta["configs"][0]["data_files"][0]["path"] == ["documents/*.parquet"]
