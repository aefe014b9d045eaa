"""The chat format: one conversation -> token ids and a loss mask, with the reserved specials.

A conversation is a list of messages, `{"role": "system" | "user" | "assistant", "content": str}`:
an optional system message first, then user and assistant turns alternating, user first.
`render` lays it out as

    <|bos|> <|system_start|> ... <|system_end|> <|user_start|> ... <|user_end|>
            <|assistant_start|> ... <|assistant_end|> <|user_start|> ...

with every message's content encoded by `tokenizer.encode` (ordinary text: a user who types
"<|assistant_end|>" gets the bytes of that string, never the special id, so data cannot forge
a turn boundary). Worked example with a tokenizer where "Hi" -> [300] and "Hello!" -> [301, 302]:

    render([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], tok)
    ids  = [0, 2, 300, 3, 4, 301, 302, 5]
    mask = [0, 0,   0, 0, 0,   1,   1, 1]

`mask[i] == 1` means "token ids[i] is a training target": the assistant's content and its
end token (so the model learns to stop), never BOS, role tokens, user or system text, the
assistant start token (the prompt supplies it at generation time) or padding. A trainer
predicting ids[1:] from ids[:-1] weighs the targets with mask[1:].
"""

from __future__ import annotations

from typing import Any

from lmforge.errors import UserError

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
ROLES = ("system", "user", "assistant")


class ChatFormatError(UserError, ValueError):
    """A conversation that cannot be rendered; the message says which message and why."""


def validate(conversation: Any, *, generation_prompt: bool = False) -> None:
    """Raise `ChatFormatError` unless `conversation` is a well-formed list of messages.

    Rules: a non-empty list of dicts with a `role` in ROLES and a str `content`; `system` only
    as the first message; then user and assistant alternate, starting with user. With
    `generation_prompt` the conversation must end with a user turn (the assistant answers next).
    """
    if not isinstance(conversation, list) or not conversation:
        raise ChatFormatError(f"a conversation is a non-empty list of messages, got {_short(conversation)}")
    expected = "user"
    for i, msg in enumerate(conversation):
        if not isinstance(msg, dict):
            raise ChatFormatError(f"message {i} is {type(msg).__name__}, not a dict with 'role' and 'content'")
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            raise ChatFormatError(f"message {i}: role {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ChatFormatError(f"message {i} ({role}): content must be a str, got {type(content).__name__}")
        if role == "system":
            if i != 0:
                raise ChatFormatError(f"message {i}: a system message may only come first")
            continue
        if role != expected:
            raise ChatFormatError(
                f"message {i}: expected a {expected} turn, got {role} (user and assistant alternate, user first)"
            )
        expected = "assistant" if role == "user" else "user"
    if generation_prompt and conversation[-1]["role"] != "user":
        raise ChatFormatError(
            f"a generation prompt follows a user turn, but the last message is {conversation[-1]['role']}"
        )


def render(
    conversation: list[dict],
    tokenizer,
    *,
    add_generation_prompt: bool = False,
    max_tokens: int | None = None,
) -> tuple[list[int], list[int]]:
    """(ids, loss_mask) of equal length for `conversation` (see the module docstring).

    `add_generation_prompt` appends `<|assistant_start|>` (mask 0) after a final user turn:
    the prompt for generation, whose mask is all zeros by design. Otherwise the mask must keep
    at least one 1 after truncation, or `ChatFormatError` is raised (a conversation with no
    assistant tokens teaches nothing and would divide by zero in a mean loss).

    `max_tokens` truncates from the right (the first turns are kept). A generation prompt
    longer than `max_tokens` is an error instead: cutting it would cut the assistant start.
    """
    validate(conversation, generation_prompt=add_generation_prompt)
    if max_tokens is not None and max_tokens < 1:
        raise ChatFormatError(f"max_tokens={max_tokens}: must be at least 1")
    bos = tokenizer.special_id("bos")
    ids, mask = [bos], [0]
    for msg in conversation:
        role = msg["role"]
        body = tokenizer.encode(msg["content"])
        learn = 1 if role == "assistant" else 0
        ids += [tokenizer.special_id(f"{role}_start"), *body, tokenizer.special_id(f"{role}_end")]
        mask += [0, *([learn] * len(body)), learn]
    if add_generation_prompt:
        ids.append(tokenizer.special_id("assistant_start"))
        mask.append(0)
        if max_tokens is not None and len(ids) > max_tokens:
            raise ChatFormatError(
                f"the prompt is {len(ids)} tokens, over max_tokens={max_tokens}; shorten it or raise the limit"
            )
        return ids, mask
    if max_tokens is not None:
        ids, mask = ids[:max_tokens], mask[:max_tokens]
    if not any(mask):
        why = (
            f"no assistant tokens are left within max_tokens={max_tokens}"
            if any(m["role"] == "assistant" for m in conversation)
            else "it has no assistant message"
        )
        raise ChatFormatError(f"empty loss mask: {why}; there is nothing to learn from this conversation")
    return ids, mask


def render_prompt(conversation: list[dict], tokenizer) -> list[int]:
    """Ids of `conversation` followed by `<|assistant_start|>`: what generation starts from."""
    return render(conversation, tokenizer, add_generation_prompt=True)[0]


def parse_completion(ids: list[int], tokenizer) -> str:
    """The assistant's text in generated `ids`: everything before the first `<|assistant_end|>`.

    Other special tokens before it (a model that opens a new turn by mistake) are dropped from
    the text rather than decoded as their literal strings.
    """
    end = tokenizer.special_id("assistant_end")
    ids = list(ids)
    if end in ids:
        ids = ids[: ids.index(end)]
    return tokenizer.decode(ids, skip_special_tokens=True)


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- generation (imports torch lazily: the format above needs none) -------------------------
def load_chat_model(run, device: str = "cpu", tokenizer_dir: str | None = None, purpose: str = "chat"):
    """(model, tokenizer) of a run's newest checkpoint (or a checkpoint folder), checked to match."""
    from lmforge.tokenize import Tokenizer
    from lmforge.train.trainer import TrainingError, load_model

    model, state = load_model(run, device, purpose=purpose)
    tok_dir = tokenizer_dir or state.get("tokenizer_dir")
    if not tok_dir:
        raise TrainingError(f"{run}: the checkpoint names no tokenizer; pass --tokenizer DIR")
    tok = Tokenizer.load(tok_dir)
    if state.get("tokenizer_fingerprint") and tok.fingerprint != state["tokenizer_fingerprint"]:
        raise TrainingError(f"{tok_dir}: not the tokenizer this model was trained with (fingerprint differs)")
    return model, tok


def respond(model, tokenizer, conversation: list[dict], *, max_tokens: int = 256, temperature: float = 0.8,
            top_k: int | None = 50, seed: int = 0) -> str:
    """The model's next assistant turn after `conversation` (which ends with a user turn).

    Generation runs with the KV cache (`lmforge.train.sample.generate`) and stops at
    `<|assistant_end|>`. When the conversation leaves under `max_tokens` of room in the
    model's position limit, the oldest user/assistant exchanges (never the system message
    or the last user turn) are dropped until it fits.
    """
    from lmforge.train.sample import generate

    limit = model.rope_cos.size(0)
    conv = list(conversation)
    ids = render_prompt(conv, tokenizer)
    head = 1 if conv[0]["role"] == "system" else 0
    while len(ids) + max_tokens > limit and len(conv) - head > 1:
        conv = conv[:head] + conv[head + 2 :]
        ids = render_prompt(conv, tokenizer)
    if len(ids) >= limit:
        raise ChatFormatError(f"the prompt alone is {len(ids)} tokens, at or over the model's limit of {limit}; shorten it")
    new = generate(model, ids, max_tokens, temperature=temperature, top_k=top_k, seed=seed,
                   stop={tokenizer.special_id("assistant_end")}, vocab_size=tokenizer.vocab_size)
    return parse_completion(new, tokenizer)
