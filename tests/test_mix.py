"""Mixture manifests: weights, epochs, validation split, relative paths, every bad-input error."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from lmforge.tokenize.mix import (
    MixError,
    MixRecipe,
    SourceSpec,
    build_manifest,
    load_manifest,
    load_recipe,
    parse_tokens,
)
from lmforge.tokenize.shards import ShardReader, ShardWriter
from lmforge.tokenize.shards_cli import mix

RECIPE = Path(__file__).resolve().parents[1] / "lmforge" / "tokenize" / "recipes" / "llama.toml"


def fake_source(root: Path, name: str, doc_lens: list[list[int]], fingerprint: str = "sha256:tok", vocab: int = 500) -> Path:
    """A `shards build`-shaped folder: shards/*.tokens.zst + source.json (no tokenizer needed)."""
    import hashlib

    out = root / name
    entries = []
    rng = np.random.default_rng(len(name))
    for k, lens in enumerate(doc_lens):
        p = out / "shards" / f"00000-{name}-{k:04d}.tokens.zst"
        with ShardWriter(p, fingerprint=fingerprint, vocab_size=vocab, frame_tokens=64) as w:
            for n in lens:
                w.add_document(np.concatenate([[0], rng.integers(16, vocab, size=n - 1)]))
        entries.append({"path": p.relative_to(out).as_posix(), "tokens": sum(lens), "documents": len(lens),
                        "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    src = {"format": "lmforge-source", "version": 1, "tokenizer": {"fingerprint": fingerprint, "vocab_size": vocab, "dir": "/tok"},
           "documents": sum(e["documents"] for e in entries), "tokens": sum(e["tokens"] for e in entries),
           "bytes": sum(e["bytes"] for e in entries), "shards": entries}
    (out / "source.json").write_bytes(orjson.dumps(src))
    return out


@pytest.fixture
def sources(tmp_path) -> dict[str, Path]:
    root = tmp_path / "data"
    return {
        "web": fake_source(root, "web", [[100] * 10, [50] * 8]),  # 1000 + 400 tokens
        "wiki": fake_source(root, "wiki", [[200, 300, 100, 400]]),  # 1000 tokens
    }


def test_weights_epochs_and_contract_fields(tmp_path, sources):
    out = tmp_path / "mixes" / "mix.json"
    m = build_manifest(MixRecipe([SourceSpec("web", str(sources["web"]), weight=0.75), SourceSpec("wiki", str(sources["wiki"]), weight=0.25)], budget=2800), out)
    assert m.path == out and m.budget == 2800 and m.fingerprint == "sha256:tok" and m.vocab_size == 500 and m.tokenizer_dir == "/tok"
    web, wiki = m.sources
    assert web.weight == pytest.approx(0.75) and web.tokens == 1400 and web.epochs == pytest.approx(0.75 * 2800 / 1400)
    assert wiki.epochs == pytest.approx(0.25 * 2800 / 1000)
    assert web.documents == 18 and web.bytes == sum(s.bytes for s in web.shards)
    assert all(s.path.is_absolute() and s.path.is_file() for s in web.shards)
    assert web.val is None and web.train_ranges() == [(0, 0, 1000), (1, 0, 400)]
    data = orjson.loads(out.read_bytes())
    assert data["format"] == "lmforge-mix" and data["version"] == 1
    assert data["tokenizer"] == {"fingerprint": "sha256:tok", "vocab_size": 500, "dir": "/tok"}
    assert data["sources"][0]["shards"][0]["path"] == "../data/web/shards/00000-web-0000.tokens.zst"
    for key in ("name", "weight", "epochs", "tokens", "documents", "bytes", "shards", "val"):
        assert key in data["sources"][0]


def test_normalised_weights_and_fixed_epochs(tmp_path, sources):
    notes = []
    m = build_manifest(MixRecipe([SourceSpec("web", str(sources["web"]), weight=3), SourceSpec("wiki", str(sources["wiki"]), weight=1)], 1000), tmp_path / "m.json", notes=notes)
    assert [s.weight for s in m.sources] == pytest.approx([0.75, 0.25]) and any("normalised" in n for n in notes)
    m = build_manifest(MixRecipe([SourceSpec("web", str(sources["web"]), weight=1), SourceSpec("wiki", str(sources["wiki"]), epochs=2.0)], 10_000), tmp_path / "m2.json")
    wiki = m.source("wiki")
    assert wiki.epochs == pytest.approx(2.0) and wiki.weight == pytest.approx(2.0 * 1000 / 10_000)
    assert sum(s.weight for s in m.sources) == pytest.approx(1.0)


def test_validation_split_is_document_aligned_tail_of_last_shard(tmp_path, sources):
    m = build_manifest(MixRecipe([SourceSpec("web", str(sources["web"]), weight=1), SourceSpec("wiki", str(sources["wiki"]), weight=1)], 1000, val_tokens=120), tmp_path / "m.json")
    web = m.source("web")  # last shard: 8 docs of 50 -> 3 docs (150 tokens) cover 120
    assert (web.val.shard_index, web.val.start, web.val.end) == (1, 250, 400)
    assert web.tokens == 1400 - 150 and web.train_ranges() == [(0, 0, 1000), (1, 0, 250)]
    with ShardReader(web.shards[1].path) as r:
        assert web.val.start in set(r.doc_starts.tolist())
    wiki = m.source("wiki")  # docs 200,300,100,400: the last (400) covers 120
    assert (wiki.val.start, wiki.val.end) == (600, 1000) and wiki.tokens == 600
    with pytest.raises(MixError, match="wiki.*--val-tokens"):
        build_manifest(MixRecipe([SourceSpec("wiki", str(sources["wiki"]), weight=1)], 1000, val_tokens=5000), tmp_path / "m3.json")


def test_manifest_survives_moving_the_whole_tree(tmp_path, sources):
    build_manifest(MixRecipe([SourceSpec("web", str(sources["web"]), weight=1)], 1000), tmp_path / "mixes" / "mix.json")
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    shutil.copytree(tmp_path, moved)
    m = load_manifest(moved / "mixes" / "mix.json")
    assert str(m.sources[0].shards[0].path).startswith(str(moved))


def test_bad_inputs_are_clear_errors(tmp_path, sources):
    other = fake_source(tmp_path / "data", "other", [[100, 100]], fingerprint="sha256:different")
    with pytest.raises(MixError, match=r"other.*sha256:different.*one tokenizer"):
        build_manifest(MixRecipe([SourceSpec("web", str(sources["web"]), weight=1), SourceSpec("other", str(other), weight=1)], 100), tmp_path / "m.json")
    with pytest.raises(MixError, match="nowhere.*no such file"):
        build_manifest(MixRecipe([SourceSpec("x", str(tmp_path / "nowhere"), weight=1)], 100), tmp_path / "m.json")
    empty = tmp_path / "data" / "empty"
    empty.mkdir()
    (empty / "source.json").write_bytes(orjson.dumps({"format": "lmforge-source", "version": 1, "tokens": 0, "shards": []}))
    with pytest.raises(MixError, match="empty"):
        build_manifest(MixRecipe([SourceSpec("e", str(empty), weight=1)], 100), tmp_path / "m.json")
    for bad in ("web=x", "web=x:0", "web=x:-1", "=x:1", "web=x@0"):
        with pytest.raises(ValueError):
            SourceSpec.parse(bad)
    assert SourceSpec.parse("cc=s3://bucket/cc:0.67").path == "s3://bucket/cc"
    assert parse_tokens("1.4T") == 1_400_000_000_000 and parse_tokens("10M") == 10_000_000 and parse_tokens(512) == 512


def test_load_manifest_errors_name_the_file(tmp_path, sources):
    out = tmp_path / "mix.json"
    build_manifest(MixRecipe([SourceSpec("web", str(sources["web"]), weight=1)], 1000), out)
    good = out.read_bytes()
    with pytest.raises(MixError, match="nope.json: no such manifest"):
        load_manifest(tmp_path / "nope.json")
    out.write_bytes(b"{not json")
    with pytest.raises(MixError, match="mix.json: not valid JSON"):
        load_manifest(out)
    data = orjson.loads(good)
    data.pop("content_sha256")  # as a manifest without a checksum (older lmforge): the field checks still run
    del data["sources"][0]["tokens"]
    out.write_bytes(orjson.dumps(data))
    with pytest.raises(MixError, match="mix.json: malformed manifest"):
        load_manifest(out)
    data = orjson.loads(good)
    data.pop("content_sha256")  # as a manifest without a checksum (older lmforge): the field checks still run
    data["sources"][0]["weight"] = 0
    out.write_bytes(orjson.dumps(data))
    with pytest.raises(MixError, match="weight"):
        load_manifest(out)
    data = orjson.loads(good)
    data.pop("content_sha256")  # as a manifest without a checksum (older lmforge): the field checks still run
    data["tokenizer"]["fingerprint"] = "sha256:other"
    out.write_bytes(orjson.dumps(data))
    with pytest.raises(MixError, match="mix.json.*tokenised with sha256:tok"):
        load_manifest(out)
    out.write_bytes(good)
    shard = sources["web"] / "shards" / "00000-web-0001.tokens.zst"
    shard.rename(shard.with_suffix(".moved"))
    with pytest.raises(MixError, match=r"mix.json: source 'web': shard .*00000-web-0001.tokens.zst is missing"):
        load_manifest(out)


def test_recipe_template_has_llama_proportions(tmp_path, sources):
    r = load_recipe(RECIPE)
    assert r.budget == 1_400_000_000_000
    weights = {s.name: s.weight for s in r.sources}
    assert weights == {"commoncrawl": 0.67, "c4": 0.15, "github": 0.045, "wikipedia": 0.045, "books": 0.045, "arxiv": 0.025, "stackexchange": 0.02}
    assert sum(weights.values()) == pytest.approx(1.0)
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'budget = "2k"\nval_tokens = 0\n[[source]]\nname = "web"\npath = "data/web"\nweight = 0.5\n'
                      f'[[source]]\nname = "wiki"\npath = "{sources["wiki"]}"\nepochs = 1.0\n')
    res = CliRunner().invoke(mix, ["build", "--from-toml", str(recipe), "-o", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    m = load_manifest(tmp_path / "m.json")
    assert m.source("wiki").epochs == pytest.approx(1.0) and m.budget == 2000


def test_cli_build_and_inspect(tmp_path, sources):
    runner = CliRunner()
    out = tmp_path / "mix.json"
    res = runner.invoke(mix, ["build", "--source", f"web={sources['web']}:0.6", "--source", f"wiki={sources['wiki']}:0.6",
                              "--budget", "5k", "--val-tokens", "100", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "normalised" in res.output and "web" in res.output and "total" in res.output
    res = runner.invoke(mix, ["inspect", str(out), "--json"])
    data = orjson.loads(res.output)
    assert data["budget"] == 5000
    assert [s["name"] for s in data["sources"]] == ["web", "wiki"]
    for s in data["sources"]:
        assert s["weight"] == pytest.approx(0.5) and s["epochs"] == pytest.approx(0.5 * 5000 / s["tokens"])
        assert {"name", "weight", "tokens", "epochs", "bytes"} <= set(s)
    res = runner.invoke(mix, ["inspect", str(out)])
    assert res.exit_code == 0 and "epochs" in res.output
    for args, msg in [
        (["build", "--source", "web=x", "--budget", "1k", "-o", str(out)], "NAME=PATH:WEIGHT"),
        (["build", "--source", f"web={sources['web']}:1", "-o", str(out)], "--budget"),
        (["build", "--source", f"web={sources['web']}:-2", "--budget", "1k", "-o", str(out)], "> 0"),
        (["inspect", str(tmp_path / "none.json")], "none.json"),
    ]:
        res = runner.invoke(mix, args)
        assert res.exit_code in (1, 2) and msg in res.output and "Traceback" not in res.output, (args, res.output)


def test_build_over_a_manifest_with_other_settings_is_refused_by_name_unless_overwrite(tmp_path, sources):
    """`mix build -o mix.json` over a manifest with another budget used to replace it silently,
    and the run trained on it could no longer resume."""
    out = tmp_path / "mix.json"
    args = ["build", "--source", f"web={sources['web']}:0.7", "--source", f"wiki={sources['wiki']}:0.3", "-o", str(out)]
    runner = CliRunner()
    assert runner.invoke(mix, [*args, "--budget", "1M"]).exit_code == 0
    before = out.read_bytes()
    same = runner.invoke(mix, [*args, "--budget", "1M"])
    assert same.exit_code == 0 and "nothing to do" in same.output and out.read_bytes() == before
    other = runner.invoke(mix, [*args, "--budget", "2M"])
    assert other.exit_code == 1 and "--budget 1000000 (asked 2000000)" in other.output and "--overwrite" in other.output
    assert out.read_bytes() == before
    weights = runner.invoke(mix, ["build", "--source", f"web={sources['web']}:0.5", "--source", f"wiki={sources['wiki']}:0.5",
                                  "--budget", "1M", "-o", str(out)])
    assert weights.exit_code == 1 and "--source web weight 0.7 (asked 0.5)" in weights.output and out.read_bytes() == before
    forced = runner.invoke(mix, [*args, "--budget", "2M", "--overwrite"])
    assert forced.exit_code == 0 and load_manifest(out).budget == 2_000_000
    # a file that is not a manifest is never replaced, --overwrite or not
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    refused = runner.invoke(mix, ["build", "--source", f"web={sources['web']}:1", "--budget", "1M", "-o", str(notes), "--overwrite"])
    assert refused.exit_code == 1 and "not an lmforge mixture manifest" in refused.output
    assert notes.read_text() == '{"mine": true}'
