"""URL block lists, as FineWeb applied them before text extraction, offline.

The lists are the ones datatrove 0.10.1 ships in its package assets: 4.56 million blocked
domains and 19,587 blocked URLs (`url_filterblacklistsv0_3_0.tar.gz`, from the UT1 blacklists),
215 banned words, 134 banned subwords and 88 "soft" words. A document is dropped when

- its host or any parent domain is blocked (`url_blocked_domain`); datatrove checks the
  registered domain and the full host via `tldextract`, we check every dot-suffix of the host,
  which covers both without a public-suffix list;
- its URL, with or without the scheme, is blocked (`url_blocked_url`); datatrove compares the
  full URL with entries written without a scheme, so that rule never fires there;
- a word of the URL (split on non-alphanumerics, lowercased) is banned (`url_banned_word`);
- at least `soft_word_threshold` soft words appear (`url_soft_banned_words`);
- a banned subword appears in the URL with non-alphanumerics removed (`url_banned_subword`).

The 4.56 M domains are held as a sorted array of 64-bit hashes (36 MB, built in ~2 s per
process on first use) instead of a Python set of strings (~400 MB); a false match needs a
64-bit hash collision (odds ~1e-13 per lookup).
"""

from __future__ import annotations

import functools
import os
import re
import tarfile
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
from datatrove.data import Document

from lmforge.corpus.base import DocFilter
from lmforge.corpus.filters._config import build_config

URL_MISSING = "url_missing"  #: no metadata["url"] (only with drop_missing_url)
URL_BLOCKED_DOMAIN = "url_blocked_domain"  #: the host or a parent domain is on the block list
URL_BLOCKED_URL = "url_blocked_url"  #: the URL itself is on the block list
URL_BANNED_WORD = "url_banned_word"  #: a word of the URL is banned
URL_SOFT_BANNED_WORDS = "url_soft_banned_words"  #: soft_word_threshold or more soft words in the URL
URL_BANNED_SUBWORD = "url_banned_subword"  #: a banned subword appears inside the URL

_NON_ALNUM = re.compile(r"[^a-zA-Z0-9]+")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def normalize(text: str) -> str:
    """Lowercase alphanumerics only: `normalize("Hot-Girls 2") == "hotgirls2"`."""
    return _NON_ALNUM.sub("", text).lower()


def datatrove_assets_dir() -> str:
    from datatrove.utils._import_utils import ASSETS_PATH

    return ASSETS_PATH


def _read_word_list(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        return {w for w in (normalize(line) for line in f if line.strip() and not line.startswith("#")) if w}


def _hash_lines(lines) -> np.ndarray:
    return np.fromiter((hash(line) for line in lines if line), dtype=np.int64)


@functools.lru_cache(maxsize=2)
def _load_blocklists(archive: str) -> tuple[np.ndarray, frozenset[str]]:
    """(sorted hashes of blocked domains, blocked URLs without scheme) from datatrove's archive,
    read in 16 MB chunks so the 124 MB domain list never sits in memory as Python strings.

    Cached per process (~1.5 s to build): a worker that runs many tasks, each with a fresh
    copy of the pipeline, builds it once."""
    chunks, urls = [], set()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            stream = tar.extractfile(member)
            if stream is None:
                continue
            if os.path.basename(member.name) == "urls":
                urls = {line.strip().lower() for line in stream.read().decode("utf-8", "replace").splitlines()}
                urls.discard("")
                continue
            if os.path.basename(member.name) != "domains":
                continue
            rest = b""
            while block := stream.read(16 << 20):
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                chunks.append(_hash_lines(line.strip().lower() for line in lines))
            chunks.append(_hash_lines([rest.strip().lower()]))
    hashes = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    hashes.sort()
    hashes.setflags(write=False)
    return hashes, frozenset(urls)


@dataclass
class URLFilterConfig:
    """URL block lists (FineWeb: datatrove's lists, 2 soft words)."""

    soft_word_threshold: int = field(default=2, metadata={"help": "drop URLs holding at least this many soft words"})
    use_builtin_lists: bool = field(
        default=True, metadata={"help": "use the block lists shipped with datatrove (4.56 M domains, words)"}
    )
    extra_domains: tuple[str, ...] = field(default=(), metadata={"help": "more domains to block (subdomains too)"})
    extra_urls: tuple[str, ...] = field(default=(), metadata={"help": "more exact URLs to block"})
    extra_words: tuple[str, ...] = field(default=(), metadata={"help": "more banned URL words"})
    extra_subwords: tuple[str, ...] = field(default=(), metadata={"help": "more banned URL substrings"})
    extra_soft_words: tuple[str, ...] = field(default=(), metadata={"help": "more soft URL words"})
    drop_missing_url: bool = field(
        default=False, metadata={"help": "drop documents without metadata['url'] (default: keep and count them)"}
    )

    def __post_init__(self):
        if self.soft_word_threshold < 1:
            raise ValueError(f"soft_word_threshold={self.soft_word_threshold} must be >= 1; FineWeb uses 2")
        for name in ("extra_domains", "extra_urls", "extra_words", "extra_subwords", "extra_soft_words"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"{name} must be a list of strings, not one string: e.g. ({value!r},)")
            setattr(self, name, tuple(value))


class URLFilter(DocFilter):
    """Drops documents whose `metadata["url"]` is on a block list or holds banned words.

    The lists are loaded in each worker on first use, so the step pickles cheaply.
    """

    name = "😈 URL filter"

    def __init__(self, config: URLFilterConfig | None = None, keep_rejected: bool = False, **overrides):
        super().__init__(keep_rejected)
        self.config = build_config(URLFilterConfig, config, overrides)
        self._lists = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_lists"] = None
        return state

    def _load(self):
        cfg = self.config
        domains = np.empty(0, dtype=np.int64)
        urls: set[str] = set()
        words: set[str] = set()
        subwords: set[str] = set()
        soft: set[str] = set()
        if cfg.use_builtin_lists:
            assets = datatrove_assets_dir()
            domains, cached_urls = _load_blocklists(os.path.join(assets, "url_filterblacklistsv0_3_0.tar.gz"))
            urls = set(cached_urls)
            words = _read_word_list(os.path.join(assets, "banned_words.txt"))
            subwords = _read_word_list(os.path.join(assets, "banned_subwords.txt"))
            soft = _read_word_list(os.path.join(assets, "soft_banned_words.txt"))
        if cfg.extra_domains:
            extra = _hash_lines(d.strip().lower().rstrip(".").encode() for d in cfg.extra_domains)
            domains = np.sort(np.concatenate([domains, extra]))
        urls |= {_SCHEME.sub("", u.strip().lower()) for u in cfg.extra_urls}
        words |= {normalize(w) for w in cfg.extra_words} - {""}
        subwords |= {normalize(w) for w in cfg.extra_subwords} - {""}
        soft |= {normalize(w) for w in cfg.extra_soft_words} - {""}
        subword_re = (
            re.compile("|".join(map(re.escape, sorted(subwords, key=len, reverse=True)))) if subwords else None
        )
        self._lists = (domains, urls, frozenset(words), frozenset(soft), subword_re)
        return self._lists

    def _domain_blocked(self, domains: np.ndarray, host: str) -> bool:
        labels = host.split(".")
        candidates = [".".join(labels[i:]).encode() for i in range(len(labels) - 1)] or [host.encode()]
        keys = np.fromiter(map(hash, candidates), dtype=np.int64, count=len(candidates))
        pos = np.searchsorted(domains, keys)
        pos[pos >= len(domains)] = 0
        return bool(len(domains)) and bool((domains[pos] == keys).any())

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        domains, urls, words, soft, subword_re = self._lists or self._load()
        url = doc.metadata.get("url")
        if not url:
            self.stat_update(URL_MISSING)
            return (False, URL_MISSING) if self.config.drop_missing_url else True
        url = str(url).strip()
        try:
            host = (urlsplit(url if _SCHEME.match(url) else "http://" + url).hostname or "").rstrip(".")
        except ValueError:  # e.g. an invalid IPv6 literal: no host to check
            host = ""
        if host and self._domain_blocked(domains, host):
            return False, URL_BLOCKED_DOMAIN

        url_lower = url.lower()
        if urls and (url_lower in urls or _SCHEME.sub("", url_lower) in urls):
            return False, URL_BLOCKED_URL

        url_words = set(_NON_ALNUM.split(url_lower))
        if not words.isdisjoint(url_words):
            return False, URL_BANNED_WORD
        if len(soft.intersection(url_words)) >= self.config.soft_word_threshold:
            return False, URL_SOFT_BANNED_WORDS
        if subword_re is not None and subword_re.search(normalize(url)):
            return False, URL_BANNED_SUBWORD
        return True
