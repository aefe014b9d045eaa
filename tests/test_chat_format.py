"""The chat format (render, masks, validation) and the data importers on tiny and real files.

Also home of `tiny_tokenizer()`, a real byte-level BPE trained in memory on a few sentences
(used by test_sft.py).
"""

from __future__ import annotations

import functools
import gzip
import json
import logging

import pytest
from conftest import shared_path

from lmforge.alignment.chat import ChatFormatError, parse_completion, render, render_prompt, validate
from lmforge.alignment.data import DataFormatError, PreferencePair, load_conversations, load_preferences, load_prompts

CHAT_TEXTS = [
    "Hello! How are you today? I am fine, thank you.",
    "Give three tips for staying healthy. Eat well, sleep enough and move every day.",
    "What is the capital of France? The capital of France is Paris.",
    "Translate the sentence into French. Le chat est sur la table.",
    "You are a helpful assistant. Answer briefly and politely.",
] * 4


@functools.lru_cache(maxsize=None)
def tiny_tokenizer():
    """A real lmforge Tokenizer (vocab 320) trained in memory; the specials at their fixed ids."""
    from lmforge.tokenize.tokenizer import Tokenizer
    from lmforge.tokenize.train import TrainConfig, train_on_texts

    return Tokenizer(train_on_texts(CHAT_TEXTS, TrainConfig(vocab_size=320, min_frequency=1)))


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text}


def S(text):
    return {"role": "system", "content": text}


# ---- render ---------------------------------------------------------------------------------
def test_render_layout_and_mask(tok):
    conv = [S("Be brief."), U("Hi"), A("Hello!"), U("Bye"), A("Bye now.")]
    ids, mask = render(conv, tok)
    e = tok.encode
    expected = (
        [0]
        + [6, *e("Be brief."), 7]
        + [2, *e("Hi"), 3]
        + [4, *e("Hello!"), 5]
        + [2, *e("Bye"), 3]
        + [4, *e("Bye now."), 5]
    )
    assert ids == expected
    assert len(mask) == len(ids)
    # mask is exactly: assistant content + assistant end token
    want = (
        [0]
        + [0] * (len(e("Be brief.")) + 2)
        + [0] * (len(e("Hi")) + 2)
        + [0] + [1] * len(e("Hello!")) + [1]
        + [0] * (len(e("Bye")) + 2)
        + [0] + [1] * len(e("Bye now.")) + [1]
    )
    assert mask == want
    assert tok.decode([i for i, m in zip(ids, mask) if m], skip_special_tokens=True) == "Hello!Bye now."


def test_masked_tokens_are_assistant_content_and_end_only(tok):
    ids, mask = render([U("What is the capital of France?"), A("Paris.")], tok)
    masked = [i for i, m in zip(ids, mask) if m]
    assert masked[-1] == tok.special_id("assistant_end")
    assert tok.special_id("assistant_start") not in masked and tok.bos_id not in masked
    assert tok.special_id("user_start") not in masked and tok.special_id("user_end") not in masked


def test_literal_special_strings_in_content_stay_text(tok):
    ids, mask = render([U("<|assistant_end|><|user_start|>"), A("<|bos|>ok")], tok)
    assert ids.count(tok.special_id("assistant_end")) == 1  # only the real end of turn
    assert ids.count(tok.bos_id) == 1 and ids.count(tok.special_id("user_start")) == 1


def test_generation_prompt_and_render_prompt(tok):
    conv = [S("Be brief."), U("Hi")]
    ids, mask = render(conv, tok, add_generation_prompt=True)
    assert ids[-1] == tok.special_id("assistant_start") and not any(mask)
    assert render_prompt(conv, tok) == ids
    # a prompt is the prefix of the full conversation's render
    full, _ = render([*conv, A("Hello!")], tok)
    assert full[: len(ids)] == ids
    with pytest.raises(ChatFormatError, match="last message is assistant"):
        render_prompt([U("Hi"), A("Hello")], tok)
    with pytest.raises(ChatFormatError, match="over max_tokens"):
        render(conv, tok, add_generation_prompt=True, max_tokens=3)


def test_max_tokens_truncates_from_the_right(tok):
    conv = [U("Hi"), A("Give three tips for staying healthy. Eat well, sleep enough and move every day.")]
    ids, mask = render(conv, tok)
    n_prompt = len(tok.encode("Hi")) + 4  # bos, user start/end, assistant start
    cut_ids, cut_mask = render(conv, tok, max_tokens=n_prompt + 2)
    assert cut_ids == ids[: n_prompt + 2] and cut_mask == mask[: n_prompt + 2]
    assert sum(cut_mask) == 2 and cut_ids[-1] != tok.special_id("assistant_end")


def test_empty_mask_is_an_error_saying_why(tok):
    with pytest.raises(ChatFormatError, match="empty loss mask: it has no assistant message"):
        render([U("Hi")], tok)
    with pytest.raises(ChatFormatError, match="no assistant tokens are left within max_tokens=4"):
        render([U("Hello! How are you today?"), A("Fine.")], tok, max_tokens=4)
    assert issubclass(ChatFormatError, ValueError)


def test_empty_assistant_content_still_learns_to_stop(tok):
    ids, mask = render([U("Hi"), A("")], tok)
    assert sum(mask) == 1 and ids[mask.index(1)] == tok.special_id("assistant_end")


@pytest.mark.parametrize(
    "conv, message",
    [
        ([], "non-empty list"),
        ("hello", "non-empty list"),
        ([U("a"), U("b")], "message 1: expected a assistant turn, got user"),
        ([A("a")], "message 0: expected a user turn, got assistant"),
        ([U("a"), S("b")], "message 1: a system message may only come first"),
        ([{"role": "bot", "content": "x"}], "role 'bot' is not one of system, user, assistant"),
        ([{"role": "user", "content": 3}], "content must be a str, got int"),
        ([{"role": "user"}], "content must be a str, got NoneType"),
        (["hi"], "message 0 is str"),
    ],
)
def test_validation_errors_name_the_message(tok, conv, message):
    with pytest.raises(ChatFormatError, match=message.replace("(", r"\(")):
        render(conv, tok)


def test_validate_accepts_system_then_alternation():
    validate([S("s"), U("u"), A("a"), U("u")])
    validate([U("u")], generation_prompt=True)


def test_parse_completion_stops_at_assistant_end(tok):
    end = tok.special_id("assistant_end")
    body = tok.encode("Paris.")
    assert parse_completion(body + [end] + tok.encode(" junk"), tok) == "Paris."
    assert parse_completion(body, tok) == "Paris."  # no end token: everything
    assert parse_completion([tok.special_id("user_start"), *body, end], tok) == "Paris."


# ---- importers: tiny files ------------------------------------------------------------------
def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_alpaca_json(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps([
        {"instruction": "Add.", "input": "2 and 3", "output": "5"},
        {"instruction": "Greet.", "input": "", "output": "Hello"},
        {"instruction": "Sys.", "input": "", "output": "ok", "system": "Be brief."},
    ]))
    convs = list(load_conversations(p))
    assert convs[0] == [U("Add.\n\n2 and 3"), A("5")]
    assert convs[1] == [U("Greet."), A("Hello")]
    assert convs[2] == [S("Be brief."), U("Sys."), A("ok")]


def test_messages_jsonl_and_sharegpt(tmp_path):
    m = _jsonl(tmp_path / "m.jsonl", [{"messages": [S("s"), U("u"), A("a")]}])
    assert list(load_conversations(m)) == [[S("s"), U("u"), A("a")]]
    g = tmp_path / "g.json"
    g.write_text(json.dumps([{"conversations": [
        {"from": "system", "value": "s"}, {"from": "human", "value": "u"}, {"from": "gpt", "value": "a"}]}]))
    assert list(load_conversations(g)) == [[S("s"), U("u"), A("a")]]


def test_self_instruct_one_conversation_per_instance(tmp_path):
    p = _jsonl(tmp_path / "s.jsonl", [{"instruction": "Sort.", "instances": [
        {"input": "b a", "output": "a b"}, {"input": "", "output": "nothing"}]}])
    assert list(load_conversations(p)) == [[U("Sort.\n\nb a"), A("a b")], [U("Sort."), A("nothing")]]


def test_malformed_records_are_counted_skipped_and_named(tmp_path, caplog):
    p = _jsonl(tmp_path / "m.jsonl", [
        {"messages": [U("u"), A("a")]},
        "{not json",
        {"messages": [A("a")]},
        {"something": "else"},
        {"messages": [U("u2"), A("a2")]},
    ])
    stats = {}
    with caplog.at_level(logging.WARNING):
        convs = list(load_conversations(p, stats=stats))
    assert len(convs) == 2
    assert stats["records"] == 5 and stats["kept"] == 2 and sum(stats["skipped"].values()) == 3
    text = caplog.text
    assert f"{p}:2" in text and f"{p}:3" in text and f"{p}:4" in text
    assert "not JSON" in text and "expected a user turn" in text


def test_a_file_with_nothing_usable_is_an_error_naming_it(tmp_path):
    p = _jsonl(tmp_path / "bad.jsonl", [{"x": 1}, {"y": 2}])
    with pytest.raises(DataFormatError, match="bad.jsonl: no usable"):
        list(load_conversations(p))
    with pytest.raises(DataFormatError, match="no such file"):
        list(load_conversations(tmp_path / "missing.json"))
    with pytest.raises(DataFormatError, match="unknown format"):
        list(load_conversations(p, fmt="nope"))


def test_preferences_hh_and_prompt_chosen_rejected(tmp_path):
    hh = tmp_path / "hh.jsonl.gz"
    with gzip.open(hh, "wt") as f:
        f.write(json.dumps({
            "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: fine, thanks",
            "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: go away",
        }) + "\n")
        f.write(json.dumps({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: OTHER\n\nAssistant: c"}) + "\n")
    pairs = list(load_preferences(hh))
    assert pairs == [PreferencePair([U("hi"), A("hello"), U("how are you?")], "fine, thanks", "go away")]
    pcr = _jsonl(tmp_path / "p.jsonl", [
        {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "No."},
        {"prompt": [U("Name a fruit.")], "chosen": "Apple.", "rejected": "Rock."},
    ])
    got = list(load_preferences(pcr))
    assert got[0] == PreferencePair([U("Name a colour.")], "Blue.", "No.")
    assert got[1].prompt == [U("Name a fruit.")] and got[1].chosen == "Apple."


def test_prompts_gsm8k_style(tmp_path):
    p = _jsonl(tmp_path / "q.jsonl", [{"question": "1+1?", "answer": "2\n#### 2"}, {"question": 5}])
    assert list(load_prompts(p)) == [([U("1+1?")], "2\n#### 2")]


# ---- importers: the real files in ../shared/data/align ------------------------------------
def test_real_alpaca_renders(tok):
    convs = list(load_conversations(shared_path("align", "alpaca-en-999.json")))
    assert len(convs) == 999
    for conv in convs[:50]:
        ids, mask = render(conv, tok, max_tokens=256)
        assert any(mask)


def test_real_self_instruct_and_sharegpt():
    si = list(load_conversations(shared_path("align", "self-instruct-seed-175.jsonl")))
    assert len(si) >= 175 and all(c[-1]["role"] == "assistant" for c in si)
    pref_convs = list(load_conversations(shared_path("align", "preference-en-300.json")))
    assert len(pref_convs) == 300 and all(c[-1]["role"] == "assistant" for c in pref_convs)


def test_real_preferences():
    lf = list(load_preferences(shared_path("align", "preference-en-300.json")))
    assert len(lf) == 300 and all(p.chosen != p.rejected and p.prompt[-1]["role"] == "user" for p in lf)
    stats = {}
    hh = list(load_preferences(shared_path("align", "hh-rlhf-harmless-1800.jsonl.gz"), stats=stats))
    assert len(hh) > 1700 and stats["kept"] == len(hh)
    for p in hh:
        validate(p.prompt, generation_prompt=True)
        assert p.chosen != p.rejected


def test_real_gsm8k_prompts():
    items = list(load_prompts(shared_path("align", "gsm8k-train-7473.jsonl")))
    assert len(items) == 7473
    prompt, answer = items[0]
    assert prompt[0]["role"] == "user" and "####" in answer
