"""`lmforge tokenizer train/show/stats`: examples in --help, summaries, clear errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from lmforge.cli import main
from lmforge.tokenize.show import spans, text_stats
from lmforge.tokenize.tokenizer import META_FILE, TOKENIZER_FILE, Tokenizer

TEXTS = [
    "The quick brown fox jumps over the lazy dog 12345.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "敏捷的棕色狐狸跳过了懒狗。🙂",
]


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    with open(root / "a.jsonl", "wb") as f:
        for i in range(60):
            for lang, t in zip(("en", "de", "zh"), TEXTS):
                f.write(orjson.dumps({"id": f"{lang}{i}", "text": f"{t} {i}", "metadata": {"language": lang}}) + b"\n")
    (root / "b.txt").write_text("\n".join(f"plain line {i} of text" for i in range(50)), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tok_dir(docs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok")
    res = CliRunner().invoke(main, ["tokenizer", "train", str(docs), "-o", str(out), "--vocab-size", "400",
                                    "--sample-bytes", "100K", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "trained" in res.output and "vocab size" in res.output
    return out


def run(*args):
    return CliRunner().invoke(main, ["tokenizer", *args])


@pytest.mark.parametrize("cmd", [[], ["train"], ["show"], ["stats"]])
def test_help_has_example(cmd):
    res = run(*cmd, "--help")
    assert res.exit_code == 0
    assert "lmforge tokenizer" in res.output


def test_train_writes_files_and_skips_rerun(tok_dir, docs):
    assert (tok_dir / TOKENIZER_FILE).is_file() and (tok_dir / META_FILE).is_file()
    res = run("train", str(docs), "-o", str(tok_dir), "--vocab-size", "400", "--sample-bytes", "100K", "--no-progress")
    assert res.exit_code == 0 and "skipped" in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vocab-size", "10"], "--vocab-size"),
        (["--sample-bytes", "lots"], "--sample-bytes"),
        (["--sample-bytes", "10"], "--sample-bytes"),
        (["--digits", "9"], "--digits"),
    ],
)
def test_train_bad_flags(docs, tmp_path, args, message):
    res = run("train", str(docs), "-o", str(tmp_path / "t"), *args)
    assert res.exit_code == 2 and message in res.output
    assert "Traceback" not in res.output


def test_train_missing_and_empty_input(tmp_path):
    res = run("train", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "t"))
    assert res.exit_code == 2 and "missing.jsonl" in res.output and "INPUT" in res.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = run("train", str(empty), "-o", str(tmp_path / "t"), "--no-progress")
    assert res.exit_code == 1 and "no text in" in res.output and str(empty) in res.output
    bad = tmp_path / "bad.jsonl.zst"
    bad.write_bytes(b"not zstd at all")
    res = run("train", str(bad), "-o", str(tmp_path / "t"), "--no-progress")
    assert res.exit_code == 1 and "bad.jsonl.zst" in res.output and isinstance(res.exception, SystemExit)


def test_show_terminal_and_html(tok_dir, tmp_path):
    page = tmp_path / "t.html"
    res = run("show", "--tokenizer", str(tok_dir), "El Coronel No Tiene Quien le Escriba <|bos|>", "--html", str(page))
    assert res.exit_code == 0, res.output
    assert "tokens" in res.output and "bytes per token" in res.output and "words per token" in res.output
    html = page.read_text(encoding="utf-8")
    import html as html_lib
    import re

    plain = html_lib.unescape(re.sub(r"<[^>]+>", "", html))
    assert "El Coronel No Tiene Quien le Escriba <|bos|>" in plain  # the literal is escaped text
    assert 'class="t"' in html


def test_show_stdin_and_specials(tok_dir):
    res = CliRunner().invoke(main, ["tokenizer", "show", "-t", str(tok_dir), "--specials"], input="<|user_start|>hi<|user_end|>")
    assert res.exit_code == 0, res.output
    assert "2 " in res.output


def test_show_errors(tok_dir, tmp_path):
    res = run("show", "--tokenizer", str(tmp_path / "nope"), "hi")
    assert res.exit_code == 2 and "--tokenizer" in res.output and "nope" in res.output
    res = CliRunner().invoke(main, ["tokenizer", "show", "-t", str(tok_dir)], input="")
    assert res.exit_code == 2 and "empty" in res.output


def test_stats_per_language(tok_dir, docs):
    res = run("stats", "--tokenizer", str(tok_dir), str(docs), "--json")
    assert res.exit_code == 0, res.output
    out = orjson.loads(res.output.strip().splitlines()[-1])
    langs = out["languages"]
    assert {"en", "de", "zh", "unknown", "all"} <= set(langs)
    assert langs["en"]["documents"] == 60 and langs["unknown"]["documents"] == 50
    assert langs["en"]["bytes_per_token"] > 1.0
    table = run("stats", "--tokenizer", str(tok_dir), str(docs), "--no-progress")
    assert table.exit_code == 0 and "bytes/token" in table.output and "zh" in table.output


def test_stats_errors(tok_dir, tmp_path):
    res = run("stats", "--tokenizer", str(tok_dir), str(tmp_path / "none.jsonl"))
    assert res.exit_code == 2 and "none.jsonl" in res.output
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    res = run("stats", "--tokenizer", str(tok_dir), str(empty))
    assert res.exit_code == 1 and "no text" in res.output


def test_spans_keep_whole_characters(tok_dir):
    tok = Tokenizer.load(tok_dir)
    text = "敏捷🙂 ok <|bos|>"
    ids = tok.encode(text)
    sp = spans(tok, ids)
    assert "".join(s.text for s in sp) == text
    assert [i for s in sp for i in s.ids] == ids
    assert "\ufffd" not in "".join(s.text for s in sp)
    st = text_stats(text, ids)
    assert st.tokens == len(ids) and st.bytes == len(text.encode())
    sp2 = spans(tok, tok.encode_with_specials("<|bos|>x"))
    assert sp2[0].special and sp2[0].ids == [0]


def test_train_over_a_tokenizer_with_other_settings_is_refused_by_name_unless_overwrite(docs, tmp_path):
    """`tokenizer train -o tok` over a tokenizer made with other settings used to replace it
    silently, orphaning the shards and manifests made with it."""
    import shutil

    docs = shutil.copytree(docs, tmp_path / "docs")
    out = tmp_path / "tok"
    args = ["train", str(docs), "-o", str(out), "--sample-bytes", "100K", "--no-progress"]
    assert run(*args, "--vocab-size", "400").exit_code == 0
    before = (out / TOKENIZER_FILE).read_bytes()
    same = run(*args, "--vocab-size", "400")
    assert same.exit_code == 0 and "nothing to do" in same.output
    other = run(*args, "--vocab-size", "420", "--seed", "1")
    assert other.exit_code == 1 and "Traceback" not in other.output
    assert "--vocab-size 400 (asked 420)" in other.output and "--seed 0 (asked 1)" in other.output and "--overwrite" in other.output
    assert (out / TOKENIZER_FILE).read_bytes() == before  # untouched
    (docs / "c.txt").write_text("one more plain line\n", encoding="utf-8")  # the inputs changed since
    moved = run(*args, "--vocab-size", "400")
    assert moved.exit_code == 1 and "inputs 2 files (asked 3 files, new: c.txt)" in moved.output
    again = run(*args, "--vocab-size", "420", "--overwrite")
    assert again.exit_code == 0 and Tokenizer.load(out).vocab_size == 420


def test_train_never_silently_replaces_a_tokenizer_lmforge_did_not_write(docs, tmp_path):
    out = tmp_path / "hf"
    out.mkdir()
    (out / TOKENIZER_FILE).write_text('{"model": {"type": "WordPiece"}}')
    args = ["train", str(docs), "-o", str(out), "--vocab-size", "400", "--sample-bytes", "100K", "--no-progress"]
    refused = run(*args)
    assert refused.exit_code == 1 and "not an lmforge tokenizer" in refused.output and "WordPiece" in (out / TOKENIZER_FILE).read_text()
    assert run(*args, "--overwrite").exit_code == 0 and Tokenizer.load(out).vocab_size == 400
    (out / META_FILE).unlink()  # as if killed between writing tokenizer.json and its metadata
    again = run(*args)
    assert again.exit_code == 0 and (out / META_FILE).is_file() and "nothing to do" not in again.output
