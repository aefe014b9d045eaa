"""Importers: public instruction and preference datasets -> conversations in the chat format.

Every loader streams items from one source and accepts each record in any of the layouts
below; `fmt="auto"` recognises the layout per record by its keys, a named `fmt` insists on one.
Sources: a JSONL file (streamed) or a JSON array (read whole), either gzipped; a Parquet file; an
Arrow IPC file (`.arrow`, file or stream format); or a `datasets.save_to_disk` folder
(`data-*.arrow` beside `state.json`; a DatasetDict folder gives its `train` split, or pass the
split's subfolder). Parquet and Arrow are streamed by `lmforge.tables` (the reader the corpus
stages share), no `datasets` needed; a row's null columns are dropped, so it reads as the JSON
record would.

As TRL reads them (https://huggingface.co/docs/trl/dataset_formats): a message's `content` may
be a list of parts (`[{"type": "text", "text": ...}]`: the text parts are joined as written; a
record with an image or other non-text part is skipped); a record with `tool` turns or
`tool_calls` is skipped (the chat format has no tool role); a `prompt` string that starts with
`Human:` / `\\n\\nHuman:` (Dahoas, HH transcripts) is split into turns with `parse_hh`, the empty
final `Assistant:` cue dropped.

Conversations (`load_conversations`, for SFT):
- `alpaca`: `{"instruction", "input", "output"}` (+ optional `system`, `history` [[q, a], ...]);
  the user turn is the instruction, then a blank line and the input when there is one.
- `messages`: `{"messages": [{"role", "content"}, ...]}` (the OpenAI / TRL layout).
- `prompt-completion` (TRL): `{"prompt", "completion"}`, each a string or a message list; the
  completion's turns follow the prompt's. (With a `label`, KTO's unpaired layout, it is not SFT
  data: unknown layout.)
- `self-instruct`: `{"instruction", "instances": [{"input", "output"}, ...]}`: one
  conversation per instance.
- `sharegpt`: `{"conversations": [{"from": "human" | "gpt" | "system", "value"}, ...]}`; a
  record that also holds a `chosen` answer (LLaMA-Factory's preference layout) gets it as the
  final assistant turn.
- plain `{"text"}` (TRL's language-modeling layout) is refused record by record (`plain text,
  no turns`): SFT needs user and assistant turns; untagged text belongs in `lmforge train`.

Preferences (`load_preferences`, for reward models and DPO) -> `PreferencePair(prompt, chosen,
rejected)`, the prompt a conversation ending in a user turn:
- `hh-rlhf`: `{"chosen", "rejected"}` dialogues written `\\n\\nHuman: … \\n\\nAssistant: …`;
  both are split into turns, the shared turns before the last assistant turn are the prompt.
  Consecutive turns of one speaker (a few HH dialogues have them) are joined with a blank line.
- `sharegpt-preference` (LLaMA-Factory): `conversations` + `chosen` / `rejected` objects.
- `prompt-chosen-rejected` (TRL's explicit prompt): `{"prompt": str | messages, "chosen",
  "rejected"}`, each answer a string, an assistant message or a list of one (a multi-turn answer
  is skipped, never cut to its last turn).
- `chosen-rejected` (TRL's implicit prompt): `chosen` and `rejected` are whole message lists;
  their common prefix of turns is the prompt, and each must continue it with one assistant turn.

Prompts (`load_prompts`, for RL with checkable answers): `{"question" | "prompt", "answer"}`
-> `PromptExample(prompt, answer)`, as GSM8K ships (answers end in `#### <number>`); the prompt is
one user turn, or the turns of a `prompt` message list or HH transcript.

Bad records never stop a load: each is counted by reason and skipped, with a warning naming
the file and the line (JSONL), record index (JSON array) or row (Parquet, Arrow); the first
ten per file are logged one by one, then a summary. A file with no usable record at all is a `DataFormatError`
naming it. Pass `stats={}` to get the counts back: `records` read, `kept` items yielded,
`skipped` by reason.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from lmforge.alignment.chat import ChatFormatError, validate
from lmforge.errors import UserError
from lmforge.tables import dataset_files, is_table, table_rows

log = logging.getLogger(__name__)

CONVERSATION_FORMATS = ("alpaca", "messages", "prompt-completion", "self-instruct", "sharegpt")
PREFERENCE_FORMATS = ("hh-rlhf", "sharegpt-preference", "prompt-chosen-rejected", "chosen-rejected")
WARN_PER_FILE = 10

# reasons a record is skipped (the keys of stats["skipped"])
NOT_JSON = "not JSON"
NOT_AN_OBJECT = "not a JSON object"
UNKNOWN_LAYOUT = "unknown record layout"
BAD_FIELD = "missing or mistyped field"
BAD_CONVERSATION = "invalid conversation"
NO_ASSISTANT = "no assistant turn"
PROMPTS_DIFFER = "chosen and rejected prompts differ"
SAME_ANSWER = "chosen equals rejected"
PLAIN_TEXT = "plain text, no turns"
TOOL_TURNS = "tool turns (the chat format has no tool role)"
NON_TEXT = "non-text content part"
NO_REFERENCE = "reference answer without a checkable number (GSM8K: `#### <number>`)"

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "system": "system"}
_SHAREGPT_TOOL_SPEAKERS = {"function_call", "observation", "tool", "function"}
_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


class DataFormatError(UserError, ValueError):
    """A data file that cannot be used at all (missing, unreadable, nothing usable in it)."""


class PreferencePair(NamedTuple):
    prompt: list[dict]  # a conversation ending in a user turn
    chosen: str  # the preferred assistant answer
    rejected: str  # the other answer


class PromptExample(NamedTuple):
    prompt: list[dict]  # a conversation ending in a user turn
    answer: str  # the reference answer (GSM8K: the worked solution ending in "#### <number>")


class _Skip(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


# ---- reading records ------------------------------------------------------------------------
def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """(location, parsed record or _Skip) for every record of a JSON array, JSONL, Parquet or
    Arrow file, or a `datasets.save_to_disk` folder (read by `lmforge.tables`)."""
    if path.is_dir():
        for f in dataset_files(path, DataFormatError):
            yield from _table_rows(f)
        return
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    if is_table(path):
        yield from _table_rows(path)
        return
    yield from _json_records(path)


def _table_rows(path: Path) -> Iterator[tuple[str, Any]]:
    for row, rec in table_rows(path, DataFormatError):
        yield f"{path}: row {row}", rec


def data_digest(path) -> str:
    """`sha256:HEX` of a data source, for a run's settings: a file's bytes (as `file_digest`
    gives them), or for a `save_to_disk` folder the names and bytes of the Arrow files read."""
    from lmforge.tokenize.shards import sha256_file

    path = Path(path)
    if not path.is_dir():
        return "sha256:" + sha256_file(path)
    h = hashlib.sha256()
    for f in dataset_files(path, DataFormatError):
        h.update(f"{f.relative_to(path)}:{sha256_file(f)}\n".encode())
    return "sha256:" + h.hexdigest()


def _json_records(path: Path) -> Iterator[tuple[str, Any]]:
    """Records of a JSONL file, line by line, or of a JSON array (read whole: one document)."""
    opener = gzip.open if path.suffix == ".gz" else open
    lineno, first = 0, True
    try:
        with opener(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if first and line.lstrip()[:1] == b"[":  # one JSON array (blank lines kept for its line numbers)
                    yield from _json_array(path, b"\n" * (lineno - 1) + line + f.read())
                    return
                first = False
                try:
                    yield f"{path}:{lineno}", json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    yield f"{path}:{lineno}", _Skip(NOT_JSON, str(exc))
    except (OSError, EOFError) as exc:
        where = f" after line {lineno}" if lineno else ""
        raise DataFormatError(f"{path}: cannot read it{where} ({exc})") from None


def _json_array(path: Path, data: bytes) -> Iterator[tuple[str, Any]]:
    try:
        records = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "bytes"
        raise DataFormatError(f"{path}: not a valid JSON array ({where}: {exc}); fix the file or convert it to JSONL") from None
    for i, rec in enumerate(records):
        yield f"{path}: record {i}", rec


def _load(path, convert: Callable[[dict], list], what: str, stats: dict | None) -> Iterator:
    """Run `convert` over every record; count, warn about and skip the bad ones."""
    path = Path(path)
    skipped: Counter = Counter()
    records = kept = 0
    for where, rec in _records(path):
        records += 1
        try:
            if isinstance(rec, _Skip):
                raise rec
            if not isinstance(rec, dict):
                raise _Skip(NOT_AN_OBJECT, f"got {type(rec).__name__}")
            items = convert(rec)
        except _Skip as skip:
            skipped[skip.reason] += 1
            if sum(skipped.values()) <= WARN_PER_FILE:
                log.warning("%s: skipped (%s%s)", where, skip.reason, f": {skip.detail}" if skip.detail else "")
            continue
        for item in items:
            kept += 1
            yield item
    if stats is not None:
        stats.update(records=records, kept=kept, skipped=dict(skipped))
    if skipped:
        reasons = ", ".join(f"{r}: {n}" for r, n in skipped.most_common())
        log.warning("%s: skipped %d of %d records (%s)", path, sum(skipped.values()), records, reasons)
    if kept == 0:
        hint = f"; skipped {dict(skipped)}" if skipped else " (the file is empty)"
        raise DataFormatError(f"{path}: no usable {what} in {records} records{hint}")


def _pick(fmt: str, known: tuple[str, ...], converters: dict[str, Callable], detect: Callable[[dict], str | None]):
    if fmt != "auto" and fmt not in known:
        raise DataFormatError(f"unknown format {fmt!r}; choose auto or one of: {', '.join(known)}")

    def convert(rec: dict):
        name = detect(rec) if fmt == "auto" else fmt
        if name is None:
            raise _Skip(UNKNOWN_LAYOUT, f"keys {sorted(rec)[:6]}; expected one of: {', '.join(known)}")
        return converters[name](rec)

    return convert


# ---- helpers --------------------------------------------------------------------------------
def _str(rec: dict, key: str, *, optional: bool = False) -> str:
    value = rec.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise _Skip(BAD_FIELD, f"{key!r} should be a string, got {type(value).__name__}")
    return value


def _checked(conv: list[dict], *, prompt: bool = False) -> list[dict]:
    try:
        validate(conv, generation_prompt=prompt)
    except ChatFormatError as exc:
        raise _Skip(BAD_CONVERSATION, str(exc)) from None
    if not prompt and not any(m["role"] == "assistant" for m in conv):
        raise _Skip(NO_ASSISTANT)
    return conv


def _user_text(instruction: str, inp: str) -> str:
    return f"{instruction}\n\n{inp}" if inp.strip() else instruction


def _message(m: Any) -> dict:
    """A {"role", "content"} message from the OpenAI or the ShareGPT spelling; `content` given
    as a list of parts (`[{"type": "text", "text": ...}, ...]`) has its text parts joined."""
    if not isinstance(m, dict):
        raise _Skip(BAD_CONVERSATION, f"a message is {type(m).__name__}, not an object")
    if "from" in m:
        speaker = str(m["from"]).lower()
        if speaker in _SHAREGPT_TOOL_SPEAKERS:
            raise _Skip(TOOL_TURNS, f"a {m['from']!r} turn")
        role = _SHAREGPT_ROLES.get(speaker)
        if role is None:
            raise _Skip(BAD_CONVERSATION, f"unknown speaker {m['from']!r}")
        return {"role": role, "content": m.get("value")}
    role = m.get("role")
    if role in ("tool", "function", "ipython") or m.get("tool_calls") or m.get("function_call"):
        raise _Skip(TOOL_TURNS, f"a {role!r} turn" if role in ("tool", "function", "ipython") else f"an {role} turn with tool calls")
    content = m.get("content")
    if isinstance(content, list):
        content = _join_parts(content, role)
    return {"role": role, "content": content}


def _join_parts(parts: list, role: Any) -> str:
    """The text of a list-of-parts `content`, parts joined as written (as chat templates do)."""
    texts = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text" or not isinstance(part.get("text"), str):
            raise _Skip(NON_TEXT, f"a {role} turn holds a {kind!r} part; lmforge's chat format is text only")
        texts.append(part["text"])
    return "".join(texts)


def _prompt_turns(value: Any, key: str) -> list[dict]:
    """A prompt given as a string (one user turn, or an HH transcript `\n\nHuman: … \n\nAssistant:`
    split into its turns, the empty final Assistant cue dropped) or as a message list. Only a
    string that starts with `Human:` is a transcript; one quoting a dialogue later on is a user turn."""
    if isinstance(value, list):
        return _messages(value, key)
    if not isinstance(value, str):
        raise _Skip(BAD_FIELD, f"{key!r} should be a string or a list of messages, got {type(value).__name__}")
    if not _is_hh(value):
        return [{"role": "user", "content": value}]
    turns = parse_hh("\n\n" + value.lstrip())
    if turns and turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns.pop()
    return turns


def _is_hh(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip().startswith("Human:")


def _messages(value: Any, key: str) -> list[dict]:
    if not isinstance(value, list):
        raise _Skip(BAD_FIELD, f"{key!r} should be a list of messages, got {type(value).__name__}")
    return [_message(m) for m in value]


def _answer(value: Any, key: str) -> str:
    """An answer given as a string, a message object, or a message list ending in the answer."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) > 1:
        raise _Skip(BAD_FIELD, f"{key!r} holds {len(value)} messages; a preference answer is one assistant turn")
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict):
        m = _message(value)
        if m["role"] == "assistant" and isinstance(m["content"], str):
            return m["content"]
    raise _Skip(BAD_FIELD, f"{key!r} should be an answer string or an assistant message")


# ---- conversations --------------------------------------------------------------------------
def _alpaca(rec: dict) -> list[list[dict]]:
    conv = [{"role": "system", "content": _str(rec, "system")}] if rec.get("system") else []
    for pair in rec.get("history") or []:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise _Skip(BAD_FIELD, "'history' should be a list of [question, answer] string pairs")
        conv += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    user = _user_text(_str(rec, "instruction"), _str(rec, "input", optional=True))
    conv += [{"role": "user", "content": user}, {"role": "assistant", "content": _str(rec, "output")}]
    return [_checked(conv)]


def _messages_record(rec: dict) -> list[list[dict]]:
    return [_checked(_messages(rec.get("messages"), "messages"))]


def _self_instruct(rec: dict) -> list[list[dict]]:
    instruction = _str(rec, "instruction")
    instances = rec.get("instances")
    if not isinstance(instances, list) or not instances:
        raise _Skip(BAD_FIELD, "'instances' should be a non-empty list of {input, output}")
    out = []
    for inst in instances:
        if not isinstance(inst, dict):
            raise _Skip(BAD_FIELD, "an instance is not an object")
        user = _user_text(instruction, _str(inst, "input", optional=True))
        out.append(_checked([{"role": "user", "content": user}, {"role": "assistant", "content": _str(inst, "output")}]))
    return out


def _sharegpt(rec: dict) -> list[list[dict]]:
    conv = _messages(rec.get("conversations"), "conversations")
    if "chosen" in rec:
        conv.append({"role": "assistant", "content": _answer(rec["chosen"], "chosen")})
    return [_checked(conv)]


def _prompt_completion(rec: dict) -> list[list[dict]]:
    """TRL's prompt-completion layout: `prompt` + `completion`, each a string or a message list."""
    completion = rec.get("completion")
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion.strip() if _is_hh(rec.get("prompt")) else completion}]
    else:
        completion = _messages(completion, "completion")
    return [_checked(_prompt_turns(rec.get("prompt"), "prompt") + completion)]


def _plain_text(rec: dict) -> list[list[dict]]:
    raise _Skip(PLAIN_TEXT, "field 'text' holds untagged text; SFT needs user and assistant turns "
                            "(`messages` or `prompt` + `completion`); plain text belongs in `lmforge train`")


def _detect_conversation(rec: dict) -> str | None:
    if "messages" in rec:
        return "messages"
    if "conversations" in rec:
        return "sharegpt"
    if "instances" in rec:
        return "self-instruct"
    if "instruction" in rec and "output" in rec:
        return "alpaca"
    if "prompt" in rec and "completion" in rec and "label" not in rec:  # with `label`: KTO's unpaired layout
        return "prompt-completion"
    if "text" in rec:
        return "text"
    return None


def load_conversations(path, fmt: str = "auto", *, stats: dict | None = None) -> Iterator[list[dict]]:
    """Conversations (lists of {"role", "content"}, each with an assistant turn) from `path`."""
    convert = _pick(fmt, CONVERSATION_FORMATS, {"alpaca": _alpaca, "messages": _messages_record,
                                                "prompt-completion": _prompt_completion, "text": _plain_text,
                                                "self-instruct": _self_instruct, "sharegpt": _sharegpt},
                    _detect_conversation)
    return _load(path, convert, "conversations", stats)


# ---- preferences ----------------------------------------------------------------------------
def parse_hh(text: str) -> list[dict]:
    """`"\\n\\nHuman: hi\\n\\nAssistant: hello"` -> [user "hi", assistant "hello"] (turns stripped)."""
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise _Skip(BAD_CONVERSATION, "text before the first '\\n\\nHuman:' turn")
    turns: list[dict] = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = "user" if speaker == "Human" else "assistant"
        content = content.strip()
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = f"{turns[-1]['content']}\n\n{content}"
        else:
            turns.append({"role": role, "content": content})
    return turns


def _pair(prompt: list[dict], chosen: str, rejected: str) -> list[PreferencePair]:
    if chosen == rejected:
        raise _Skip(SAME_ANSWER)
    return [PreferencePair(_checked(prompt, prompt=True), chosen, rejected)]


def _hh(rec: dict) -> list[PreferencePair]:
    chosen, rejected = parse_hh(_str(rec, "chosen")), parse_hh(_str(rec, "rejected"))
    if not chosen or chosen[-1]["role"] != "assistant" or not rejected or rejected[-1]["role"] != "assistant":
        raise _Skip(BAD_CONVERSATION, "chosen and rejected must both end with an Assistant turn")
    if chosen[:-1] != rejected[:-1]:
        raise _Skip(PROMPTS_DIFFER)
    return _pair(chosen[:-1], chosen[-1]["content"], rejected[-1]["content"])


def _sharegpt_preference(rec: dict) -> list[PreferencePair]:
    prompt = _messages(rec.get("conversations"), "conversations")
    return _pair(prompt, _answer(rec.get("chosen"), "chosen"), _answer(rec.get("rejected"), "rejected"))


def _prompt_chosen_rejected(rec: dict) -> list[PreferencePair]:
    prompt = _prompt_turns(rec.get("prompt"), "prompt")
    chosen, rejected = _answer(rec.get("chosen"), "chosen"), _answer(rec.get("rejected"), "rejected")
    if _is_hh(rec.get("prompt")):  # Dahoas-style answers start with the space after "Assistant:"
        chosen, rejected = chosen.strip(), rejected.strip()
    return _pair(prompt, chosen, rejected)


def _chosen_rejected(rec: dict) -> list[PreferencePair]:
    """TRL's implicit prompt: `chosen` and `rejected` are whole conversations; their common
    prefix of turns is the prompt and each must continue it with one assistant turn."""
    chosen, rejected = _messages(rec.get("chosen"), "chosen"), _messages(rec.get("rejected"), "rejected")
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    tails = chosen[n:], rejected[n:]
    if chosen == rejected:
        raise _Skip(SAME_ANSWER)
    if not all(len(t) == 1 and t[0]["role"] == "assistant" and isinstance(t[0]["content"], str) for t in tails):
        raise _Skip(BAD_CONVERSATION, f"after the {n} shared turns, 'chosen' and 'rejected' must each end with "
                                      f"one assistant turn (got {len(tails[0])} and {len(tails[1])} turns)")
    return _pair(chosen[:n], tails[0][0]["content"], tails[1][0]["content"])


def _detect_preference(rec: dict) -> str | None:
    if "chosen" not in rec or "rejected" not in rec:
        return None
    if "conversations" in rec:
        return "sharegpt-preference"
    if "prompt" in rec:
        return "prompt-chosen-rejected"
    if isinstance(rec["chosen"], str) and "\n\nHuman:" in rec["chosen"]:
        return "hh-rlhf"
    if isinstance(rec["chosen"], list) and isinstance(rec["rejected"], list):
        return "chosen-rejected"
    return None


def load_preferences(path, fmt: str = "auto", *, stats: dict | None = None) -> Iterator[PreferencePair]:
    """Preference pairs (prompt conversation, chosen answer, rejected answer) from `path`."""
    convert = _pick(fmt, PREFERENCE_FORMATS, {"hh-rlhf": _hh, "sharegpt-preference": _sharegpt_preference,
                                              "prompt-chosen-rejected": _prompt_chosen_rejected,
                                              "chosen-rejected": _chosen_rejected},
                    _detect_preference)
    return _load(path, convert, "preference pairs", stats)


# ---- prompts --------------------------------------------------------------------------------
def _prompt(rec: dict, answer_ok: Callable[[str], bool] | None = None) -> list[PromptExample]:
    if "question" in rec:
        prompt = [{"role": "user", "content": _str(rec, "question")}]
    else:
        prompt = _prompt_turns(rec.get("prompt"), "prompt")
    answer = _str(rec, "answer")
    if answer_ok is not None and not answer_ok(answer):
        raise _Skip(NO_REFERENCE, f"answer ends {answer[-40:]!r}")
    return [PromptExample(_checked(prompt, prompt=True), answer)]


def load_prompts(path, *, stats: dict | None = None, answer_ok: Callable[[str], bool] | None = None) -> Iterator[PromptExample]:
    """(prompt conversation, reference answer) pairs from `{"question", "answer"}` JSONL;
    with `answer_ok` (the reward's check, e.g. GSM8K's `#### <number>`), a prompt whose answer
    fails it is counted, warned about by line and skipped (a file with none usable is an error)."""
    return _load(path, lambda rec: _prompt(rec, answer_ok), "prompts", stats)
