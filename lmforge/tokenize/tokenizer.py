"""The lmforge tokenizer: byte-level BPE with reserved special tokens and a fast encoder.

A tokenizer folder holds these files, written by `lmforge tokenizer train` (and
`tokenizer_config.json`, the `transformers` view: `lmforge.tokenize.hf`):

- `tokenizer.json`: a Hugging Face `tokenizers` file (byte-level BPE, GPT-4-style split,
  no normaliser, no unknown token; a post-processor puts `<|bos|>` first when `tokenizers` or
  `transformers` encode with special tokens). `tokenizers.Tokenizer.from_file` loads it as is.
- `lmforge-tokenizer.json`: what later stages need without parsing the first file: the
  special tokens and their ids, the fingerprint (sha256 of the `tokenizer.json` bytes), the
  split pattern, the vocabulary size and the UTF-8 byte length of every token id (0 for the
  special tokens, so bits per byte = loss_in_bits * tokens / sum(token_bytes[targets])).

Special token ids are fixed for every lmforge tokenizer (shards and the chat format rely on
them): ids 0..15 are reserved, the 256 single bytes follow, then the merges.

    id  token                   use
    0   <|bos|>                 document start; every shard document begins with it
    1   <|pad|>                 padding; never a training target
    2   <|user_start|>          chat: a user turn begins
    3   <|user_end|>            chat: a user turn ends
    4   <|assistant_start|>     chat: an assistant turn begins
    5   <|assistant_end|>       chat: an assistant turn ends (the model learns to emit it)
    6   <|system_start|>        chat: a system prompt begins
    7   <|system_end|>          chat: a system prompt ends
    8-15 <|reserved_0|>..<|reserved_7|>  free for later formats (tools, code) without retraining

No injection through data: `encode(text)` encodes a literal "<|bos|>" in the text as the
ordinary bytes "<", "|", "bos", ..., never as id 0. Specials enter only through the explicit
paths: `encode(text, bos=True)`, `special_id(name)` / the `*_id` attributes, and
`encode_with_specials(text)` for trusted templates.

Encoding runs on tiktoken's Rust BPE built from the trained merges (token id = merge rank,
which holds for a `tokenizers` BPE trained from scratch; checked on load), with a thread pool
over chunks of a batch. It gives the ids `tokenizers` gives on the same `tokenizer.json` (the
tests and `benchmarks/tokenizer.py` compare them) at several times its speed. Without tiktoken,
or for a `tokenizer.json` whose merges do not follow id order, `tokenizers` itself encodes
(with `encode_special_tokens=True`, so still no injection).
"""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import orjson

from lmforge.errors import UserError

TOKENIZER_FILE = "tokenizer.json"
META_FILE = "lmforge-tokenizer.json"
META_FORMAT = "lmforge-tokenizer"
META_VERSION = 1

# name -> (literal, id). The order and ids never change: shards and chat data depend on them.
SPECIAL_NAMES: tuple[str, ...] = (
    "bos",
    "pad",
    "user_start",
    "user_end",
    "assistant_start",
    "assistant_end",
    "system_start",
    "system_end",
) + tuple(f"reserved_{i}" for i in range(8))
SPECIAL_TOKENS: dict[str, int] = {f"<|{name}|>": i for i, name in enumerate(SPECIAL_NAMES)}
NUM_SPECIAL = len(SPECIAL_TOKENS)  # 16: ids 0..15
FIRST_BYTE_ID = NUM_SPECIAL  # the 256 single bytes take ids 16..271

BOS_ID, PAD_ID = 0, 1
USER_START_ID, USER_END_ID = 2, 3
ASSISTANT_START_ID, ASSISTANT_END_ID = 4, 5
SYSTEM_START_ID, SYSTEM_END_ID = 6, 7

# GPT-4 (cl100k) pre-tokenisation split, with one change: a digit group may carry one leading
# space (` ?\p{N}{1,3}`), as GPT-2's ` ?\p{N}+` does. cl100k splits " 42" into " " + "42";
# on held-out GSM8K (vocab 8192, benchmarks/tokenizer.py) that costs 6%: 3.18 bytes per token
# against 3.38 with the space, and leaves the split below a stock ByteLevel BPE (3.32) on
# numeric text. DIGITS is the longest run of digits one piece holds (3 beats 2: 3.38 vs 3.31).
SPLIT_PATTERN_TEMPLATE = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+| ?\p{N}{1,DIGITS}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)


def split_pattern(digits: int = 3) -> str:
    """The GPT-4-style split regex with digit runs of at most `digits` (1..4).

    >>> import regex; regex.findall(split_pattern(3), "I've 12345 apples!")
    ['I', "'ve", ' 123', '45', ' apples', '!']
    """
    if not 1 <= digits <= 4:
        raise ValueError(f"digits={digits}: the digit group must be 1..4")
    return SPLIT_PATTERN_TEMPLATE.replace("DIGITS", str(digits))


class TokenizerError(UserError):
    """A tokenizer folder that cannot be used; the message names the file and the fix."""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which byte-level BPE vocabularies use."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def fingerprint_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Tokenizer:
    """A trained lmforge tokenizer: encode, decode, special ids, token byte lengths.

    >>> tok = Tokenizer.load("tok/")
    >>> tok.encode("Hello world")            # ordinary text, no specials
    [..., ...]
    >>> tok.encode("Hello", bos=True)[0] == tok.bos_id == 0
    True
    >>> tok.decode(tok.encode("naïve 🙂")) == "naïve 🙂"
    True
    """

    bos_id = BOS_ID
    pad_id = PAD_ID
    user_start_id = USER_START_ID
    user_end_id = USER_END_ID
    assistant_start_id = ASSISTANT_START_ID
    assistant_end_id = ASSISTANT_END_ID
    system_start_id = SYSTEM_START_ID
    system_end_id = SYSTEM_END_ID

    def __init__(self, tokenizer_json: bytes, meta: dict | None = None, *, backend: str = "auto", path: Path | None = None):
        from tokenizers import Tokenizer as HFTokenizer

        self.path = path
        self.fingerprint = fingerprint_bytes(tokenizer_json)
        spec = orjson.loads(tokenizer_json)
        self._hf = HFTokenizer.from_str(tokenizer_json.decode("utf-8"))
        self._hf.encode_special_tokens = True  # no injection through data
        self.special_tokens: dict[str, int] = _check_specials(spec, path)
        self.pattern = _split_pattern_of(spec, path)
        self.vocab_size = self._hf.get_vocab_size(with_added_tokens=True)
        byte_encoder = bytes_to_unicode()
        self._byte_decoder = {c: b for b, c in byte_encoder.items()}
        vocab: dict[str, int] = spec["model"]["vocab"]
        self._token_bytes_list: list[bytes] = [b""] * self.vocab_size
        for piece, idx in vocab.items():
            if idx >= NUM_SPECIAL:
                self._token_bytes_list[idx] = bytes(self._byte_decoder[c] for c in piece)
        for literal, idx in self.special_tokens.items():
            self._token_bytes_list[idx] = literal.encode()
        self.token_bytes: list[int] = [0 if i < NUM_SPECIAL else len(b) for i, b in enumerate(self._token_bytes_list)]
        self.meta = meta or {}
        self._special_re = re.compile("|".join(re.escape(s) for s in sorted(self.special_tokens, key=len, reverse=True)))
        self._tt = None
        self.backend = "tokenizers"
        if backend in ("auto", "tiktoken"):
            self._tt = _tiktoken_encoding(spec, self.pattern, vocab, self._byte_decoder, self.special_tokens, self.vocab_size)
            if self._tt is not None:
                self.backend = "tiktoken"
            elif backend == "tiktoken":
                raise TokenizerError("tiktoken backend requested but tiktoken is not installed or the merges are not in id order")

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | os.PathLike, *, backend: str = "auto") -> "Tokenizer":
        """Load `DIR/tokenizer.json` and check it against `DIR/lmforge-tokenizer.json`."""
        directory = Path(directory)
        if directory.is_file():  # a path to tokenizer.json itself
            tok_path, directory = directory, directory.parent
        else:
            tok_path = directory / TOKENIZER_FILE
        if not tok_path.is_file():
            raise TokenizerError(f"{tok_path}: no such file; train one with `lmforge tokenizer train INPUT -o {directory}`")
        data = tok_path.read_bytes()
        meta_path = directory / META_FILE
        meta = None
        if meta_path.is_file():
            try:
                meta = orjson.loads(meta_path.read_bytes())
            except orjson.JSONDecodeError as exc:
                raise TokenizerError(f"{meta_path}: not valid JSON ({exc})") from None
            if meta.get("fingerprint") != fingerprint_bytes(data):
                raise TokenizerError(
                    f"{tok_path}: its sha256 does not match the fingerprint in {meta_path}; "
                    "the file was changed after training; retrain or restore it"
                )
        try:
            return cls(data, meta, backend=backend, path=directory)
        except TokenizerError:
            raise
        except Exception as exc:  # tokenizers raises plain Exception for bad files
            raise TokenizerError(f"{tok_path}: not a byte-level BPE tokenizer.json ({exc})") from None

    # ---- encoding ------------------------------------------------------------------------
    def encode(self, text: str, *, bos: bool = False) -> list[int]:
        """Ids of `text` as ordinary text (special-token literals included); BOS first if asked."""
        ids = self._tt.encode_ordinary(text) if self._tt is not None else self._hf.encode(text, add_special_tokens=False).ids
        return [BOS_ID, *ids] if bos else ids

    def encode_batch(self, texts: Sequence[str], *, bos: bool = False, num_threads: int | None = None) -> list[list[int]]:
        """`encode` over many texts, in parallel; same ids as `tokenizers`' `encode_batch`."""
        texts = list(texts)
        if self._tt is None:
            out = [e.ids for e in self._hf.encode_batch_fast(texts, add_special_tokens=False)]
        else:
            out = self._encode_batch_tiktoken(texts, num_threads)
        if bos:
            out = [[BOS_ID, *ids] for ids in out]
        return out

    def _encode_batch_tiktoken(self, texts: list[str], num_threads: int | None) -> list[list[int]]:
        # tiktoken releases the GIL inside its Rust encoder. One future per *chunk* of texts
        # (not per text, as tiktoken's own encode_ordinary_batch does) keeps the pool's
        # overhead small for short documents.
        n = num_threads or min(8, os.cpu_count() or 1)
        enc = self._tt.encode_ordinary
        if n <= 1 or len(texts) < 2:
            return [enc(t) for t in texts]
        size = max(1, -(-len(texts) // (n * 4)))
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        with ThreadPoolExecutor(n) as pool:
            parts = pool.map(lambda chunk: [enc(t) for t in chunk], chunks)
            return [ids for part in parts for ids in part]

    def encode_with_specials(self, text: str) -> list[int]:
        """Encode trusted text in which special-token literals *are* specials (templates only)."""
        ids: list[int] = []
        pos = 0
        for m in self._special_re.finditer(text):
            if m.start() > pos:
                ids.extend(self.encode(text[pos : m.start()]))
            ids.append(self.special_tokens[m.group()])
            pos = m.end()
        if pos < len(text):
            ids.extend(self.encode(text[pos:]))
        return ids

    def special_id(self, name: str) -> int:
        """The id of a special token by name (`"bos"`) or literal (`"<|bos|>"`)."""
        literal = name if name.startswith("<|") else f"<|{name}|>"
        try:
            return self.special_tokens[literal]
        except KeyError:
            raise KeyError(f"no special token {name!r}; known: {', '.join(SPECIAL_NAMES)}") from None

    encode_special = special_id

    # ---- decoding ------------------------------------------------------------------------
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of `ids`; bytes that are not valid UTF-8 (a cut multi-byte char) become U+FFFD."""
        return self.decode_bytes(ids, skip_special_tokens).decode("utf-8", errors="replace")

    def decode_bytes(self, ids: Iterable[int], skip_special_tokens: bool = False) -> bytes:
        table = self._token_bytes_list
        try:
            if skip_special_tokens:
                return b"".join(table[i] for i in ids if i >= NUM_SPECIAL)
            return b"".join(table[i] for i in ids)
        except (IndexError, TypeError):
            bad = [i for i in ids if not isinstance(i, int) or not 0 <= i < self.vocab_size]
            raise ValueError(f"token ids out of range 0..{self.vocab_size - 1}: {bad[:5]}") from None

    def id_to_bytes(self, idx: int) -> bytes:
        """The bytes of one token (a special token's literal for ids < 16)."""
        return self._token_bytes_list[idx]

    def is_special(self, idx: int) -> bool:
        return 0 <= idx < NUM_SPECIAL

    @property
    def hf(self):
        """The underlying `tokenizers.Tokenizer` (with `encode_special_tokens=True`)."""
        return self._hf

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, backend={self.backend!r}, fingerprint={self.fingerprint[:19]}…)"


def _check_specials(spec: dict, path: Path | None) -> dict[str, int]:
    added = {t["content"]: t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    for literal, idx in SPECIAL_TOKENS.items():
        if added.get(literal) != idx:
            raise TokenizerError(
                f"{path or 'tokenizer.json'}: special token {literal} must have id {idx} "
                f"(found {added.get(literal)}); lmforge tokenizers are trained with `lmforge tokenizer train`"
            )
    return dict(SPECIAL_TOKENS)


def _split_pattern_of(spec: dict, path: Path | None) -> str:
    pre = spec.get("pre_tokenizer") or {}
    items = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    for item in items:
        if item.get("type") == "Split":
            return item["pattern"]["Regex"]
    raise TokenizerError(f"{path or 'tokenizer.json'}: no Split pre-tokenizer; not an lmforge byte-level BPE tokenizer")


def _tiktoken_encoding(spec, pattern, vocab, byte_decoder, specials, vocab_size):
    """A tiktoken Encoding with the same ids, or None when that would not be exact.

    tiktoken merges the adjacent pair whose *concatenation* has the lowest rank; `tokenizers`
    applies merges in list order. The two agree when the token made by merge i has a higher
    id than every earlier merge's token, which a from-scratch BpeTrainer guarantees.
    """
    try:
        import tiktoken
    except ImportError:
        return None
    model = spec["model"]
    if model.get("type") != "BPE" or model.get("ignore_merges") or model.get("byte_fallback") or model.get("dropout"):
        return None
    last = -1
    for merge in model["merges"]:
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        idx = vocab.get(a + b)
        if idx is None or idx <= last:
            return None
        last = idx
    ranks = {bytes(byte_decoder[c] for c in piece): idx for piece, idx in vocab.items() if idx >= NUM_SPECIAL}
    if len(ranks) + len(specials) != vocab_size:
        return None
    return tiktoken.Encoding(name="lmforge", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
