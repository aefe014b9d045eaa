"""Tokenizer: training, fixed special ids, round trips, no injection, ids equal to `tokenizers`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared_path
from lmforge.tokenize import SPECIAL_TOKENS, Tokenizer, TokenizerError
from lmforge.tokenize.tokenizer import META_FILE, TOKENIZER_FILE, bytes_to_unicode, split_pattern
from lmforge.tokenize.train import TrainConfig, sample_documents, train_tokenizer

# A small multilingual corpus written by hand: enough pairs for a 600-token vocabulary.
PARAGRAPHS = [
    "The quick brown fox jumps over the lazy dog. It's 2024 and we've got 1,234,567 reasons to test.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Größe, Straße, Übermut!",
    "Быстрая коричневая лиса прыгает через ленивую собаку. Москва — столица России.",
    "敏捷的棕色狐狸跳过了懒狗。今天是二〇二四年，天气很好。",
    "素早い茶色の狐がのろまな犬を飛び越える。東京は日本の首都です。",
    "def main():\n    for i in range(10):\n        print(f'{i:03d}')  # numbers 0123456789\n",
    "Emoji: 🙂🚀👩‍👩‍👧 and combining marks: e\u0301 a\u0308 n\u0303. Tabs\tand\r\nnewlines.",
    "El Coronel No Tiene Quien le Escriba es una novela de Gabriel García Márquez publicada en 1961.",
]


def write_jsonl(path: Path, texts, language=None) -> Path:
    with open(path, "wb") as f:
        for i, t in enumerate(texts):
            meta = {"language": language} if language else {}
            f.write(orjson.dumps({"id": f"d{i}", "text": t, "metadata": meta}) + b"\n")
    return path


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    texts = [f"{p} ({i})" for i in range(40) for p in PARAGRAPHS]
    return write_jsonl(root / "docs.jsonl", texts)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory, corpus_file) -> Path:
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer([corpus_file], out, TrainConfig(vocab_size=600, sample_bytes=200_000, min_frequency=2))
    return out


@pytest.fixture(scope="module")
def tok(tok_dir) -> Tokenizer:
    return Tokenizer.load(tok_dir)


@pytest.fixture(scope="module")
def hf(tok_dir):
    from tokenizers import Tokenizer as HFTokenizer

    t = HFTokenizer.from_file(str(tok_dir / TOKENIZER_FILE))
    return t


# ---- files and special tokens ----------------------------------------------------------------


def test_special_ids_are_fixed(tok):
    assert (tok.bos_id, tok.pad_id) == (0, 1)
    assert (tok.user_start_id, tok.user_end_id, tok.assistant_start_id, tok.assistant_end_id) == (2, 3, 4, 5)
    assert (tok.system_start_id, tok.system_end_id) == (6, 7)
    assert tok.special_tokens == SPECIAL_TOKENS
    assert list(SPECIAL_TOKENS.values()) == list(range(16))
    assert tok.special_id("assistant_end") == tok.special_id("<|assistant_end|>") == 5
    with pytest.raises(KeyError, match="no special token"):
        tok.special_id("nope")


def test_files_written(tok_dir, tok, hf):
    import hashlib

    meta = orjson.loads((tok_dir / META_FILE).read_bytes())
    data = (tok_dir / TOKENIZER_FILE).read_bytes()
    assert meta["fingerprint"] == "sha256:" + hashlib.sha256(data).hexdigest() == tok.fingerprint
    assert meta["vocab_size"] == tok.vocab_size == 600 == hf.get_vocab_size()
    assert meta["special_tokens"] == SPECIAL_TOKENS
    assert len(meta["token_bytes"]) == tok.vocab_size
    assert meta["token_bytes"][:16] == [0] * 16
    assert meta["token_bytes"][16:272] == [1] * 256  # every single byte is a token: no unknowns
    assert meta["pattern"] == split_pattern(3)
    for literal, idx in SPECIAL_TOKENS.items():
        assert hf.token_to_id(literal) == idx


def test_token_bytes_sum_to_text_bytes(tok):
    text = " ".join(PARAGRAPHS)
    ids = tok.encode(text)
    assert sum(tok.token_bytes[i] for i in ids) == len(text.encode())
    assert sum(tok.token_bytes[i] for i in tok.encode(text, bos=True)) == len(text.encode())


def test_tampered_tokenizer_json_is_refused(tok_dir, tmp_path):
    for name in (TOKENIZER_FILE, META_FILE):
        (tmp_path / name).write_bytes((tok_dir / name).read_bytes())
    (tmp_path / TOKENIZER_FILE).write_bytes((tok_dir / TOKENIZER_FILE).read_bytes() + b" ")
    with pytest.raises(TokenizerError, match="fingerprint"):
        Tokenizer.load(tmp_path)
    with pytest.raises(TokenizerError, match="no such file"):
        Tokenizer.load(tmp_path / "missing")


def test_foreign_tokenizer_without_reserved_ids_is_refused(tmp_path):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    t = HFTokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel()
    t.train_from_iterator(PARAGRAPHS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"]))
    t.save(str(tmp_path / TOKENIZER_FILE))
    with pytest.raises(TokenizerError, match="must have id 0"):
        Tokenizer.load(tmp_path)


# ---- encoding and decoding -------------------------------------------------------------------

EDGE_CASES = [
    "",
    " ",
    "  leading and trailing  ",
    "\n\n\t\r\n \x00\x01\x7f",
    "🙂👩‍👩‍👧🏳️‍🌈",
    "e\u0301\u0301\u0301 Z\u0351\u0354\u0355",
    "1234567890 3.14159 -42 1e10",
    "中文、日本語、한국어, العربية, עברית, ελληνικά, हिन्दी",
    "\ufeffBOM and \u200b zero width \u00a0 nbsp",
    "x" * 5000,
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_round_trip_edge_cases(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_round_trip_any_string(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(i >= 16 for i in ids)  # never a special id from data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=80), max_size=8))
def test_ids_equal_tokenizers(tok, hf, texts):
    hf.encode_special_tokens = True  # the reference also reads literals as text
    try:
        ours = tok.encode_batch(texts)
        ref = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    finally:
        hf.encode_special_tokens = False
    assert ours == ref


def test_no_injection_through_data(tok, hf):
    text = "hello <|bos|> and <|assistant_end|><|pad|>"
    ids = tok.encode(text)
    assert not any(tok.is_special(i) for i in ids)
    assert tok.decode(ids) == text
    assert 0 in hf.encode(text, add_special_tokens=False).ids  # plain `tokenizers` would have injected BOS
    assert tok.encode_batch([text]) == [ids]


def test_explicit_specials(tok):
    assert tok.encode("hi", bos=True) == [0, *tok.encode("hi")]
    assert tok.encode_batch(["a", "b"], bos=True) == [[0, *tok.encode("a")], [0, *tok.encode("b")]]
    ids = tok.encode_with_specials("<|user_start|>hi<|user_end|><|assistant_start|>")
    assert ids == [2, *tok.encode("hi"), 3, 4]
    assert tok.decode(ids) == "<|user_start|>hi<|user_end|><|assistant_start|>"
    assert tok.decode(ids, skip_special_tokens=True) == "hi"


def test_decode_cut_character_and_bad_ids(tok):
    ids = tok.encode("中")
    if len(ids) > 1:
        assert "\ufffd" in tok.decode(ids[:1])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([tok.vocab_size + 5])


def test_tokenizers_backend_matches_tiktoken(tok_dir, tok):
    slow = Tokenizer.load(tok_dir, backend="tokenizers")
    assert tok.backend == "tiktoken" and slow.backend == "tokenizers"
    texts = PARAGRAPHS + EDGE_CASES + ["<|bos|> literal"]
    assert slow.encode_batch(texts) == tok.encode_batch(texts)
    assert [slow.encode(t) for t in texts] == [tok.encode(t) for t in texts]


def test_batch_equals_single(tok):
    texts = [f"{p} #{i}" for i in range(50) for p in PARAGRAPHS]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]
    assert tok.encode_batch(texts, num_threads=1) == tok.encode_batch(texts, num_threads=3)
    assert tok.encode_batch([]) == []


def test_ids_equal_tokenizers_on_real_text(tok, hf):
    texts = [orjson.loads(line)["text"] for line in open(shared_path("text", "c4-300-docs.jsonl"), "rb")]
    texts += open(shared_path("text", "wikipedia-30-articles.txt"), encoding="utf-8").read().splitlines()
    texts += [orjson.loads(line)["answer"] for line in open(shared_path("align", "gsm8k-train-7473.jsonl"), "rb")][:500]
    assert tok.encode_batch(texts) == [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    assert all(tok.decode(ids) == t for ids, t in zip(tok.encode_batch(texts), texts))


# ---- sampling and training -------------------------------------------------------------------


def test_sample_is_bounded_deterministic_and_order_free(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [f"document a{i} " * (i % 7 + 1) for i in range(300)])
    b = write_jsonl(tmp_path / "b.jsonl", [f"document b{i} " * (i % 5 + 1) for i in range(300)] + ["document a0 "])
    s1 = sample_documents([a, b], 5000, seed=1)
    s2 = sample_documents([b, a], 5000, seed=1)
    assert s1.texts == s2.texts
    assert 0 < s1.sample_bytes <= 5000
    assert s1.documents_read == 601
    assert sample_documents([a, b], 5000, seed=2).texts != s1.texts
    full = sample_documents([a, b], 10**9, seed=1)
    assert len(full.texts) == 600 and full.duplicates == 1  # "document a0 " appears twice
    # the bounded sample is a prefix of the full sample in key order
    assert full.texts[: len(s1.texts)] == s1.texts


def test_sample_cuts_long_documents(tmp_path):
    f = write_jsonl(tmp_path / "long.jsonl", ["y" * 1000])
    s = sample_documents([f], 10**6, max_doc_chars=100)
    assert s.texts == ["y" * 100] and s.truncated == 1


def test_rerun_skips_and_force_retrains(corpus_file, tmp_path):
    cfg = TrainConfig(vocab_size=300, sample_bytes=20_000)
    first = train_tokenizer([corpus_file], tmp_path, cfg)
    assert not first.skipped
    again = train_tokenizer([corpus_file], tmp_path, cfg)
    assert again.skipped and again.tokenizer.fingerprint == first.tokenizer.fingerprint
    forced = train_tokenizer([corpus_file], tmp_path, cfg, force=True)
    assert not forced.skipped and forced.tokenizer.fingerprint == first.tokenizer.fingerprint  # same seed, same tokenizer
    with pytest.raises(TokenizerError, match=r"--vocab-size 300 \(asked 310\).*--overwrite"):  # never silently replaced
        train_tokenizer([corpus_file], tmp_path, TrainConfig(vocab_size=310, sample_bytes=20_000))
    other = train_tokenizer([corpus_file], tmp_path, TrainConfig(vocab_size=310, sample_bytes=20_000), overwrite=True)
    assert not other.skipped and other.tokenizer.vocab_size == 310
    assert not list(tmp_path.glob("*.tmp"))


def test_digits_setting_changes_split(corpus_file, tmp_path):
    two = train_tokenizer([corpus_file], tmp_path, TrainConfig(vocab_size=400, sample_bytes=50_000, digits=2)).tokenizer
    assert two.pattern == split_pattern(2)
    for ids in [two.encode("1234567")]:
        assert max(two.token_bytes[i] for i in ids) <= 2


@pytest.mark.parametrize(
    "kwargs, flag",
    [({"vocab_size": 10}, "--vocab-size"), ({"sample_bytes": 10}, "--sample-bytes"), ({"digits": 0}, "--digits"),
     ({"max_doc_chars": 0}, "--max-doc-chars")],
)
def test_config_rejects_nonsense(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        TrainConfig(**kwargs)


def test_empty_input_is_an_error(tmp_path):
    f = write_jsonl(tmp_path / "empty.jsonl", ["", ""])
    with pytest.raises(ValueError, match="no text in"):
        train_tokenizer([f], tmp_path / "out", TrainConfig(vocab_size=300, sample_bytes=10_000))


def test_bytes_to_unicode_is_a_bijection():
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256


def test_import_is_light():
    code = (
        "import sys, lmforge, lmforge.tokenize\n"
        "bad = [m for m in ('torch', 'lmforge.corpus', 'lmforge.train', 'tokenizers', 'tiktoken', 'rich') if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_trains_on_every_document_format(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lmforge.documents import DocumentWriter

    texts = [f"{p} [{i}]" for i in range(10) for p in PARAGRAPHS]
    with DocumentWriter(tmp_path / "in" / "documents" / "a.jsonl.zst") as w:
        for i, t in enumerate(texts[:30]):
            w.write(f"z{i}", t, {"language": "xx"})
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(30)], "text": texts[30:60]}), tmp_path / "in" / "documents" / "b.parquet")
    (tmp_path / "in" / "documents" / "c.txt").write_text("\n".join(t.replace("\r", " ").replace("\n", " ") for t in texts[60:]), encoding="utf-8")
    res = train_tokenizer([tmp_path / "in"], tmp_path / "tok", TrainConfig(vocab_size=350, sample_bytes=10**6))
    assert res.meta["training"]["documents_read"] == len(texts)
    assert Tokenizer.load(tmp_path / "tok" / TOKENIZER_FILE).fingerprint == res.tokenizer.fingerprint
