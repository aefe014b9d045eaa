"""lmforge.tokenize: tokenizer training, fast encoding and inspection.

`from lmforge.tokenize import Tokenizer` imports `tokenizers`/`tiktoken` only when a
tokenizer is constructed; importing this package stays light. Special token ids are fixed
(see `lmforge.tokenize.tokenizer`): 0 <|bos|>, 1 <|pad|>, 2/3 user start/end, 4/5 assistant
start/end, 6/7 system start/end, 8..15 reserved.
"""

from __future__ import annotations

from lmforge.tokenize.tokenizer import (
    ASSISTANT_END_ID,
    ASSISTANT_START_ID,
    BOS_ID,
    NUM_SPECIAL,
    PAD_ID,
    SPECIAL_TOKENS,
    SYSTEM_END_ID,
    SYSTEM_START_ID,
    USER_END_ID,
    USER_START_ID,
    Tokenizer,
    TokenizerError,
)


def __getattr__(name):  # ShardReader pulls numpy/zstandard: imported on first use
    if name == "ShardReader":
        from lmforge.tokenize.shards import ShardReader

        return ShardReader
    raise AttributeError(f"module 'lmforge.tokenize' has no attribute {name!r}")


__all__ = [
    "ShardReader",
    "Tokenizer",
    "TokenizerError",
    "SPECIAL_TOKENS",
    "NUM_SPECIAL",
    "BOS_ID",
    "PAD_ID",
    "USER_START_ID",
    "USER_END_ID",
    "ASSISTANT_START_ID",
    "ASSISTANT_END_ID",
    "SYSTEM_START_ID",
    "SYSTEM_END_ID",
]
