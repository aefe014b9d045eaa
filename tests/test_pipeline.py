"""`lmforge pipeline`: recipes are validated whole before anything runs; a run chains the
stages into one folder, records what ran, resumes, and refuses a recipe changed under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmforge.cli import main
from lmforge.pipelines.recipe import STAGES, RecipeError, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[1]


def run(args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# ---- validation -------------------------------------------------------------------------------

BASE = {"pipeline": {"output": "out"}, "corpus": {"inputs": ["x.warc.gz"]}, "tokenizer": {"vocab_size": 1024},
        "mix": {"budget": "1M"}, "train": {"steps": 5}}


def _with(**tables):
    data = json.loads(json.dumps(BASE))
    for name, table in tables.items():
        if table is None:
            data.pop(name, None)
        else:
            data[name] = table
    return data


@pytest.mark.parametrize("data, message", [
    (_with(trian={}), "unknown table [trian]"),
    (_with(corpus={"inputs": ["x"], "langauges": ["en"]}), "[corpus]: unknown key langauges; known keys:"),
    (_with(tokenizer={"vocab_size": "big"}), "[tokenizer].vocab_size: 'big' is a string; expected an integer"),
    (_with(tokenizer={"vocab_size": 10}), "[tokenizer]: --vocab-size 10"),
    (_with(train={"steps": 5, "manifest": "m.json"}), "[train]: manifest is set by the pipeline"),
    (_with(pipeline={}), "[pipeline] needs `output"),
    (_with(mix=None, train=None), "[tokenizer] is trained on the mixture's documents: add a [mix] table"),
    (_with(tokenizer=None), "[mix] has documents to shard: add a [tokenizer] table"),
    (_with(mix={"budget": "1M", "source": [{"name": "wiki", "weight": 1.0}]}), "give `documents`"),
    (_with(mix={"budget": "1M", "source": [{"name": "web", "documents": "d", "weight": 1.0}]}), "the name \"web\" is the crawl's"),
    (_with(mix={"budget": "lots"}), "[mix]:"),
    (_with(sft={"steps": 3}), "[sft]: missing data"),
    (_with(rl={"method": "ppo", "prompts": "p.jsonl"}), "add an [rm] table"),
    (_with(corpus={"inputs": ["x"], "filters": {"c4": {"min_sentencez": 2}}}), "[corpus].filters.c4: unknown key min_sentencez"),
])
def test_a_bad_recipe_is_an_error_naming_table_and_key(data, message):
    with pytest.raises(RecipeError) as err:
        parse_recipe(data)
    assert message in str(err.value)


def test_recipe_paths_are_relative_to_the_recipe_file_and_filters_can_be_switched_off(tmp_path):
    recipe = tmp_path / "r" / "recipe.toml"
    recipe.parent.mkdir()
    recipe.write_text('[pipeline]\noutput = "runs/a"\n[corpus]\ninputs = ["../crawl/*.warc.gz"]\n'
                      '[corpus.filters]\nc4 = false\n[corpus.filters.gopher_quality]\nmin_stop_words = 1\n'
                      '[tokenizer]\nvocab_size = 1024\n[mix]\nbudget = "2M"\n')
    r = load_recipe(recipe)
    assert r.output == (tmp_path / "r" / "runs" / "a")
    assert r.stages["corpus"].inputs == [str(tmp_path / "crawl" / "*.warc.gz")]
    assert r.stages["corpus"].filters.c4 is None and r.stages["corpus"].filters.gopher_quality.min_stop_words == 1
    assert r.present() == ["corpus", "tokenizer", "shards", "mix"]  # default shard settings added
    assert load_recipe(recipe, output=tmp_path / "elsewhere").output == tmp_path / "elsewhere"


def test_the_shipped_recipe_is_valid_and_runs_every_stage():
    r = load_recipe(REPO / "recipes" / "tiny-shared-data.toml")
    assert r.present() == list(STAGES)


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[pipeline\n")
    r = CliRunner().invoke(main, ["pipeline", "run", str(bad)])
    assert r.exit_code == 1 and "not valid TOML" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["pipeline", "run", str(tmp_path / "missing.toml")])
    assert r.exit_code == 1 and "no such recipe file" in r.output
    r = CliRunner().invoke(main, ["pipeline", "show", str(tmp_path)])
    assert r.exit_code == 1 and "pipeline.json: no such file" in r.output


# ---- a real run on the built-in sample --------------------------------------------------------


def _conversations(path: Path) -> Path:
    rows = [{"instruction": f"What is {a} plus {b}?", "input": "", "output": f"{a} plus {b} is {a + b}."}
            for a in range(1, 9) for b in range(1, 5)]
    path.write_text(json.dumps(rows))
    return path


def _preferences(path: Path) -> Path:
    with open(path, "w") as f:
        for a in range(1, 9):
            for b in range(1, 4):
                f.write(json.dumps({"prompt": f"What is {a} plus {b}?", "chosen": f"{a + b}.", "rejected": f"{a + b + 1}."}) + "\n")
    return path


@pytest.fixture(scope="module")
def sample_inputs(tmp_path_factory):
    from lmforge.pipelines.sample import write_sample_warc

    root = tmp_path_factory.mktemp("inputs")
    write_sample_warc(root / "sample.warc.gz")
    return root, _conversations(root / "sft.json"), _preferences(root / "prefs.jsonl")


def _recipe(root: Path, sft: Path, prefs: Path, out: Path, steps: int = 6) -> Path:
    text = f"""
[pipeline]
output = "{out}"
[corpus]
inputs = ["{root / 'sample.warc.gz'}"]
languages = ["en"]
[dedup]
[tokenizer]
vocab_size = 1024
[shards]
frame_tokens = 4096
[mix]
budget = "200K"
val_tokens = 500
[train]
preset = "tiny"
steps = {steps}
batch_tokens = 512
micro_batch = 4
eval_every = 0
threads = 1
[sft]
data = ["{sft}"]
steps = 3
batch_size = 4
eval_every = 0
threads = 1
[dpo]
data = "{prefs}"
steps = 2
batch_size = 2
eval_every = 0
"""
    path = out.parent / f"{out.name}.toml"
    path.write_text(text)
    return path


def test_pipeline_runs_every_stage_records_lineage_and_resumes(sample_inputs, tmp_path):
    root, sft, prefs = sample_inputs
    out = tmp_path / "run"
    recipe = _recipe(root, sft, prefs, out)
    r = run(["pipeline", "run", recipe, "--no-progress"])
    assert r.exit_code == 0, r.output
    record = json.loads((out / "pipeline.json").read_text())
    stages = record["stages"]
    assert list(stages) == ["corpus", "dedup", "tokenizer", "shards", "mix", "train", "sft", "dpo"]
    assert all(s["status"] == "done" for s in stages.values())
    assert stages["dedup"]["figures"]["near_duplicates_removed"] == 12  # 11 of the 12 planted mirrors (copy/6 drops a paragraph: word 5-gram Jaccard 0.71 < 0.8) and one real page 98% equal to another (pydoc's execution-model and naming-and-binding topics)
    assert stages["corpus"]["figures"]["kept"] > 30
    assert (out / "mix.json").is_file() and (out / "shards" / "web" / "source.json").is_file()
    # the newest model's lineage: checkpoint, manifest (as the trainer recorded it), tokenizer, corpus stats
    lineage = record["lineage"]
    assert lineage["model"]["stage"] == "dpo" and Path(lineage["model"]["checkpoint"]).is_dir()
    train_state = json.loads((Path(stages["train"]["outputs"]["checkpoint"]) / "state.json").read_text())
    assert train_state["manifest_sha256"] == lineage["manifest"]["sha256"]
    assert train_state["tokenizer_fingerprint"] == lineage["tokenizer"]["fingerprint"]
    assert Path(lineage["corpus_stats"]).is_file() and Path(lineage["dedup_stats"]).is_file()

    # a rerun skips finished work; more steps in [train] is a changed recipe, refused by name
    again = run(["pipeline", "run", recipe, "--no-progress"])
    assert again.exit_code == 0, again.output
    stages = json.loads((out / "pipeline.json").read_text())["stages"]
    assert stages["train"]["figures"]["trained_earlier"] is True and stages["tokenizer"]["figures"]["trained_earlier"] is True
    changed = _recipe(root, sft, prefs, out, steps=8)
    r = CliRunner().invoke(main, ["pipeline", "run", str(changed), "--no-progress"])
    assert r.exit_code == 1 and "[train] changed since" in r.output and "steps" in r.output
    shown = run(["pipeline", "show", out])
    assert shown.exit_code == 0 and "dpo" in shown.output and "model:" in shown.output

    # as the refusal says: delete [train]'s output and it trains again with the new steps; the
    # finished SFT run was trained from the old model, so it is refused, by name, until deleted too
    import shutil

    shutil.rmtree(out / "train")
    r = CliRunner().invoke(main, ["pipeline", "run", str(changed), "--no-progress"])
    assert r.exit_code == 1 and f"{out / 'sft'} was trained from" in r.output, r.output
    assert json.loads((out / "pipeline.json").read_text())["stages"]["train"]["figures"]["steps"] == 8
    shutil.rmtree(out / "sft")
    r = CliRunner().invoke(main, ["pipeline", "run", str(changed), "--no-progress"])
    assert r.exit_code == 1 and f"{out / 'dpo'} was trained from" in r.output, r.output
    shutil.rmtree(out / "dpo")
    assert run(["pipeline", "run", changed, "--no-progress"]).exit_code == 0


def test_until_stops_after_a_stage(sample_inputs, tmp_path):
    root, sft, prefs = sample_inputs
    out = tmp_path / "part"
    r = run(["pipeline", "run", _recipe(root, sft, prefs, out), "--until", "tokenizer", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert list(json.loads((out / "pipeline.json").read_text())["stages"]) == ["corpus", "dedup", "tokenizer"]
    assert not (out / "mix.json").exists()
    r = CliRunner().invoke(main, ["pipeline", "run", str(_recipe(root, sft, prefs, out)), "--until", "rl"])
    assert r.exit_code == 1 and "no [rl] table" in r.output


def test_a_pipeline_killed_during_training_resumes_to_the_same_model(sample_inputs, tmp_path):
    """kill -9 while [train] runs (after its first checkpoint), run again: the final weights
    are byte for byte those of an uninterrupted pipeline."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root, sft, prefs = sample_inputs

    def recipe(out: Path) -> Path:
        path = _recipe(root, sft, prefs, out, steps=30)
        path.write_text(path.read_text().replace("eval_every = 0\nthreads = 1\n[sft]", "eval_every = 0\nthreads = 1\ncheckpoint_every = 2\n[sft]", 1))
        return path

    args = ["pipeline", "run", "--until", "train", "--no-progress"]
    cmd = [sys.executable, "-m", "lmforge.cli", *args]  # only the run that is killed is another process
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = run([*args, recipe(whole)])
    assert done.exit_code == 0, done.output
    proc = subprocess.Popen([*cmd, str(recipe(killed))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any((killed / "train" / "checkpoints").glob("step_*")):
            break
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    record = json.loads((killed / "pipeline.json").read_text())
    assert record["stages"]["train"]["status"] == "running"  # killed in the middle of it
    again = run([*args, recipe(killed)])  # the same command line
    assert again.exit_code == 0, again.output
    a = (whole / "train" / "checkpoints" / "step_00000030" / "model.safetensors").read_bytes()
    b = (killed / "train" / "checkpoints" / "step_00000030" / "model.safetensors").read_bytes()
    assert a == b


def test_missing_inputs_are_refused_before_anything_runs(sample_inputs, tmp_path):
    root, sft, prefs = sample_inputs
    out = tmp_path / "run"
    recipe = _recipe(root, sft, prefs, out)
    recipe.write_text(recipe.read_text().replace(str(prefs), str(tmp_path / "nope.jsonl")))
    r = CliRunner().invoke(main, ["pipeline", "run", str(recipe), "--no-progress"])
    assert r.exit_code == 1 and f"[dpo] data: {tmp_path / 'nope.jsonl'}" in r.output
    assert not (out / "corpus").exists()  # nothing ran
    checked = CliRunner().invoke(main, ["pipeline", "check", str(recipe)])
    assert checked.exit_code == 1 and "missing input: [dpo] data" in checked.output and "1 input missing" in checked.output
    # --until before the stage that needs it: the missing file does not matter yet
    assert run(["pipeline", "run", recipe, "--until", "corpus", "--no-progress"]).exit_code == 0


def test_a_corpus_that_keeps_nothing_stops_at_the_corpus_with_the_reason(sample_inputs, tmp_path):
    root, sft, prefs = sample_inputs
    recipe = _recipe(root, sft, prefs, tmp_path / "run")
    recipe.write_text(recipe.read_text().replace('languages = ["en"]', 'languages = ["sw"]'))
    r = CliRunner().invoke(main, ["pipeline", "run", str(recipe), "--no-progress"])
    assert r.exit_code == 1 and "[corpus] kept no documents" in r.output and "language_not_wanted" in r.output
    assert json.loads((tmp_path / "run" / "pipeline.json").read_text())["stages"]["corpus"]["status"] == "failed"


def test_rebuilt_documents_upstream_are_refused_at_the_shards(sample_inputs, tmp_path):
    """Delete the corpus output and rebuild it with other settings: the dedup output, the
    tokenizer and the shards made from the old documents are each refused by name, never
    silently replaced."""
    import shutil

    root, sft, prefs = sample_inputs
    out = tmp_path / "run"
    recipe = _recipe(root, sft, prefs, out)
    assert run(["pipeline", "run", recipe, "--until", "shards", "--no-progress"]).exit_code == 0
    shutil.rmtree(out / "corpus")
    recipe.write_text(recipe.read_text().replace('languages = ["en"]', 'languages = ["en"]\nlimit = 30'))  # fewer pages
    r = CliRunner().invoke(main, ["pipeline", "run", str(recipe), "--until", "shards", "--no-progress"])
    assert r.exit_code == 1 and f"{out / 'dedup'} was made from other corpus documents" in r.output, r.output
    shutil.rmtree(out / "dedup")  # as it says; then the tokenizer trained on the old documents is refused
    r = CliRunner().invoke(main, ["pipeline", "run", str(recipe), "--until", "shards", "--no-progress"])
    assert r.exit_code == 1 and f"delete {out / 'tokenizer'}" in r.output and "inputs" in r.output, r.output
    shutil.rmtree(out / "tokenizer")  # as it says; then it retrains and the old shards are refused
    r = CliRunner().invoke(main, ["pipeline", "run", str(recipe), "--until", "shards", "--no-progress"])
    assert r.exit_code == 1 and f"delete {out / 'shards' / 'web'}" in r.output, r.output


def test_ppo_scores_with_the_reward_model_the_recipe_trained(sample_inputs, tmp_path):
    from lmforge.pipelines.sample_align import write_align_data

    root, _, _ = sample_inputs
    data = write_align_data(tmp_path / "align")["paths"]
    recipe = tmp_path / "ppo.toml"
    recipe.write_text(f"""
[pipeline]
output = "{tmp_path / 'out'}"
[corpus]
inputs = ["{root / 'sample.warc.gz'}"]
languages = ["en"]
[tokenizer]
vocab_size = 1024
[mix]
budget = "200K"
val_tokens = 500
[train]
steps = 2
batch_tokens = 512
micro_batch = 4
eval_every = 0
threads = 1
[sft]
data = ["{data['sft']}"]
steps = 2
batch_size = 4
eval_every = 0
threads = 1
[rm]
data = "{data['preferences']}"
steps = 2
batch_size = 4
eval_every = 0
threads = 1
[rl]
method = "ppo"
prompts = "{data['prompts']}"
steps = 2
prompts_per_step = 2
group_size = 2
max_new_tokens = 8
threads = 1
""")
    r = run(["pipeline", "run", recipe, "--no-progress"])
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    rl = record["stages"]["rl"]
    assert rl["status"] == "done" and str(tmp_path / "out" / "rm" / "checkpoints") in rl["upstream"]
    state = json.loads((Path(rl["outputs"]["checkpoint"]) / "state.json").read_text())
    assert state["step"] == 2
