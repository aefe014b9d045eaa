"""Train an lmforge tokenizer on a bounded, reproducible sample of documents.

Sampling: every document (cut to `max_doc_chars`) gets a key, the first 8 bytes of
blake2b(seed, text). The sample is the documents with the smallest keys, in key order, up to
`sample_bytes` of UTF-8 text: a bottom-k sample that is the same whatever the order of the
input files, and that a heap of at most `sample_bytes` holds while the input streams past.
Exact duplicate texts share a key and enter once. Memory is therefore bounded by the sample,
not by the input: HF `tokenizers` reading a whole 2 GB corpus is what blows up (150 GB RAM
in one report); its trainer's memory grows with the distinct pre-tokenised words of what it
is given, which here is at most `sample_bytes`.

Training: `tokenizers`' BpeTrainer with the 256 byte symbols as the initial alphabet (no
unknown token is possible), the 16 reserved specials first (ids 0..15), a GPT-4-style split
(`digits` 3 by default; `benchmarks/tokenizer.py` measures 3 against 2) and no normaliser, so
decode(encode(x)) == x for every string.

Outputs are written atomically (NAME.tmp then rename): `tokenizer.json` first, then
`tokenizer_config.json` (what `transformers.AutoTokenizer` needs beyond it: BOS/EOS/pad, BOS
added on encode, the chat template; `lmforge.tokenize.hf`), then `lmforge-tokenizer.json`,
whose presence marks a finished run. A rerun with the same settings
and inputs finds it and skips the work; one with other settings or inputs is refused by name
(`lmforge.settings`) unless `overwrite`: shards and manifests made with the old tokenizer would
silently no longer match it.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import orjson

from lmforge.documents import write_bytes_atomic as _atomic_write
from lmforge.documents import find_document_files, iter_documents
from lmforge.tokenize.hf import HF_CONFIG_FILE, bos_processor, write_hf_tokenizer_config
from lmforge.tokenize.tokenizer import (
    META_FILE,
    META_FORMAT,
    META_VERSION,
    NUM_SPECIAL,
    SPECIAL_NAMES,
    SPECIAL_TOKENS,
    TOKENIZER_FILE,
    Tokenizer,
    fingerprint_bytes,
    split_pattern,
)

log = logging.getLogger(__name__)

MIN_VOCAB = NUM_SPECIAL + 256 + 1  # specials + bytes + at least one merge
MAX_VOCAB = 1 << 20


@dataclass
class TrainConfig:
    """Settings of one tokenizer training run; invalid values fail here, naming the flag."""

    vocab_size: int = 32768
    sample_bytes: int = 200_000_000  # of UTF-8 text in the sample (bounds memory)
    max_doc_chars: int = 10_000  # each document is cut to this many characters first
    seed: int = 0
    digits: int = 3  # longest digit run in one pre-token
    min_frequency: int = 2
    text_key: str = "text"

    def __post_init__(self):
        if not MIN_VOCAB <= self.vocab_size <= MAX_VOCAB:
            raise ValueError(
                f"--vocab-size {self.vocab_size}: must be between {MIN_VOCAB} ({NUM_SPECIAL} specials + 256 bytes + 1 merge) "
                f"and {MAX_VOCAB}; 32768 is a good start for a small model"
            )
        if self.sample_bytes < 1000:
            raise ValueError(f"--sample-bytes {self.sample_bytes}: must be at least 1000 (bytes of text to train on)")
        if self.max_doc_chars < 1:
            raise ValueError(f"--max-doc-chars {self.max_doc_chars}: must be at least 1")
        if not 1 <= self.digits <= 4:
            raise ValueError(f"--digits {self.digits}: must be 1..4 (GPT-4 uses 3)")
        if self.min_frequency < 0:
            raise ValueError(f"--min-frequency {self.min_frequency}: must be 0 or more")


@dataclass
class Sample:
    """The documents chosen for training, in key order, and what was read to choose them."""

    texts: list[str]
    sample_bytes: int
    documents_read: int = 0
    bytes_read: int = 0
    duplicates: int = 0
    truncated: int = 0
    errors: dict = field(default_factory=dict)


def _key(seed: bytes, text: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(text, digest_size=8, key=seed).digest(), "big")


def sample_documents(
    files: Iterable[Path],
    sample_bytes: int,
    *,
    seed: int = 0,
    max_doc_chars: int = 10_000,
    text_key: str = "text",
    on_document: Callable[[int], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> Sample:
    """The bottom-k-by-hash sample of the documents in `files`, at most `sample_bytes` of text.

    Deterministic for a given seed and set of documents, whatever the file order. A document
    with a key at or above the smallest key ever evicted is rejected at once, so the result is
    exactly the longest key-ordered prefix that fits.
    """
    seed_bytes = seed.to_bytes(8, "little", signed=True)
    heap: list[tuple[int, int, str]] = []  # (-key, nbytes, text): a max-heap on key
    keys: set[int] = set()
    total = 0
    cutoff = 1 << 64  # keys >= cutoff can never enter
    out = Sample([], sample_bytes)
    for path in files:
        for doc in iter_documents(path, text_key=text_key, errors=out.errors):
            text = doc.text
            if not text:
                continue
            out.documents_read += 1
            if len(text) > max_doc_chars:
                text = text[:max_doc_chars]
                out.truncated += 1
            data = text.encode("utf-8", errors="surrogatepass")
            out.bytes_read += len(data)
            if on_document is not None:
                on_document(len(data))
            key = _key(seed_bytes, data)
            if key >= cutoff:
                continue
            if key in keys:
                out.duplicates += 1
                continue
            heapq.heappush(heap, (-key, len(data), text))
            keys.add(key)
            total += len(data)
            while total > sample_bytes:
                neg, n, _ = heapq.heappop(heap)
                keys.discard(-neg)
                total -= n
                cutoff = min(cutoff, -neg)
        if on_file is not None:
            on_file(path)
    heap.sort(reverse=True)  # ascending key
    out.texts = [t for _, _, t in heap]
    out.sample_bytes = total
    return out


def build_trainer_tokenizer(cfg: TrainConfig):
    """An untrained `tokenizers` BPE with the lmforge pipeline, and its trainer."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
    from tokenizers import Tokenizer as HFTokenizer

    tok = HFTokenizer(models.BPE(unk_token=None, byte_fallback=False, fuse_unk=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_pattern(cfg.digits)), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = bos_processor()  # <|bos|> first when `transformers` encodes; lmforge never runs it
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    return tok, trainer


def train_on_texts(texts: list[str], cfg: TrainConfig, *, show_progress: bool = False) -> bytes:
    """Train on `texts`; return the `tokenizer.json` bytes."""
    tok, trainer = build_trainer_tokenizer(cfg)
    trainer.show_progress = show_progress
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    data = tok.to_str(pretty=False).encode("utf-8")
    return data


@dataclass
class TrainResult:
    directory: Path
    tokenizer: Tokenizer
    meta: dict
    skipped: bool = False


def _inputs_signature(files: list[Path]) -> list[dict]:
    sig = []
    for p in files:
        st = p.stat()
        sig.append({"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return sig


def _refuse_other_settings(out_dir: Path, train_info: dict, settings: dict, signature: list[dict]) -> None:
    """TokenizerError naming each setting (recorded and asked value) and the inputs that changed."""
    from lmforge.settings import changed_settings, flag, settings_refusal
    from lmforge.tokenize.tokenizer import TokenizerError

    old_settings = train_info.get("settings")
    if not isinstance(old_settings, dict):
        raise TokenizerError(f"{out_dir / META_FILE}: records no training settings (not an lmforge tokenizer, or damaged); "
                             "choose another -o folder, or pass --overwrite to train it again")
    changes = changed_settings({flag(k): v for k, v in old_settings.items()}, {flag(k): v for k, v in settings.items()})
    old_inputs = {d.get("path"): d for d in train_info.get("inputs") or [] if isinstance(d, dict)}
    new_inputs = {d["path"]: d for d in signature}
    if old_inputs != new_inputs:
        gone = [Path(p).name for p in old_inputs if p not in new_inputs]
        added = [Path(p).name for p in new_inputs if p not in old_inputs]
        edited = [Path(p).name for p in new_inputs if p in old_inputs and old_inputs[p] != new_inputs[p]]
        what = "; ".join(f"{label} {', '.join(names[:3])}" + (" …" if len(names) > 3 else "")
                         for label, names in (("changed since:", edited), ("new:", added), ("missing:", gone)) if names)
        changes.append(("inputs", f"{len(old_inputs)} files", f"{len(new_inputs)} files, {what}"))
    raise TokenizerError(settings_refusal(
        out_dir, changes, "use the same settings and inputs to keep it, another -o folder, or --overwrite to train it again "
                          "(shards and manifests made with it must then be rebuilt)"))


def train_tokenizer(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    cfg: TrainConfig | None = None,
    *,
    overwrite: bool = False,
    force: bool = False,
    progress: Callable[[str, dict], None] | None = None,
    show_trainer_progress: bool = False,
) -> TrainResult:
    """Sample `inputs`, train, write `tokenizer.json` + `lmforge-tokenizer.json` in `out_dir`.

    A folder that already holds a tokenizer trained with the same settings and inputs is kept
    (`skipped`); one trained with other settings or inputs is refused by name (TokenizerError:
    its shards and manifests would be orphaned) unless `overwrite` (`force`: the old name),
    which trains again in any case.

    Raises FileNotFoundError (missing input), lmforge.documents.DocumentFileError (an
    unreadable file), ValueError (no text in the inputs). `progress(event, info)` receives
    "files" (once, with the list), "document" (bytes), "file" (path) and "training" events.
    """
    cfg = cfg or TrainConfig()
    overwrite = overwrite or force
    files = find_document_files(inputs)
    out_dir = Path(out_dir)
    signature = _inputs_signature(files)
    settings = asdict(cfg)
    meta_path = out_dir / META_FILE
    if not overwrite and meta_path.is_file() and (out_dir / TOKENIZER_FILE).is_file():
        try:
            old = orjson.loads(meta_path.read_bytes())
        except orjson.JSONDecodeError:
            old = {}
        train_info = old.get("training", {}) if isinstance(old, dict) else {}
        if train_info.get("settings") == settings and train_info.get("inputs") == signature:
            if not (out_dir / HF_CONFIG_FILE).is_file():  # trained before lmforge wrote it
                write_hf_tokenizer_config(out_dir)
            return TrainResult(out_dir, Tokenizer.load(out_dir), old, skipped=True)
        _refuse_other_settings(out_dir, train_info, settings, signature)
    elif (out_dir / TOKENIZER_FILE).is_file() and not meta_path.is_file() and not overwrite:
        # lmforge writes tokenizer.json, then its metadata: one without it is a run cut in
        # between (its specials are lmforge's: train again), or someone else's tokenizer
        if b"<|assistant_start|>" not in (out_dir / TOKENIZER_FILE).read_bytes():
            from lmforge.tokenize.tokenizer import TokenizerError

            raise TokenizerError(f"{out_dir / TOKENIZER_FILE}: not an lmforge tokenizer (no {META_FILE} beside it, no lmforge "
                                 "special tokens); choose another -o folder, or pass --overwrite to replace it")

    notify = progress or (lambda event, info: None)
    notify("files", {"files": files})
    t0 = time.perf_counter()
    sample = sample_documents(
        files,
        cfg.sample_bytes,
        seed=cfg.seed,
        max_doc_chars=cfg.max_doc_chars,
        text_key=cfg.text_key,
        on_document=lambda n: notify("document", {"bytes": n}),
        on_file=lambda p: notify("file", {"path": p}),
    )
    if not sample.texts:
        names = ", ".join(str(f) for f in files[:3]) + (" …" if len(files) > 3 else "")
        hint = ""
        if sample.errors.get("malformed_line"):
            hint = (f"; {sample.errors['malformed_line']:,} lines were not JSON objects with a {cfg.text_key!r} string "
                    "(JSON Lines expected, one document per line; pick the field with --text-key)")
        raise ValueError(f"no text in {names}: {sample.documents_read} non-empty documents with a {cfg.text_key!r} field{hint}")
    t1 = time.perf_counter()
    notify("training", {"documents": len(sample.texts), "bytes": sample.sample_bytes})
    data = train_on_texts(sample.texts, cfg, show_progress=show_trainer_progress)
    t2 = time.perf_counter()

    tok = Tokenizer(data)
    meta = {
        "format": META_FORMAT,
        "version": META_VERSION,
        "fingerprint": fingerprint_bytes(data),
        "vocab_size": tok.vocab_size,
        "special_tokens": dict(SPECIAL_TOKENS),
        "special_ids": {name: i for i, name in enumerate(SPECIAL_NAMES)},
        "bos_id": tok.bos_id,
        "pad_id": tok.pad_id,
        "pattern": tok.pattern,
        "token_bytes": tok.token_bytes,
        "training": {
            "settings": settings,
            "inputs": signature,
            "documents_read": sample.documents_read,
            "bytes_read": sample.bytes_read,
            "sample_documents": len(sample.texts),
            "sample_bytes": sample.sample_bytes,
            "duplicates_skipped": sample.duplicates,
            "documents_truncated": sample.truncated,
            "errors": sample.errors,
            "sample_seconds": round(t1 - t0, 3),
            "train_seconds": round(t2 - t1, 3),
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # a run killed between the two writes is then redone
    _atomic_write(out_dir / TOKENIZER_FILE, data)
    write_hf_tokenizer_config(out_dir)  # before the metadata, whose presence marks a finished run
    _atomic_write(meta_path, orjson.dumps(meta))
    tok.meta = meta
    tok.path = out_dir
    return TrainResult(out_dir, tok, meta)
