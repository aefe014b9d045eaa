"""`lmforge demo` end to end on the built-in samples: every landed stage runs, reports and resumes.

The alignment stages run with the demo's hidden `--quick` step counts (a few steps each), so
this checks that they run, write and resume, not how well they learn; pretraining runs its
`QUICK.train` steps, enough for the loss to fall by more than 1.0.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from lmforge.cli import main
from lmforge.pipelines.demo import CHAT_QUESTION, INGEST, QUICK
from lmforge.train.trainer import latest_checkpoint, read_metrics

PRETRAINING = ["corpus process", "corpus dedup", "corpus ingest", "tokenizer train", "shards build", "mix build", "train", "sample"]
ALIGNMENT = ["align sft", "align rm", "align dpo", "align rl", "chat"]
RUNS = {"sft": QUICK.sft, "rm": QUICK.rm, "dpo": QUICK.dpo, "rl": QUICK.rl}  # folder -> steps


def test_align_data_is_deterministic_and_read_by_the_alignment_loaders(tmp_path):
    from lmforge.alignment.data import load_conversations, load_preferences, load_prompts
    from lmforge.alignment.rewards import gsm8k_reward
    from lmforge.pipelines.sample_align import ALIGN_FILES, write_align_data

    info = write_align_data(tmp_path / "a")
    write_align_data(tmp_path / "b")
    for name in ALIGN_FILES:
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()
    paths = info["paths"]

    convs = list(load_conversations(paths["sft"]))
    assert len(convs) == info["counts"]["conversations"] == 2000
    plain = sum("####" not in c[-1]["content"] for c in convs)
    assert 0.25 < plain / len(convs) < 0.42  # a third answer without the final line
    pairs = list(load_preferences(paths["preferences"]))
    assert len(pairs) == 800
    for pair in pairs:  # the verifiable reward tells every chosen answer from its rejected one
        question = pair.prompt[-1]["content"]
        a, b = (int(x) for x in question.replace("+", " ").replace(".", " ").replace("?", " ").split() if x.isdigit())
        assert gsm8k_reward(pair.chosen, str(a + b)) == 1.0 and gsm8k_reward(pair.rejected, str(a + b)) == 0.0, pair
    prompts, heldout = list(load_prompts(paths["prompts"])), list(load_prompts(paths["heldout"]))
    assert len(prompts) == 200 and len(heldout) == 100
    assert len({p.prompt[0]["content"] for p in prompts + heldout}) == 300  # no held-out question is a GRPO prompt
    from collections import Counter  # one phrasing of each problem is held out, the other two are GRPO prompts
    assert Counter(p.answer for p in heldout) == Counter({p.answer: 1 for p in prompts}) and len(heldout) == 100
    assert set(Counter(p.answer for p in prompts).values()) == {2}
    assert all(gsm8k_reward(p.answer, p.answer) == 1.0 for p in prompts + heldout)


class Console:
    """What a run of the installed `lmforge` console script printed, and its exit code."""

    def __init__(self, proc: subprocess.CompletedProcess):
        self.exit_code, self.output = proc.returncode, proc.stdout + proc.stderr


def run_console(args: list[str], cwd: Path) -> Console:
    """`lmforge ARGS` as a user types it (the console script next to this Python, else -m)."""
    script = shutil.which("lmforge", path=str(Path(sys.executable).parent))
    cmd = [script] if script else [sys.executable, "-m", "lmforge.cli"]
    return Console(subprocess.run(cmd + args, cwd=cwd, capture_output=True, text=True, timeout=1200))


def test_makefile_runs_the_readme_quick_start_as_written():
    """The README's quick start is exactly `make demo` and `make test`, and the Makefile runs
    `lmforge demo` with its default (relative) output folder, as the test above does."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    assert [line.strip() for line in quick.strip().splitlines()] == ["make demo", "make test"]
    makefile = (root / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/lmforge demo\n" in demo + "\n"
    assert "-o" not in demo.split("lmforge demo", 1)[1].split("\n")[0]


def first_last(text: str) -> tuple[float, float]:
    """'0.9 -> 0.8' or '0.90 ± 0.03 -> 0.80 ± 0.04' -> (0.9, 0.8)."""
    first, last = text.split(" -> ")
    return float(first.split(" ± ")[0]), float(last.split(" ± ")[0])


def test_demo_runs_every_stage_and_resumes(tmp_path, monkeypatch):
    # as the README's first command runs it: from the user's own folder, with the default
    # relative -o (an absolute temporary -o hid a demo that failed on every fresh clone)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo-out"
    result = run_console(["demo", "--no-progress", "--quick"], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert not (out / "demo-out").exists()  # the relative folder was resolved once, not twice
    report = json.loads((out / "report.json").read_text())
    stages = report["stages"]
    assert list(stages) == PRETRAINING + ALIGNMENT
    assert stages["corpus process"]["kept"] > 30
    assert stages["corpus dedup"]["near_duplicates_removed"] == 12  # 11 of the 12 planted mirrors (copy/6 drops a paragraph: word 5-gram Jaccard 0.71 < 0.8) and one real page 98% equal to another (pydoc's execution-model and naming-and-binding topics)
    assert stages["mix build"]["budget"] > 0
    # the other sources of the LLaMA mixture, ingested from the real samples lmforge ships, with
    # what each source's published cleaning intends
    ingest = stages["corpus ingest"]
    assert ingest["code"].startswith("33 in -> 11 kept") and "license_excluded 5" in ingest["code"]  # html2text is GPL
    assert ingest["wikipedia"].startswith("26 in -> 2 kept") and "redirect 20" in ingest["wikipedia"] and "disambiguation 3" in ingest["wikipedia"]
    assert ingest["books"] == "3 in -> 2 kept (dropped: near_duplicate 1)"  # the second edition of Alice
    assert ingest["arxiv"] == "2 in -> 2 kept" and ingest["stackexchange"].startswith("7 in -> 6 kept")
    weights = {"web": 0.67, "reference": 0.15, **{name: weight for name, _, _, weight in INGEST}}
    assert set(weights) == {"web", "reference", "code", "wikipedia", "books", "arxiv", "stackexchange"}
    for name, weight in weights.items():  # the mix table: a row per source, LLaMA's proportions
        assert stages["mix build"][name].startswith(f"weight {weight:.3f}, "), name
        assert stages["shards build"][f"{name}_tokens"] > 0 and f"val_bpb_{name}" in stages["train"]
    assert "stackexchange: weight 0.020" in result.output  # the printed table: a line per source
    assert stages["train"]["steps"] == QUICK.train
    first, last = first_last(stages["train"]["loss"])
    assert last < first - 1.0  # the loss falls
    assert stages["sample"]["text"].startswith("An exception is")
    for name in ("corpus", "dedup", "tokenizer", "shards", "train"):
        assert (out / name).is_dir()
    record = json.loads((out / "pipeline.json").read_text())  # the demo is a pipeline recipe
    assert list(record["stages"]) == ["corpus", "dedup", "ingest", "tokenizer", "shards", "mix", "train", "sft", "rm", "dpo", "rl"]
    assert record["lineage"]["model"]["stage"] == "rl"

    # alignment: the built-in data, a finished run per stage, and a row per stage
    data = report["align_data"]
    assert data["sft"] == 2000 and data["preferences"] == 800 and data["prompts"] == 200 and data["heldout"] == 100
    assert data["eval_prompts"] == QUICK.eval_prompts
    for name in ("sft", "preferences", "prompts", "heldout"):
        assert (out / "align-data" / f"{name}.jsonl").is_file()
    for run, steps in RUNS.items():
        assert latest_checkpoint(out / run).name == f"step_{steps:08d}", run
        assert len(read_metrics(out / run / "metrics.jsonl")) == steps, run
        assert stages[f"align {run}"]["steps"] == steps
    first, last = first_last(stages["align sft"]["loss"])
    assert last < first  # fine-tuning on the answers lowers their loss even in a few steps
    assert 0.0 <= stages["align sft"]["greedy_exact_match"] <= 1.0
    assert 0.0 <= stages["align rm"]["heldout_accuracy"] <= 1.0
    assert first_last(stages["align dpo"]["loss"])[0] == 0.693  # the policy starts as its reference: log 2
    assert 0.0 <= stages["align dpo"]["heldout_accuracy"] <= 1.0
    assert all(0.0 <= r <= 1.0 for r in first_last(stages["align rl"]["mean_reward"]))
    before, _ = first_last(stages["align rl"]["greedy_exact_match"])
    assert before == round(stages["align sft"]["greedy_exact_match"], 2)
    for key in ("greedy_formatted", "greedy_accuracy_formatted", "sampled_formatted", "sampled_accuracy_formatted"):  # format apart from accuracy, with standard errors
        assert " ± " in stages["align rl"][key] and all(0 <= v <= 1 for v in first_last(stages["align rl"][key]))
    assert stages["chat"]["model"] == "rl" and stages["chat"]["prompt"] == CHAT_QUESTION
    assert isinstance(stages["chat"]["answer"], str) and isinstance(stages["chat"]["correct"], bool)
    for stage in ALIGNMENT:
        assert stage in result.output  # the summary table has a row per stage

    # a rerun resumes, not redoes: finished stages are read back, a cut-short run continues
    rl_rows = read_metrics(out / "rl" / "metrics.jsonl")
    shutil.rmtree(latest_checkpoint(out / "rl"))  # as if killed before its last checkpoint
    again = CliRunner().invoke(main, ["demo", "-o", "demo-out", "--no-progress", "--quick"])
    assert again.exit_code == 0, again.output
    rerun = json.loads((out / "report.json").read_text())["stages"]
    assert list(rerun) == PRETRAINING + ALIGNMENT
    assert rerun["train"]["note"] == "trained earlier"
    for stage in ("align sft", "align rm", "align dpo"):
        assert rerun[stage]["note"] == "trained earlier", stage
        assert rerun[stage]["loss"] == stages[stage]["loss"], stage
    assert rerun["align rl"]["note"] == f"resumed at step {QUICK.rl // 2}"
    assert latest_checkpoint(out / "rl").name == f"step_{QUICK.rl:08d}"
    resumed = read_metrics(out / "rl" / "metrics.jsonl")
    assert [r["reward"] for r in resumed] == [r["reward"] for r in rl_rows]  # the same steps again, exactly
    assert rerun["align rl"]["mean_reward"] == stages["align rl"]["mean_reward"]
