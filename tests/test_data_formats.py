"""The alignment readers on the `datasets` on-disk formats (Parquet, Arrow IPC file and stream,
`save_to_disk` folders, DatasetDict folders) and on TRL's dataset layouts.

The Arrow fixtures are written with pyarrow alone, laid out as `datasets.save_to_disk` lays
them out (`data-*.arrow` in the stream format beside `state.json`), so these tests need no
`datasets`; the one test that writes with `datasets` itself skips when it is not installed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_sft import base  # noqa: F401 (a tiny pretrained run, module-scoped fixture)

from lmforge.alignment.data import (
    BAD_CONVERSATION, BAD_FIELD, NON_TEXT, PLAIN_TEXT, TOOL_TURNS, DataFormatError, PreferencePair,
    load_conversations, load_preferences, load_prompts,
)


def U(t):
    return {"role": "user", "content": t}


def A(t):
    return {"role": "assistant", "content": t}


def S(t):
    return {"role": "system", "content": t}


CHATS = [{"messages": [U("hi"), A("hello")]}, {"messages": [S("be brief"), U("2+2?"), A("4")]}]
WANT = [[U("hi"), A("hello")], [S("be brief"), U("2+2?"), A("4")]]


# ---- writers for every on-disk format -------------------------------------------------------
def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def table(rows: list) -> pa.Table:
    """Rows as one table with every key as a column (null where a row lacks it), as
    `datasets.Dataset.from_list` builds it (`pa.Table.from_pylist` takes the first row's keys)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows])


def write_arrow(path: Path, rows: list, *, stream: bool) -> Path:
    table_ = table(rows)
    new = pa.ipc.new_stream if stream else pa.ipc.new_file
    with new(str(path), table_.schema) as w:
        w.write_table(table_, max_chunksize=1)  # one row per batch: batches are crossed
    return path


def write_saved(folder: Path, rows: list) -> Path:
    """A folder laid out as `datasets.Dataset.save_to_disk` writes it (two shards)."""
    folder.mkdir(parents=True)
    half = max(1, len(rows) // 2)
    names = []
    for i, part in enumerate([rows[:half], rows[half:]]):
        if part:
            names.append(f"data-{i:05d}-of-00002.arrow")
            write_arrow(folder / names[-1], part, stream=True)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names], "_split": None}))
    (folder / "dataset_info.json").write_text("{}")
    return folder


def write_dict(folder: Path, splits: dict[str, list]) -> Path:
    folder.mkdir(parents=True)
    for name, rows in splits.items():
        write_saved(folder / name, rows)
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))
    return folder


FORMATS = {
    "jsonl": lambda d, rows: write_jsonl(d / "x.jsonl", rows),
    "json-array": lambda d, rows: (d / "x.json").write_text(json.dumps(rows)) and d / "x.json",
    "parquet": lambda d, rows: pq.write_table(table(rows), d / "x.parquet", row_group_size=1) or d / "x.parquet",
    "arrow-file": lambda d, rows: write_arrow(d / "x.arrow", rows, stream=False),
    "arrow-stream": lambda d, rows: write_arrow(d / "x.arrow", rows, stream=True),
    "save_to_disk": lambda d, rows: write_saved(d / "ds", rows),
    "dataset-dict": lambda d, rows: write_dict(d / "dd", {"test": [CHATS[0]], "train": rows}),
    "dataset-dict-split": lambda d, rows: write_dict(d / "dd", {"train": [CHATS[0]], "test": rows}) / "test",
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_on_disk_format_gives_the_same_conversations(tmp_path, fmt):
    path = FORMATS[fmt](tmp_path, CHATS)
    stats: dict = {}
    assert list(load_conversations(path, stats=stats)) == WANT
    assert stats == {"records": 2, "kept": 2, "skipped": {}}


@pytest.mark.parametrize("fmt", ["parquet", "arrow-file", "save_to_disk"])
def test_preferences_and_prompts_read_from_columnar_files(tmp_path, fmt):
    (tmp_path / "p").mkdir()
    prefs = FORMATS[fmt](tmp_path / "p", [{"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"}])
    assert list(load_preferences(prefs)) == [PreferencePair([U("Capital of France?")], "Paris", "Lyon")]
    (tmp_path / "q").mkdir()
    prompts = FORMATS[fmt](tmp_path / "q", [{"question": "1+1?", "answer": "2\n#### 2"}])
    assert list(load_prompts(prompts)) == [([U("1+1?")], "2\n#### 2")]


def test_mixed_layouts_in_one_parquet_file_read_like_json(tmp_path):
    """Arrow gives every row every column (null where absent); nulls are dropped so the layout
    is recognised per row, as it is for JSON records."""
    rows = [{"instruction": "Sort.", "input": "b a", "output": "a b"}, CHATS[0]]
    path = FORMATS["parquet"](tmp_path, rows)
    assert list(load_conversations(path)) == [[U("Sort.\n\nb a"), A("a b")], WANT[0]]


def test_bad_rows_are_named_by_row(tmp_path, caplog):
    path = FORMATS["parquet"](tmp_path, [CHATS[0], {"messages": [U("no answer")]}, CHATS[0]])
    stats: dict = {}
    with caplog.at_level(logging.WARNING):
        assert len(list(load_conversations(path, stats=stats))) == 2
    assert f"{path}: row 1: skipped" in caplog.text
    assert sum(stats["skipped"].values()) == 1


def test_dataset_dict_without_train_split_names_the_splits(tmp_path):
    folder = write_dict(tmp_path / "dd", {"validation": CHATS, "test": CHATS})
    with pytest.raises(DataFormatError, match=r"without a 'train' split \(splits: validation, test\).*dd/validation"):
        list(load_conversations(folder))
    assert list(load_conversations(folder / "validation")) == WANT  # naming the split works


def test_unusable_folders_and_files_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="not a `datasets.save_to_disk` folder"):
        list(load_conversations(tmp_path / "empty"))
    (tmp_path / "bad.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(DataFormatError, match="bad.arrow: not a readable Arrow IPC file"):
        list(load_conversations(tmp_path / "bad.arrow"))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 nope")
    with pytest.raises(DataFormatError, match="bad.parquet: not a readable Parquet file"):
        list(load_conversations(tmp_path / "bad.parquet"))
    gone = write_saved(tmp_path / "gone", CHATS)
    (gone / "data-00001-of-00002.arrow").unlink()
    with pytest.raises(DataFormatError, match="data-00001-of-00002.arrow: listed in .*state.json but missing"):
        list(load_conversations(gone))


def test_written_by_datasets_itself(tmp_path):
    datasets = pytest.importorskip("datasets", reason="`datasets` is not installed; the pyarrow-written fixtures cover its layout")
    ds = datasets.Dataset.from_list(CHATS)
    ds.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "dict"))
    ds.to_parquet(str(tmp_path / "x.parquet"))
    for path in (tmp_path / "saved", tmp_path / "dict", tmp_path / "x.parquet"):
        assert list(load_conversations(path)) == WANT


# ---- TRL layouts ----------------------------------------------------------------------------
def test_implicit_prompt_preferences_split_at_the_shared_prefix(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"chosen": [U("hi"), A("hello"), U("sky?"), A("blue")], "rejected": [U("hi"), A("hello"), U("sky?"), A("green")]},
        {"chosen": [U("a"), A("b")], "rejected": [U("a"), A("c"), U("d"), A("e")]},  # rejected runs on
        {"chosen": [U("a"), A("b")], "rejected": [U("a"), A("b")]},
    ])
    stats: dict = {}
    assert list(load_preferences(path, stats=stats)) == [PreferencePair([U("hi"), A("hello"), U("sky?")], "blue", "green")]
    assert stats["skipped"] == {BAD_CONVERSATION: 1, "chosen equals rejected": 1}


def test_explicit_prompt_with_message_lists(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": [S("terse"), U("sky?")], "chosen": [A("blue")], "rejected": [A("green")]},
        {"prompt": [U("sky?")], "chosen": [A("blue"), U("more"), A("very")], "rejected": [A("green")]},
    ])
    stats: dict = {}
    assert list(load_preferences(path, stats=stats)) == [PreferencePair([S("terse"), U("sky?")], "blue", "green")]
    assert stats["skipped"] == {BAD_FIELD: 1}  # a multi-turn answer is not cut to its last turn


def test_prompt_completion_as_sft_conversations(tmp_path):
    path = write_jsonl(tmp_path / "pc.jsonl", [
        {"prompt": "sky?", "completion": "blue"},
        {"prompt": [S("terse"), U("sky?")], "completion": [A("blue")]},
        {"prompt": "x", "completion": "y", "label": False},  # KTO's unpaired layout is not SFT data
    ])
    stats: dict = {}
    assert list(load_conversations(path, stats=stats)) == [[U("sky?"), A("blue")], [S("terse"), U("sky?"), A("blue")]]
    assert stats["skipped"] == {"unknown record layout": 1}
    assert list(load_conversations(path, "prompt-completion"))[:1] == [[U("sky?"), A("blue")]]


def test_plain_text_is_refused_for_sft_naming_the_field(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "Once upon a time"}])
    with pytest.raises(DataFormatError, match=PLAIN_TEXT):
        list(load_conversations(path))
    stats: dict = {}
    path = write_jsonl(tmp_path / "t2.jsonl", [{"text": "plain"}, CHATS[0]])
    assert list(load_conversations(path, stats=stats)) == [WANT[0]]
    assert stats["skipped"] == {PLAIN_TEXT: 1}


def test_content_parts_are_joined_and_images_skipped(tmp_path):
    parts = [{"type": "text", "text": "What is "}, {"type": "text", "text": "this?"}]
    image = [{"type": "image"}, {"type": "text", "text": "What is this?"}]
    rows = [{"messages": [{"role": "user", "content": parts}, {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}]},
            {"messages": [{"role": "user", "content": image}, {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}]}]
    for path in (write_jsonl(tmp_path / "c.jsonl", rows), FORMATS["parquet"](tmp_path, rows)):
        stats: dict = {}
        assert list(load_conversations(path, stats=stats)) == [[U("What is this?"), A("A cat.")]]
        assert stats["skipped"] == {NON_TEXT: 1}


def test_tool_turns_are_skipped_with_their_reason(tmp_path, caplog):
    call = {"type": "function", "function": {"name": "weather", "arguments": "{}"}}
    path = write_jsonl(tmp_path / "tools.jsonl", [
        {"messages": [U("weather?"), {"role": "assistant", "content": "", "tool_calls": [call]},
                      {"role": "tool", "content": "sunny"}, A("Sunny.")]},
        {"conversations": [{"from": "human", "value": "weather?"}, {"from": "function_call", "value": "{}"},
                           {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}]},
        CHATS[0],
    ])
    stats: dict = {}
    with caplog.at_level(logging.WARNING):
        assert list(load_conversations(path, stats=stats)) == [WANT[0]]
    assert stats["skipped"] == {TOOL_TURNS: 2}
    assert f"{path}:1: skipped ({TOOL_TURNS}" in caplog.text


def test_hh_transcript_in_a_prompt_is_split_into_turns(tmp_path):
    dahoas = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Sky colour?\n\nAssistant:"
    want = [U("Hi there"), A("Hello!"), U("Sky colour?")]
    prefs = write_jsonl(tmp_path / "d.jsonl", [{"prompt": dahoas, "chosen": " Blue.", "rejected": " Green."}])
    assert list(load_preferences(prefs)) == [PreferencePair(want, "Blue.", "Green.")]
    sft = write_jsonl(tmp_path / "s.jsonl", [{"prompt": dahoas, "completion": " Blue."}])
    assert list(load_conversations(sft)) == [want + [A("Blue.")]]
    prompts = write_jsonl(tmp_path / "q.jsonl", [{"prompt": dahoas, "answer": "#### 1"}])
    assert list(load_prompts(prompts)) == [(want, "#### 1")]
    # a prompt that quotes a dialogue after its own text stays one user turn
    quoted = "Summarise:\n\nHuman: hi\n\nAssistant: hello"
    prefs = write_jsonl(tmp_path / "quoted.jsonl", [{"prompt": quoted, "chosen": "A greeting.", "rejected": "No."}])
    assert list(load_preferences(prefs)) == [PreferencePair([U(quoted)], "A greeting.", "No.")]


# ---- through the command line ---------------------------------------------------------------
def test_sft_reads_a_save_to_disk_folder_and_a_dataset_dict_without_train_is_one_line(base, tmp_path):
    from click.testing import CliRunner
    from test_sft import FAST, _conversations

    from lmforge.alignment.data import data_digest
    from lmforge.alignment.sft_cli import sft as sft_cmd

    folder = write_saved(tmp_path / "chats", _conversations())
    args = [str(a) for a in ["--base", base.run, "--data", folder, "-o", tmp_path / "out", "--steps", 1, *FAST]]
    r = CliRunner().invoke(sft_cmd, args)
    assert r.exit_code == 0, r.output
    state = json.loads(next((tmp_path / "out" / "checkpoints").iterdir()).joinpath("state.json").read_text())
    assert state["data"][0]["sha256"] == data_digest(folder) and state["data"][0]["conversations"] == 20
    r = CliRunner().invoke(sft_cmd, args)  # the same data, the same settings: a no-op rerun
    assert r.exit_code == 0, r.output
    nosplit = write_dict(tmp_path / "dd", {"test": _conversations()})
    r = CliRunner().invoke(sft_cmd, [str(a) for a in ["--base", base.run, "--data", nosplit, "-o", tmp_path / "o2", "--steps", 1, *FAST]])
    assert r.exit_code != 0 and "without a 'train' split" in r.output and "Traceback" not in r.output


def test_truncated_gzip_is_a_one_line_error_after_the_lines_read(tmp_path):
    import gzip

    whole = gzip.compress("".join(json.dumps(CHATS[0]) + "\n" for _ in range(2000)).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFormatError, match=r"cut.jsonl.gz: cannot read it after line \d+"):
        list(load_conversations(path))


# ---- the corpus side: documents in the same formats (one reader: lmforge.tables) --------------
DOCS = [{"id": f"d{i}", "text": f"document number {i} " * 3, "url": f"https://x/{i}"} for i in range(5)]
DOC_FORMATS = {k: FORMATS[k] for k in ("parquet", "arrow-file", "arrow-stream", "save_to_disk")} | {
    "dataset-dict": lambda d, rows: write_dict(d / "dd", {"test": rows[:1], "train": rows}),
    "dataset-dict-split": lambda d, rows: write_dict(d / "dd", {"train": rows[:1], "test": rows}) / "test",
}


@pytest.mark.parametrize("fmt", list(DOC_FORMATS))
def test_documents_from_every_table_format(tmp_path, fmt):
    from lmforge.documents import find_document_files, iter_documents

    path = DOC_FORMATS[fmt](tmp_path, DOCS)
    docs = [d for f in find_document_files([path]) for d in iter_documents(f)]
    assert [(d.id, d.text, d.metadata) for d in docs] == [(r["id"], r["text"], {"url": r["url"]}) for r in DOCS]


def test_documents_without_a_text_column_name_the_file_and_its_columns(tmp_path):
    from lmforge.documents import DocumentFileError, find_document_files, iter_documents

    folder = write_saved(tmp_path / "ds", [{"content": "x", "id": "a"}, {"content": "y", "id": "b"}])
    [first, _] = find_document_files([folder])
    with pytest.raises(DocumentFileError, match=r"data-00000-of-00002.arrow: no column 'text' \(columns: content, id\); pass --text-key"):
        list(iter_documents(first))
    assert [d.text for d in iter_documents(first, text_key="content")] == ["x"]
    nosplit = write_dict(tmp_path / "dd", {"test": DOCS})
    with pytest.raises(DocumentFileError, match="without a 'train' split"):
        find_document_files([nosplit])
    (tmp_path / "odd.jsonl").write_bytes(b"ARROW1\x00\x00junk")
    with pytest.raises(DocumentFileError, match="looks like an Arrow IPC file; name it"):
        find_document_files([tmp_path / "odd.jsonl"])


def test_tokenizer_train_on_a_save_to_disk_folder_equals_the_jsonl(tmp_path):
    """The same documents as JSONL and as a `save_to_disk` folder train the same tokenizer."""
    from click.testing import CliRunner

    from lmforge.cli import main

    rows = [{"id": f"d{i}", "text": f"the {i}th line of words, written {i * 7} times"} for i in range(200)]
    write_jsonl(tmp_path / "docs.jsonl", rows)
    folder = write_saved(tmp_path / "ds", rows)
    outs = []
    for name, src in (("a", tmp_path / "docs.jsonl"), ("b", folder)):
        r = CliRunner().invoke(main, ["tokenizer", "train", str(src), "-o", str(tmp_path / name), "--vocab-size", "300", "--no-progress"])
        assert r.exit_code == 0, r.output
        outs.append(json.loads((tmp_path / name / "tokenizer.json").read_text())["model"])
    assert outs[0] == outs[1]
    r = CliRunner().invoke(main, ["tokenizer", "train", str(write_saved(tmp_path / "bad", [{"body": "x"}])), "-o", str(tmp_path / "c")])
    assert r.exit_code != 0 and "no column 'text' (columns: body)" in r.output and "Traceback" not in r.output


def test_documents_from_what_datasets_itself_writes(tmp_path):
    datasets = pytest.importorskip("datasets", reason="`datasets` is not installed; the pyarrow-written fixtures cover its layout")
    from lmforge.documents import find_document_files, iter_documents

    ds = datasets.Dataset.from_list(DOCS)
    ds.save_to_disk(str(tmp_path / "saved"), max_shard_size="1KB")  # several data-*.arrow shards, in order
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dict"))
    ds.to_parquet(str(tmp_path / "x.parquet"))
    for path in (tmp_path / "saved", tmp_path / "dict", tmp_path / "dict" / "train", tmp_path / "x.parquet"):
        assert [(d.id, d.text) for f in find_document_files([path]) for d in iter_documents(f)] == [(r["id"], r["text"]) for r in DOCS]
