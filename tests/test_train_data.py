"""The training loader: deterministic mixture sampling, document-aligned windows, exact resume.

Also home of `make_mix`, which builds a real tokenizer, shards and a two-source manifest in a
folder (used by the other test_train* modules).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pytest

from lmforge.train.data import DataError, MixtureLoader

# ---- a real manifest, built once per module that asks --------------------------------------

WORDS = (
    "the model reads text and learns to predict the next token from the tokens before it while "
    "a careful corpus team filters the crawl removes duplicates and keeps documents written by people "
    "rivers flow to the sea and mountains rise above the clouds where birds fly in the morning light"
).split()


def _texts(seed: int, n: int, lo: int = 20, hi: int = 200) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(lo, hi)
        start = rng.randrange(len(WORDS))
        # mostly in-order phrases so the model has something to learn quickly
        words = [WORDS[(start + j) % len(WORDS)] if rng.random() < 0.85 else rng.choice(WORDS) for j in range(k)]
        out.append(" ".join(words).capitalize() + ".")
    return out


def _write_jsonl(path: Path, texts: list[str]) -> Path:
    with open(path, "wb") as f:
        for i, t in enumerate(texts):
            f.write(orjson.dumps({"id": f"d{i}", "text": t}) + b"\n")
    return path


def make_mix(root: Path, *, docs: int = 300, val_tokens: int = 2000) -> Path:
    """Tokenizer (vocab 512), two sources of shards, `root/mix.json` (weights 0.7 / 0.3)."""
    from lmforge.tokenize.build import BuildConfig, build_shards
    from lmforge.tokenize.mix import MixRecipe, SourceSpec, build_manifest
    from lmforge.tokenize.train import TrainConfig as TokConfig
    from lmforge.tokenize.train import train_tokenizer

    root.mkdir(parents=True, exist_ok=True)
    a = _write_jsonl(root / "a.jsonl", _texts(1, docs))
    b = _write_jsonl(root / "b.jsonl", _texts(2, docs // 2, 50, 400))
    train_tokenizer([a, b], root / "tok", TokConfig(vocab_size=512, sample_bytes=500_000, min_frequency=2))
    cfg = BuildConfig(shard_tokens=8000, frame_tokens=1024)
    build_shards([a], root / "tok", root / "shards_a", cfg)
    build_shards([b], root / "tok", root / "shards_b", cfg)
    recipe = MixRecipe([SourceSpec("a", str(root / "shards_a"), weight=0.7), SourceSpec("b", str(root / "shards_b"), weight=0.3)],
                       budget=200_000, val_tokens=val_tokens)
    build_manifest(recipe, root / "mix.json")
    return root / "mix.json"


# ---- a fake manifest over in-memory "shards" for the loader's unit tests -------------------


class FakeReader:
    def __init__(self, docs: list[np.ndarray]):
        self.tokens = np.concatenate(docs).astype(np.uint16)
        self.doc_starts = np.cumsum([0] + [len(d) for d in docs[:-1]]).astype(np.int64)
        self.fingerprint = "sha256:fake"

    def __len__(self):
        return len(self.tokens)

    def __getitem__(self, key):
        return self.tokens[key].copy()

    def close(self):
        pass


@dataclass
class FakeShard:
    path: str
    tokens: int


@dataclass
class FakeRange:
    shard_index: int
    start: int
    end: int


@dataclass
class FakeSource:
    name: str
    weight: float
    shards: list
    val: FakeRange | None = None
    ranges: list = field(default_factory=list)

    def train_ranges(self):
        return self.ranges


@dataclass
class FakeManifest:
    sources: list
    path: str = "fake/mix.json"
    vocab_size: int = 1000


def fake_world(seed: int = 0, n_sources: int = 2, docs: int = 40, val: bool = True):
    """A manifest and reader factory; document d of source s is BOS then ids (s*100 + d) % 999 + 1."""
    rng = np.random.default_rng(seed)
    readers, sources = {}, []
    for s in range(n_sources):
        ds = [np.concatenate([[0], np.full(int(rng.integers(3, 60)), (s * 100 + d) % 999 + 1)]) for d in range(docs)]
        for k in range(2):  # two shards per source
            path = f"s{s}/shard{k}"
            readers[path] = FakeReader(ds[k * docs // 2 : (k + 1) * docs // 2])
        n0, n1 = len(readers[f"s{s}/shard0"]), len(readers[f"s{s}/shard1"])
        val_start = int(readers[f"s{s}/shard1"].doc_starts[-3])
        src = FakeSource(f"src{s}", weight=[0.75, 0.25, 0.5][s % 3], shards=[FakeShard(f"s{s}/shard0", n0), FakeShard(f"s{s}/shard1", n1)],
                         val=FakeRange(1, val_start, n1) if val else None,
                         ranges=[(0, 0, n0), (1, 0, val_start if val else n1)])
        sources.append(src)
    total = sum(s.weight for s in sources)
    for s in sources:
        s.weight /= total
    return FakeManifest(sources), readers.__getitem__


def loader(seed=0, T=16, batch=8, rank=0, world=1, **kw):
    manifest, factory = fake_world(**kw)
    return MixtureLoader(manifest, context=T, global_batch=batch, seed=seed, rank=rank, world_size=world, reader_factory=factory)


def test_same_seed_same_batches_other_seed_differs():
    a, b, c = loader(seed=1), loader(seed=1), loader(seed=2)
    for _ in range(5):
        x, y, z = a.next_batch(), b.next_batch(), c.next_batch()
        assert np.array_equal(x, y)
    assert not np.array_equal(x, z)
    assert x.shape == (8, 17) and x.dtype == np.int64


def test_resume_from_state_continues_exactly():
    straight = loader(seed=3)
    batches = [straight.next_batch() for _ in range(30)]  # several epochs of the small source
    first = loader(seed=3)
    for _ in range(11):
        first.next_batch()
    state = orjson.loads(orjson.dumps(first.state()))  # through JSON, as in state.json
    resumed = loader(seed=3)
    resumed.load_state(state)
    for k in range(11, 30):
        assert np.array_equal(resumed.next_batch(), batches[k])


def test_windows_start_at_documents_and_cover_each_epoch():
    ld = loader(T=16)
    manifest = ld.manifest
    for i, w in enumerate(ld.windows):
        src = manifest.sources[i]
        for shard, start in zip(w.shard.tolist(), w.start.tolist()):
            r = ld.reader(i, shard)
            docs = r.doc_starts
            d = docs[np.searchsorted(docs, start, side="right") - 1]
            assert (start - d) % 16 == 0  # a document start, or T, 2T... into a long document
            assert start + 17 <= dict((s, e) for s, _, e in src.train_ranges())[shard]
    # one epoch of source 0 visits each of its windows exactly once
    seen = []
    while ld.epoch[0] == 0:
        i, shard, start = ld._draw(1)[0]
        if i == 0:
            seen.append((shard, start))
    assert len(seen) == len(set(seen)) == len(ld.windows[0])


def test_sources_drawn_by_weight():
    ld = loader(T=8, batch=4000)
    picks = [i for i, _, _ in ld._draw(20000)]
    share = np.bincount(picks) / len(picks)
    assert abs(share[0] - 0.75) < 0.02 and abs(share[1] - 0.25) < 0.02


def test_ranks_read_slices_of_the_same_global_batch():
    one = loader(seed=5, batch=8)
    r0, r1 = loader(seed=5, batch=8, rank=0, world=2), loader(seed=5, batch=8, rank=1, world=2)
    for _ in range(4):
        full = one.next_batch()
        assert np.array_equal(np.concatenate([r0.next_batch(), r1.next_batch()]), full)
    assert r0.state() == r1.state() == one.state()


def test_validation_windows_stay_in_the_val_range():
    ld = loader(T=16)
    val = ld.val_windows(max_tokens=10_000)
    assert set(val) == {"src0", "src1"}
    for i, src in enumerate(ld.manifest.sources):
        expect = ld.reader(i, 1)[src.val.start : src.val.end]
        got = np.concatenate([val[src.name][0]] + [w[1:] for w in val[src.name][1:]])
        assert np.array_equal(got, expect)


def test_state_from_another_seed_is_refused():
    a = loader(seed=1)
    b = loader(seed=2)
    with pytest.raises(DataError, match="same manifest"):
        b.load_state(a.state())


def test_context_longer_than_the_data_is_a_clear_error():
    with pytest.raises(DataError, match="lower the context"):
        loader(T=5000)


def test_token_outside_the_vocabulary_names_the_shard():
    manifest, factory = fake_world()
    ld = MixtureLoader(manifest, context=16, global_batch=8, seed=0, vocab_size=50, reader_factory=factory)
    with pytest.raises(DataError, match="outside the vocabulary of 50"):
        ld.next_batch()


def test_real_shards_and_manifest(tmp_path):
    from lmforge.tokenize.mix import load_manifest

    manifest = load_manifest(make_mix(tmp_path / "mix", docs=120))
    ld = MixtureLoader(manifest, context=32, global_batch=6, seed=0)
    x = ld.next_batch()
    assert x.shape == (6, 33) and x.max() < manifest.vocab_size
    val = ld.val_windows(1000)
    assert set(val) == {"a", "b"} and all(len(v) for v in val.values())
    ld.close()
