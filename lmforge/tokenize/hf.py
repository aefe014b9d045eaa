"""The Hugging Face view of an lmforge tokenizer folder: `tokenizer_config.json`.

`tokenizer.json` alone loads in `transformers`, but as a bare tokenizer: no BOS, EOS or pad
token, no BOS added on encode (lmforge trains every document behind `<|bos|>`), no chat
template. `tokenizer_config.json` beside it completes the folder, so that

    >>> tok = AutoTokenizer.from_pretrained("tok/")
    >>> tok("Hello").input_ids[0] == 0                          # <|bos|> first, as in the shards
    >>> tok.apply_chat_template(conv, tokenize=True)           # == lmforge.alignment.chat.render(conv, ...)[0]
    >>> tok.apply_chat_template(conv[:-1], add_generation_prompt=True)  # == render_prompt(conv[:-1], ...)

BOS comes from `tokenizer.json` itself: `lmforge tokenizer train` gives it a `TemplateProcessing`
post-processor (`bos_processor`), as Llama 3's tokenizer has, because `transformers` 5 ignores
`add_bos_token` from the config when a `tokenizer.json` is present (the config still says it, for
readers that use it). lmforge never runs the post-processor (it encodes with
`add_special_tokens=False`). A tokenizer trained before keeps its bytes (their sha256 is the
fingerprint that shards and runs record): a rerun of `tokenizer train` adds only the config, and
`lmforge export hf` writes the post-processor into its copy (`with_bos_processor`).

One difference is inherent: lmforge encodes a message's content as ordinary text (a literal
"<|assistant_end|>" typed by a user stays bytes), while `transformers` tokenises the rendered
template as one string in which special-token literals are specials. Conversations whose
content contains an lmforge special-token literal get different ids; no shared conversation does.
"""

from __future__ import annotations

import json
from pathlib import Path

from lmforge.tokenize.tokenizer import SPECIAL_NAMES, SPECIAL_TOKENS

HF_CONFIG_FILE = "tokenizer_config.json"
BOS, PAD, ASSISTANT_END = "<|bos|>", "<|pad|>", "<|assistant_end|>"

# lmforge.alignment.chat.render as Jinja, with its validation (`raise_exception` is the hook
# transformers gives templates). Literal specials instead of `bos_token`, so every engine that
# renders HF templates (transformers, vLLM, llama.cpp's minja) gives the same string.
CHAT_TEMPLATE = (
    "{%- if messages | length == 0 -%}"
    "{{ raise_exception('a conversation is a non-empty list of messages') }}"
    "{%- endif -%}"
    "{{- '<|bos|>' -}}"
    "{%- set offset = 1 if messages[0]['role'] == 'system' else 0 -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('message ' ~ loop.index0 ~ ': role ' ~ message['role'] ~ ' is not one of system, user, assistant') }}"
    "{%- endif -%}"
    "{%- if message['content'] is not string -%}"
    "{{ raise_exception('message ' ~ loop.index0 ~ ': content must be a string') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'system' and not loop.first -%}"
    "{{ raise_exception('message ' ~ loop.index0 ~ ': a system message may only come first') }}"
    "{%- endif -%}"
    "{%- if message['role'] != 'system' and ((message['role'] == 'user') != ((loop.index0 - offset) % 2 == 0)) -%}"
    "{{ raise_exception('message ' ~ loop.index0 ~ ': user and assistant alternate, user first') }}"
    "{%- endif -%}"
    "{{- '<|' ~ message['role'] ~ '_start|>' ~ message['content'] ~ '<|' ~ message['role'] ~ '_end|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{%- if messages[-1]['role'] != 'user' -%}"
    "{{ raise_exception('a generation prompt follows a user turn, but the last message is ' ~ messages[-1]['role']) }}"
    "{%- endif -%}"
    "{{- '<|assistant_start|>' -}}"
    "{%- endif -%}"
)


def hf_tokenizer_config(*, eos: str = ASSISTANT_END, model_max_length: int | None = None) -> dict:
    """The `tokenizer_config.json` of an lmforge tokenizer.

    `eos` is where generation stops: `<|assistant_end|>` for chat models (as `lmforge chat`
    stops), `<|bos|>` for a pretrained model (as `lmforge sample` stops: the next document).
    """
    if eos not in SPECIAL_TOKENS:
        raise ValueError(f"eos {eos!r} is not an lmforge special token")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": eos,
        "pad_token": PAD,
        "unk_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,  # the chat template's specials must stay specials
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {
            str(i): {"content": f"<|{name}|>", "lstrip": False, "rstrip": False, "normalized": False,
                     "single_word": False, "special": True}
            for i, name in enumerate(SPECIAL_NAMES)
        },
    }
    if model_max_length is not None:
        config["model_max_length"] = model_max_length
    return config


def write_hf_tokenizer_config(directory: str | Path, **kwargs) -> Path:
    """Write `DIR/tokenizer_config.json` (atomically); see `hf_tokenizer_config` for kwargs."""
    from lmforge.documents import write_bytes_atomic

    path = Path(directory) / HF_CONFIG_FILE
    write_bytes_atomic(path, json.dumps(hf_tokenizer_config(**kwargs), indent=2, ensure_ascii=False).encode() + b"\n")
    return path


def bos_processor():
    """A `tokenizers` post-processor that puts `<|bos|>` first on encode (`add_special_tokens=True`,
    the `tokenizers` and `transformers` default), as lmforge's shards and chat format do."""
    from tokenizers import processors

    return processors.TemplateProcessing(single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
                                         special_tokens=[(BOS, SPECIAL_TOKENS[BOS])])


def with_bos_processor(tokenizer_json: bytes) -> bytes:
    """`tokenizer.json` bytes that add `<|bos|>` on encode: unchanged when they already do (every
    tokenizer `lmforge tokenizer train` writes now), else with `bos_processor` set (older ones)."""
    from tokenizers import Tokenizer as HFTokenizer

    tok = HFTokenizer.from_str(tokenizer_json.decode("utf-8"))
    if tok.encode("a").ids[:1] == [SPECIAL_TOKENS[BOS]]:
        return tokenizer_json
    tok.post_processor = bos_processor()
    return tok.to_str(pretty=False).encode("utf-8")
