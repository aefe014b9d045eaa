"""`[[ingest]]` in pipeline recipes: sources read from their native dumps (`corpus ingest`),
deduplicated, sharded with the pipeline's tokenizer and mixed under their names; on the real
samples of tests/data/ingest (sdists, Project Gutenberg books)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lmforge.pipelines.recipe import RecipeError, load_recipe, parse_recipe
from lmforge.pipelines.runner import run_pipeline

DATA = Path(__file__).parent / "data" / "ingest"


def _tables(code_inputs, books_inputs, **extra):
    return {
        "pipeline": {"output": "out"},
        "ingest": [
            {"name": "github", "source": "code", "inputs": code_inputs, "weight": 0.6},
            {"name": "books", "source": "books", "inputs": books_inputs, "weight": 0.4, "dedup": False},
        ],
        "tokenizer": {"vocab_size": 600, "min_frequency": 2},
        "shards": {"frame_tokens": 1024},
        "mix": {"budget": 20000},
        **extra,
    }


def test_ingest_sources_are_ingested_deduplicated_sharded_and_mixed(tmp_path):
    recipe_dir = tmp_path / "recipes"
    recipe_dir.mkdir()
    code = [os.path.relpath(DATA / "code" / name, recipe_dir) for name in ("six-1.16.0.tar.gz", "html2text-2020.1.16-cut.tar.gz")]
    books = [os.path.relpath(DATA / "books" / "alice-pg11.txt.gz", recipe_dir)]
    tables = _tables(code, books)
    tables["ingest"][0]["options"] = {"licenses": ["MIT", "BSD-3-Clause"]}
    recipe = parse_recipe(tables, base=recipe_dir)
    assert recipe.output == (recipe_dir / "out").resolve()
    record = run_pipeline(recipe, progress=False, log=lambda m: None)

    out = recipe.output
    stats = json.loads((out / "ingest" / "github" / "raw" / "stats.json").read_text())
    dropped = stats["summary"]["dropped"]
    assert dropped.get("dropped_license_excluded", dropped.get("license_excluded", 0)) > 0  # html2text is GPL
    assert (out / "ingest" / "github" / "dedup" / "stats.json").is_file()
    assert not (out / "ingest" / "books" / "dedup").exists()  # dedup = false
    manifest = json.loads((out / "mix.json").read_text())
    names = {s["name"] for s in manifest["sources"]}
    assert names == {"github", "books"}
    assert record["stages"]["ingest"]["status"] == "done"
    assert set(record["stages"]["ingest"]["figures"]) == {"github", "books"}

    again = run_pipeline(parse_recipe(tables, base=recipe_dir), progress=False, log=lambda m: None)  # resumes: nothing redone
    assert again["stages"]["mix"]["status"] == "done"


@pytest.mark.parametrize("change, message", [
    (lambda t: t["ingest"][0].update(source="pdf"), "not a source"),
    (lambda t: t["ingest"][0].pop("weight"), "give `weight` or `epochs`"),
    (lambda t: t["ingest"][0].update(options={"licences": ["MIT"]}), "unknown key licences"),
    (lambda t: t["ingest"][0].update(options={"licenses": ["Not-A-Licence"]}), "--licenses"),
    (lambda t: t["ingest"][1].update(name="github"), "names repeat"),
    (lambda t: t["ingest"][1].update(name="web"), "also a [[mix.source]]"),
    (lambda t: t.pop("mix"), "add a [mix] table"),
])
def test_a_bad_ingest_table_is_an_error_naming_it(tmp_path, change, message):
    tables = _tables([str(DATA / "code" / "six-1.16.0.tar.gz")], [str(DATA / "books" / "alice-pg11.txt.gz")])
    change(tables)
    with pytest.raises(RecipeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_recipe(tables, base=tmp_path)


def test_missing_ingest_inputs_are_refused_before_anything_runs(tmp_path):
    tables = _tables([str(tmp_path / "nowhere.tar.gz")], [str(DATA / "books" / "alice-pg11.txt.gz")])
    with pytest.raises(RecipeError, match=r"\[\[ingest\]\] github inputs: .*nowhere"):
        run_pipeline(parse_recipe(tables, base=tmp_path), progress=False, log=lambda m: None)
    assert not (tmp_path / "out" / "ingest").exists()


def test_the_llama_mini_recipe_names_all_seven_kinds_and_its_ingest_samples_exist():
    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "llama-mini.toml")
    kinds = {s.source for s in recipe.stages["ingest"].sources}
    assert kinds == {"code", "wikipedia", "books", "arxiv", "stackexchange"}
    assert recipe.stages["corpus"] is not None and [s.name for s in recipe.stages["mix"].sources] == ["c4"]
    from lmforge.pipelines.recipe import missing_inputs

    assert [m for stage, m in missing_inputs(recipe) if stage == "ingest"] == []
