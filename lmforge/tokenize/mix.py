"""Mixture manifests (`mix.json`): which shards a run trains on, in what proportion.

A manifest is the table the LLaMA paper printed (source, sampling proportion, epochs, size)
made machine-readable. Each source is a `shards build` output folder; the manifest lists its
shards by path relative to the manifest (absolute paths and URLs are kept as given), with
tokens, documents, bytes on disk and sha256, and gives the source a sampling weight.
Epochs follow: `epochs = weight * budget / tokens`, where `tokens` are the source's
training tokens (its validation split excluded).

    {"format": "lmforge-mix", "version": 1, "budget": 1400000000000,
     "tokenizer": {"fingerprint": "sha256:…", "vocab_size": 32768, "dir": "/abs/tok"},
     "sources": [{"name": "c4", "weight": 0.15, "epochs": 1.06, "tokens": …, "documents": …,
                  "bytes": …, "shards": [{"path": "c4/shards/00000-c4-0000.tokens.zst",
                  "tokens": …, "documents": …, "bytes": …, "sha256": "…"}],
                  "val": {"shard_index": 0, "start": 123, "end": 456} | null}]}

Validation split: `val_tokens` are carved from the END of each source's last shard in whole
documents (the fewest trailing documents holding at least `val_tokens`), so the split never
cuts a document and `train_ranges()` is every shard in full except that tail.

Integrity: `content_sha256` is the sha256 of the manifest's own canonical JSON (sorted keys,
no whitespace) without that field, so any hand edit (a shard's sha256, a validation range,
the budget, a count, a weight) is refused by `load_manifest`, naming the manifest; a
manifest written before the field existed is read with a warning. Against its shards:
`mix build` and `mix inspect` hash every shard (`verify_shards`) and `mix build` checks each
shard's frames too; `load_manifest` (and so `train`) only checks what costs no read of the
data: each shard's size, its index (CRC-32), tokenizer fingerprint and token count, well
under a millisecond per shard. Measured on this project's shared 2-core Xeon (no SHA
extensions) over a 23 MB shard: sha256 reads 89 MB/s and the frames' CRC-32s 390 MB/s, so
hashing a 100 GB mixture at every train start would cost ~19 minutes (CRC-32s alone ~4);
the trainer instead relies on zstd's XXH64 checksum of every frame it decompresses (a
corrupt frame stops the run with an error naming the shard and frame) and on the manifest's
own checksum for the values it records.

Weights: `NAME=PATH:WEIGHT` gives a weight; `NAME=PATH@EPOCHS` fixes the epochs instead, and
that source takes `epochs * tokens / budget` of the budget; the weighted sources share the
rest in proportion to their weights. Weights that do not sum to 1 are normalised (and a
note says so).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from lmforge.errors import UserError
from lmforge.tokenize.build import SOURCE_FILE, SOURCE_FORMAT
from lmforge.tokenize.shards import ShardError, ShardReader, sha256_file

log = logging.getLogger(__name__)

MIX_FORMAT = "lmforge-mix"
CHECKSUM_KEY = "content_sha256"
MIX_VERSION = 1
_SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


class MixError(UserError):
    """A manifest or source that cannot be used; the message names the file and the fix."""


@dataclass
class ShardEntry:
    path: Path  # absolute (resolved from the manifest-relative path); a URL stays a str
    tokens: int
    documents: int
    bytes: int
    sha256: str


@dataclass
class TokenRange:
    shard_index: int  # into MixSource.shards
    start: int  # token offsets inside that shard, document-aligned
    end: int


@dataclass
class MixSource:
    name: str
    weight: float  # normalised: the weights of a manifest sum to 1
    epochs: float  # weight * budget / tokens
    tokens: int  # training tokens (validation excluded)
    documents: int
    bytes: int
    shards: list[ShardEntry]
    val: TokenRange | None = None
    val_documents: int = 0

    def train_ranges(self) -> list[tuple[int, int, int]]:
        """(shard_index, start, end) token ranges to train on: every shard minus the val tail."""
        out = []
        for i, s in enumerate(self.shards):
            end = s.tokens
            if self.val is not None and i == self.val.shard_index:
                end = self.val.start
            if end > 0:
                out.append((i, 0, end))
        return out

    @property
    def val_tokens(self) -> int:
        return 0 if self.val is None else self.val.end - self.val.start


@dataclass
class Manifest:
    path: Path
    budget: int
    fingerprint: str
    vocab_size: int
    tokenizer_dir: str | None
    sources: list[MixSource] = field(default_factory=list)
    unchanged: bool = False  # `build_manifest` found this very manifest already written

    def source(self, name: str) -> MixSource:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"{self.path}: no source {name!r} (sources: {', '.join(s.name for s in self.sources)})")

    def to_json(self) -> dict:
        return {
            "format": MIX_FORMAT,
            "version": MIX_VERSION,
            "budget": self.budget,
            "tokenizer": {"fingerprint": self.fingerprint, "vocab_size": self.vocab_size, "dir": self.tokenizer_dir},
            "sources": [_source_json(s, self.path.resolve().parent) for s in self.sources],
        }


def content_sha256(data: dict) -> str:
    """sha256 of a manifest's canonical JSON (sorted keys, compact) without `content_sha256`."""
    body = {k: v for k, v in data.items() if k != CHECKSUM_KEY}
    return "sha256:" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _is_url(p: str) -> bool:
    return "://" in p


def _rel(path, base: Path) -> str:
    if isinstance(path, str) and _is_url(path):
        return path
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return str(path)


def _source_json(s: MixSource, base: Path) -> dict:
    return {
        "name": s.name,
        "weight": s.weight,
        "epochs": s.epochs,
        "tokens": s.tokens,
        "documents": s.documents,
        "bytes": s.bytes,
        "val_tokens": s.val_tokens,
        "val_documents": s.val_documents,
        "shards": [
            {"path": _rel(e.path, base), "tokens": e.tokens, "documents": e.documents, "bytes": e.bytes, "sha256": e.sha256}
            for e in s.shards
        ],
        "val": None if s.val is None else {"shard_index": s.val.shard_index, "start": s.val.start, "end": s.val.end},
    }


# ---- parsing the command line and recipes --------------------------------------------------


def parse_tokens(value, flag: str = "") -> int:
    """`1400000000000`, `1.4T`, `300B`, `10M`, `1_000k` -> an int number of tokens."""
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    else:
        text = str(value).strip().lower().replace("_", "").replace(",", "")
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbgt]?)", text)
        if not m:
            raise ValueError(f"{flag + ' ' if flag else ''}{value!r}: not a token count (examples: 1000000, 10M, 300B, 1.4T)")
        n = int(round(float(m.group(1)) * _SUFFIXES.get(m.group(2), 1)))
    if n <= 0:
        raise ValueError(f"{flag + ' ' if flag else ''}{value!r}: a token count must be positive")
    return n


@dataclass
class SourceSpec:
    """One `--source`: NAME=PATH:WEIGHT or NAME=PATH@EPOCHS."""

    name: str
    path: str
    weight: float | None = None
    epochs: float | None = None

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        name, eq, rest = text.partition("=")
        if not eq or not name or not rest:
            raise ValueError(f"--source {text!r}: expected NAME=PATH:WEIGHT or NAME=PATH@EPOCHS (e.g. c4=shards/c4:0.15)")
        m = re.fullmatch(r"(.+)([:@])([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|-[0-9.]+)", rest)
        if not m:
            raise ValueError(f"--source {text!r}: no weight; expected NAME=PATH:WEIGHT or NAME=PATH@EPOCHS (e.g. c4=shards/c4:0.15)")
        path, sep, num = m.group(1), m.group(2), float(m.group(3))
        spec = cls(name.strip(), path, weight=num if sep == ":" else None, epochs=num if sep == "@" else None)
        spec.check(f"--source {text!r}")
        return spec

    def check(self, where: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"{where}: source name {self.name!r} may hold letters, digits, '_', '.', '-' only")
        if (self.weight is None) == (self.epochs is None):
            raise ValueError(f"{where}: give a weight or epochs for source {self.name!r}, not both")
        for key, value in (("weight", self.weight), ("epochs", self.epochs)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{where}: {key} {value} for source {self.name!r} is not a finite number")
        if self.weight is not None and self.weight <= 0:
            raise ValueError(f"{where}: weight {self.weight} for source {self.name!r} must be > 0 (drop the source to exclude it)")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"{where}: epochs {self.epochs} for source {self.name!r} must be > 0")


@dataclass
class MixRecipe:
    """What `mix build` needs: sources, budget, validation tokens (from flags or a TOML file)."""

    sources: list[SourceSpec]
    budget: int
    val_tokens: int = 0

    def __post_init__(self):
        if not self.sources:
            raise ValueError("no sources: give --source NAME=PATH:WEIGHT (one per source) or --from-toml RECIPE")
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dup)}")
        if self.val_tokens < 0:
            raise ValueError(f"--val-tokens {self.val_tokens}: must be 0 or more")


def load_recipe(path: str | os.PathLike) -> MixRecipe:
    """A TOML recipe: `budget`, optional `val_tokens`, and `[[source]]` tables with `name`,
    `path` (relative to the TOML file) and `weight` or `epochs`."""
    from lmforge.documents import read_toml

    path = Path(path)
    data = read_toml(path, MixError)
    if "budget" not in data:
        raise MixError(f"{path}: no `budget` (the number of training tokens, e.g. budget = \"1.4T\")")
    specs = []
    for i, src in enumerate(data.get("source", [])):
        where = f"{path}: [[source]] #{i + 1}"
        if "name" not in src or "path" not in src:
            raise MixError(f"{where}: needs `name` and `path`")
        p = str(src["path"])
        if not _is_url(p) and not os.path.isabs(p):
            p = str(path.parent / p)
        spec = SourceSpec(str(src["name"]), p, src.get("weight"), src.get("epochs"))
        try:
            spec.check(where)
        except ValueError as exc:
            raise MixError(str(exc)) from None
        specs.append(spec)
    try:
        vt = data.get("val_tokens", 0)
        return MixRecipe(specs, parse_tokens(data["budget"], "budget"), 0 if vt in (0, "0") else parse_tokens(vt, "val_tokens"))
    except ValueError as exc:
        raise MixError(f"{path}: {exc}") from None


# ---- building ------------------------------------------------------------------------------


def _read_source(spec: SourceSpec) -> tuple[Path, dict]:
    p = Path(spec.path)
    src_file = p / SOURCE_FILE if p.is_dir() else p
    if not src_file.is_file():
        hint = " (the build did not finish: run the same `lmforge shards build` again)" if p.is_dir() and (p / ".build").is_dir() else ""
        raise MixError(f"source {spec.name!r}: {src_file}: no such file{hint}; point PATH at a `lmforge shards build` output folder")
    try:
        data = orjson.loads(src_file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise MixError(f"source {spec.name!r}: {src_file}: not valid JSON ({exc}); rebuild the shards") from None
    if data.get("format") != SOURCE_FORMAT:
        raise MixError(f"source {spec.name!r}: {src_file}: not an lmforge source summary (format {data.get('format')!r})")
    if not data.get("shards") or not data.get("tokens"):
        raise MixError(f"source {spec.name!r}: {src_file}: the source is empty (no tokens); check its inputs")
    return src_file, data


def _verify_built_shard(name: str, src_file: Path, entry: ShardEntry) -> None:
    """`mix build`'s check of a shard it lists: its sha256 against `source.json` (a match
    means every frame is as `shards build` wrote it, CRC-32 and zstd checksums included);
    on a mismatch the frames' CRC-32s name the first bad frame. Refused, naming the shard."""
    fix = f"delete it and rerun `lmforge shards build` for {src_file.parent}"
    if sha256_file(entry.path) == _hex(entry.sha256):
        return
    try:
        with ShardReader(entry.path) as r:
            problems = r.verify(decompress=False)
    except ShardError as exc:
        raise MixError(f"source {name!r}: {exc}") from None
    if problems:
        raise MixError(f"source {name!r}: shard {entry.path}: {problems[0].message} (the shard is corrupted); {fix}")
    raise MixError(f"source {name!r}: shard {entry.path} does not match its sha256 in {src_file} (changed since it was built); {fix}")


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1] if digest.startswith("sha256:") else digest


def verify_shards(manifest: "Manifest", on_shard=None) -> None:
    """Hash every local shard of `manifest` and compare with the sha256 it records; raises
    MixError naming the manifest and the first shard that differs. Reads every byte
    (89 MB/s on a 2-core Xeon without SHA extensions): `mix inspect` runs it, `train`
    does not (see the module docstring). `on_shard(bytes)` is called after each shard."""
    for s in manifest.sources:
        for e in s.shards:
            if isinstance(e.path, str):
                continue  # URL: checked when opened
            if sha256_file(e.path) != _hex(e.sha256):
                raise MixError(
                    f"{manifest.path}: source {s.name!r}: shard {e.path} does not match its sha256 in the manifest "
                    "(changed since the manifest was built); rebuild the shards and the manifest (`lmforge shards build`, `lmforge mix build`)"
                )
            if on_shard is not None:
                on_shard(e.bytes)


def _val_range(name: str, shard: ShardEntry, index: int, val_tokens: int, only_shard: bool) -> tuple[TokenRange, int]:
    with ShardReader(shard.path) as r:
        starts = r.doc_starts.tolist()
        total = len(r)
    # the fewest trailing documents holding at least val_tokens
    j = len(starts) - 1
    while j > 0 and total - starts[j] < val_tokens:
        j -= 1
    start = starts[j]
    if start == 0 and (only_shard or total - start < val_tokens):
        raise MixError(
            f"source {name!r}: --val-tokens {val_tokens} would take all of its last shard {shard.path} "
            f"({total} tokens, {len(starts)} documents); lower --val-tokens or add data"
        )
    return TokenRange(index, start, total), len(starts) - j


def mix_settings(data: dict) -> dict:
    """What a manifest was made from, as `lmforge.settings` compares it: the budget, the
    tokenizer, and per source its weight, shards (paths and sha256) and validation tokens.
    Read from the manifest itself, so a manifest records its settings by being what it is, and
    one from any lmforge version compares."""
    import hashlib

    out = {"--budget": data.get("budget"), "tokenizer": (data.get("tokenizer") or {}).get("fingerprint"),
           "sources": [s.get("name") for s in data.get("sources", [])]}
    for s in data.get("sources", []):
        shards = [[sh.get("path"), sh.get("sha256"), sh.get("tokens")] for sh in s.get("shards", [])]
        digest = hashlib.sha256(orjson.dumps(shards)).hexdigest()[:12]
        out[f"--source {s.get('name')} weight"] = s.get("weight")
        out[f"--source {s.get('name')} shards"] = f"{len(shards)} shards ({digest})"
        out[f"--val-tokens of {s.get('name')}"] = s.get("val_tokens")
    return out


def _existing_manifest(out_path: Path, data: dict, overwrite: bool) -> bool:
    """True when `out_path` already is the manifest `data` describes (nothing to write); False
    when there is none, or `overwrite` replaces it. Another manifest is refused by name (a run
    trained on it could no longer resume); a file that is no manifest is never replaced."""
    from lmforge.settings import changed_settings, settings_refusal

    if not out_path.exists():
        return False
    if out_path.is_dir():
        raise MixError(f"{out_path}: is a folder; give the manifest's file name (mix.json)")
    try:
        old = orjson.loads(out_path.read_bytes())
    except orjson.JSONDecodeError:
        old = None
    if not isinstance(old, dict) or old.get("format") != MIX_FORMAT:
        raise MixError(f"{out_path}: exists and is not an lmforge mixture manifest (or is damaged); lmforge will not replace it: "
                       "move it away, or choose another -o")
    changes = changed_settings(mix_settings(old), mix_settings(data))
    if not changes:
        return True
    if overwrite:
        return False
    raise MixError(settings_refusal(out_path, changes, "build it with the same sources and --budget to keep it, choose another -o, "
                                                       "or pass --overwrite to replace it (a run trained on it can then no longer resume)"))


def build_manifest(recipe: MixRecipe, out_path: str | os.PathLike, *, notes: list[str] | None = None,
                   overwrite: bool = False) -> Manifest:
    """Read each source's `source.json`, check tokenizers agree, carve validation splits,
    derive weights and epochs, and write the manifest atomically. `notes` collects what was
    adjusted (normalised weights) for the caller to print.

    An existing manifest with the same content is kept as it is (`Manifest.unchanged`); one
    made with other sources, weights, budget or shards is refused by name unless `overwrite`."""
    notes = notes if notes is not None else []
    out_path = Path(out_path)
    loaded = []
    fingerprint = vocab_size = tok_dir = None
    first_name = None
    for spec in recipe.sources:
        src_file, data = _read_source(spec)
        tk = data.get("tokenizer", {})
        if fingerprint is None:
            fingerprint, vocab_size, tok_dir, first_name = tk.get("fingerprint"), tk.get("vocab_size"), tk.get("dir"), spec.name
        elif tk.get("fingerprint") != fingerprint:
            raise MixError(
                f"source {spec.name!r} ({src_file}) was tokenised with {tk.get('fingerprint')}, but source {first_name!r} with "
                f"{fingerprint}; every source of a mix must use one tokenizer: rebuild its shards with the same --tokenizer"
            )
        shards = []
        for s in data["shards"]:
            sp = s["path"]
            path = sp if _is_url(sp) else (src_file.parent / sp).resolve()
            if not _is_url(sp) and not Path(path).is_file():
                raise MixError(f"source {spec.name!r}: shard {path} listed in {src_file} is missing; rerun `lmforge shards build` for it")
            entry = ShardEntry(path, int(s["tokens"]), int(s["documents"]), int(s["bytes"]), s["sha256"])
            if not _is_url(sp):
                _verify_built_shard(spec.name, src_file, entry)
            shards.append(entry)
        val, val_docs = None, 0
        if recipe.val_tokens:
            val, val_docs = _val_range(spec.name, shards[-1], len(shards) - 1, recipe.val_tokens, len(shards) == 1)
        tokens = sum(s.tokens for s in shards) - (val.end - val.start if val else 0)
        documents = sum(s.documents for s in shards) - val_docs
        loaded.append((spec, shards, val, val_docs, tokens, documents))

    budget = recipe.budget
    fixed = {spec.name: spec.epochs * tokens / budget for spec, _, _, _, tokens, _ in loaded if spec.epochs is not None}
    fixed_total = sum(fixed.values())
    weighted = [(spec.name, spec.weight) for spec, *_ in loaded if spec.weight is not None]
    given = sum(w for _, w in weighted)
    if fixed and fixed_total >= 1 and weighted:
        raise MixError(
            f"sources with fixed epochs ({', '.join(fixed)}) already take {fixed_total:.3f} of the budget; "
            "raise --budget or lower their epochs so the weighted sources get a share"
        )
    if weighted:
        remaining = 1.0 - fixed_total
        if abs(given - remaining) > 1e-9:
            notes.append(
                f"weights of {', '.join(n for n, _ in weighted)} sum to {given:.6g}"
                + (f" (fixed-epoch sources take {fixed_total:.4g})" if fixed else "")
                + f"; normalised to {remaining:.6g}"
            )
        weights = {n: w * remaining / given for n, w in weighted}
    else:
        weights = {}
        if abs(fixed_total - 1) > 1e-9:
            notes.append(f"fixed epochs give weights summing to {fixed_total:.6g}; normalised to 1 (epochs scale accordingly)")
    weights.update(fixed)
    total_w = sum(weights.values())
    sources = []
    for spec, shards, val, val_docs, tokens, documents in loaded:
        w = weights[spec.name] / total_w
        sources.append(
            MixSource(
                name=spec.name,
                weight=w,
                epochs=w * budget / tokens,
                tokens=tokens,
                documents=documents,
                bytes=sum(s.bytes for s in shards),
                shards=shards,
                val=val,
                val_documents=val_docs,
            )
        )
    manifest = Manifest(out_path, budget, fingerprint, int(vocab_size), tok_dir, sources)
    data = manifest.to_json()
    if _existing_manifest(out_path, data, overwrite):
        kept = load_manifest(out_path)
        kept.unchanged = True
        return kept
    out_path.parent.mkdir(parents=True, exist_ok=True)
    data[CHECKSUM_KEY] = content_sha256(data)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, out_path)
    return load_manifest(out_path)


# ---- loading -------------------------------------------------------------------------------


def load_manifest(path: str | os.PathLike, *, check_shards: bool = True, shards_here: bool = True) -> Manifest:
    """Read and validate a `mix.json`.

    Raises MixError naming the manifest (and the shard) for: a missing file, bad JSON, a
    wrong format or version, content that does not match its `content_sha256` (a hand
    edit), missing fields, weights <= 0, an empty source, a shard file that is missing or
    whose size differs from the manifest, and (with `check_shards`) a shard whose index is
    corrupted or whose tokenizer fingerprint or token count is not the manifest's. Shard
    sha256s are `verify_shards`'s job (`mix inspect`): reading every byte here would make
    every train start as slow as the corpus is big (see the module docstring).
    `shards_here=False`: the shards are not checked at all (`fetch_manifest`, before it
    downloads them).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MixError(f"{path}: no such manifest; build one with `lmforge mix build --source NAME=PATH:WEIGHT --budget TOKENS -o {path}`") from None
    except IsADirectoryError:
        raise MixError(f"{path}: is a folder; pass the manifest file (mix.json)") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MixError(f"{path}: not valid JSON ({exc}); rebuild it with `lmforge mix build`") from None
    if not isinstance(data, dict) or data.get("format") != MIX_FORMAT:
        raise MixError(f"{path}: not an lmforge mixture manifest (format {data.get('format') if isinstance(data, dict) else None!r})")
    if data.get("version") != MIX_VERSION:
        raise MixError(f"{path}: manifest version {data.get('version')}; this lmforge reads version {MIX_VERSION}")
    if CHECKSUM_KEY in data:
        if data[CHECKSUM_KEY] != content_sha256(data):
            raise MixError(
                f"{path}: edited or corrupted (its content does not match its {CHECKSUM_KEY}); "
                "rebuild it with `lmforge mix build` instead of editing it"
            )
    else:
        log.warning("%s: written before manifests carried %s; its values are not checked (rebuild it with `lmforge mix build`)", path, CHECKSUM_KEY)
    base = path.resolve().parent
    try:
        tk = data["tokenizer"]
        fingerprint = tk["fingerprint"]
        manifest = Manifest(path, int(data["budget"]), fingerprint, int(tk["vocab_size"]), tk.get("dir"), [])
        for src in data["sources"]:
            name = src["name"]
            shards = []
            for s in src["shards"]:
                sp = s["path"]
                p = sp if _is_url(sp) else (Path(sp) if os.path.isabs(sp) else (base / sp).resolve())
                shards.append(ShardEntry(p, int(s["tokens"]), int(s["documents"]), int(s["bytes"]), s["sha256"]))
            v = src.get("val")
            val = TokenRange(int(v["shard_index"]), int(v["start"]), int(v["end"])) if v else None
            manifest.sources.append(
                MixSource(name, float(src["weight"]), float(src["epochs"]), int(src["tokens"]), int(src["documents"]),
                          int(src["bytes"]), shards, val, int(src.get("val_documents", 0)))
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise MixError(f"{path}: malformed manifest ({type(exc).__name__}: {exc}); rebuild it with `lmforge mix build`") from None
    if not manifest.sources:
        raise MixError(f"{path}: no sources")
    if manifest.budget <= 0:
        raise MixError(f"{path}: budget {manifest.budget} tokens; it must be > 0 (rebuild it with `lmforge mix build --budget TOKENS`)")
    for s in manifest.sources:
        if s.weight <= 0:
            raise MixError(f"{path}: source {s.name!r} has weight {s.weight}; weights must be > 0 (rebuild the manifest)")
        if not s.shards or s.tokens <= 0:
            raise MixError(f"{path}: source {s.name!r} is empty (no training tokens); rebuild the manifest without it")
        if s.val is not None and not (0 <= s.val.shard_index < len(s.shards) and 0 <= s.val.start < s.val.end <= s.shards[s.val.shard_index].tokens):
            raise MixError(f"{path}: source {s.name!r}: validation range {s.val} lies outside its shards")
    total = sum(s.weight for s in manifest.sources)
    if abs(total - 1) > 1e-6:
        raise MixError(f"{path}: weights sum to {total}, not 1; rebuild it with `lmforge mix build`")
    if not shards_here:
        return manifest
    for s in manifest.sources:
        for e in s.shards:
            if isinstance(e.path, str):
                continue  # URL: checked when opened
            try:
                size = e.path.stat().st_size
            except FileNotFoundError:
                raise MixError(
                    f"{path}: source {s.name!r}: shard {e.path} is missing (moved or deleted?); shard paths are relative to "
                    f"the manifest: move them back, or rebuild the manifest with `lmforge mix build`"
                ) from None
            if size != e.bytes:
                raise MixError(f"{path}: source {s.name!r}: shard {e.path} is {size} bytes, the manifest says {e.bytes}; it was changed or replaced: rebuild the manifest")
            if check_shards:
                try:
                    with ShardReader(e.path) as r:
                        fp, n = r.fingerprint, len(r)
                except ShardError as exc:
                    raise MixError(f"{path}: source {s.name!r}: {exc}") from None
                if fp != manifest.fingerprint:
                    raise MixError(
                        f"{path}: source {s.name!r}: shard {e.path} was tokenised with {fp}, the manifest with {manifest.fingerprint}; "
                        "rebuild the shards with the manifest's tokenizer"
                    )
                if n != e.tokens:
                    raise MixError(f"{path}: source {s.name!r}: shard {e.path} holds {n} tokens, the manifest says {e.tokens}; rebuild the manifest")
    return manifest


def manifest_table(manifest: Manifest) -> dict:
    """The `mix inspect --json` object: budget, totals, and one row per source."""
    rows = []
    for s in manifest.sources:
        rows.append(
            {
                "name": s.name,
                "weight": s.weight,
                "tokens": s.tokens,
                "epochs": s.epochs,
                "bytes": s.bytes,
                "documents": s.documents,
                "shards": len(s.shards),
                "val_tokens": s.val_tokens,
                "sampled_tokens": round(s.weight * manifest.budget),
            }
        )
    return {
        "manifest": str(manifest.path),
        "budget": manifest.budget,
        "fingerprint": manifest.fingerprint,
        "vocab_size": manifest.vocab_size,
        "tokens": sum(r["tokens"] for r in rows),
        "bytes": sum(r["bytes"] for r in rows),
        "documents": sum(r["documents"] for r in rows),
        "sources": rows,
    }


# ---- manifests in object storage -------------------------------------------------------------


def stage_sources(recipe: MixRecipe, out_url: str) -> MixRecipe:
    """The recipe with each source URL replaced by its copy in the store's local mirror
    (`lmforge.remote.store_mirror`), where `mix build -o OUT_URL` writes the manifest too, so
    that the shard paths it records relative to the manifest are the same in the store.

    Every source must be in the manifest's store (a local folder, or another bucket, could not
    be named relative to it): refused by name otherwise."""
    import dataclasses

    from lmforge.remote import fetch, store_mirror, store_root

    staged = []
    for spec in recipe.sources:
        if not _is_url(spec.path) or store_root(spec.path) != store_root(out_url):
            raise MixError(
                f"source {spec.name!r}: {spec.path} is not in {store_root(out_url)}, where the manifest goes; a manifest in "
                f"object storage names its shards relative to itself: build them there first (`lmforge shards build … "
                f"-o {store_root(out_url)}/shards/{spec.name}`) and give that URL")
        local = store_mirror(spec.path.rstrip("/"))
        (local / SOURCE_FILE).unlink(missing_ok=True)  # one rebuilt in the store may have the old one's size
        fetch(spec.path.rstrip("/"), into=local)
        staged.append(dataclasses.replace(spec, path=str(local)))
    return dataclasses.replace(recipe, sources=staged)


def fetch_manifest(url: str) -> Path:
    """A local copy of the manifest at `url` and of every shard it names (in the store's local
    mirror, `lmforge.remote.store_mirror`, where its relative shard paths hold); returns the
    local manifest's path. The manifest is fetched anew each time; a shard is downloaded unless
    the local copy is one already checked against this sha256 (recorded with its size and
    mtime in `MIRROR/.lmforge-verified.json`), and every shard downloaded or not yet checked
    is hashed against the manifest's sha256 (a mismatch is refused, naming the shard and the
    manifest). Processes of one torchrun fetch in turn (a file lock), the later ones finding
    the files there and checked."""
    import fcntl

    from lmforge.remote import fetch, store_mirror, store_root

    local = store_mirror(url)
    mirror = store_mirror(store_root(url))
    local.parent.mkdir(parents=True, exist_ok=True)
    record = mirror / ".lmforge-verified.json"
    with open(mirror / ".lmforge-fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            verified = orjson.loads(record.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            verified = {}
        local.unlink(missing_ok=True)  # a manifest rebuilt in the store may have the old one's size
        fetch(url, into=local.parent)
        manifest = load_manifest(local, check_shards=False, shards_here=False)
        for s in manifest.sources:
            for e in s.shards:
                if isinstance(e.path, str):
                    continue  # an absolute URL: read where it is
                path, want = Path(e.path), _hex(e.sha256)
                try:
                    rel = path.relative_to(mirror).as_posix()
                except ValueError:
                    raise MixError(f"{url}: source {s.name!r}: shard {e.path} lies outside the store; rebuild the manifest "
                                   "with `lmforge mix build` from shards in the store") from None
                st = path.stat() if path.is_file() else None
                if st is not None and verified.get(rel) == [st.st_size, st.st_mtime_ns, want]:
                    continue
                downloaded = st is None or st.st_size != e.bytes
                if downloaded:
                    path.unlink(missing_ok=True)
                    fetch(f"{store_root(url)}/{rel}", into=path.parent)
                digest = sha256_file(path)
                if digest != want and not downloaded:  # a local copy of another build: the store's, then
                    path.unlink()
                    fetch(f"{store_root(url)}/{rel}", into=path.parent)
                    digest = sha256_file(path)
                if digest != want:
                    path.unlink()
                    raise MixError(f"{url}: source {s.name!r}: shard {store_root(url)}/{rel} does not match its sha256 in the "
                                   "manifest (changed in the store since the manifest was built); rebuild the shards and the manifest")
                st = path.stat()
                verified[rel] = [st.st_size, st.st_mtime_ns, want]
                tmp = record.with_name(record.name + ".tmp")
                tmp.write_bytes(orjson.dumps(verified))
                os.replace(tmp, record)
    return local
