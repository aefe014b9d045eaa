"""Run a recipe: every stage in order, each on the previous stage's output, into one folder.

    OUT/corpus/      documents, rejected/, stats.json       (lmforge corpus process)
    OUT/dedup/       documents, clusters/, stats.json       (lmforge corpus dedup)
    OUT/ingest/NAME/ raw/ (lmforge corpus ingest SOURCE), dedup/ (lmforge corpus dedup): one per [[ingest]]
    OUT/tokenizer/   tokenizer.json, lmforge-tokenizer.json (lmforge tokenizer train)
    OUT/shards/NAME/ token shards, source.json              (lmforge shards build)
    OUT/mix.json     the mixture manifest                   (lmforge mix build)
    OUT/train/ OUT/sft/ OUT/rm/ OUT/dpo/ OUT/rl/            runs with checkpoints and metrics
    OUT/pipeline.json  what ran: the recipe, each stage's settings, outputs, figures, and the
                       lineage of the newest checkpoint (manifest, tokenizer, corpus stats)

A rerun resumes: finished stages are skipped (every stage also resumes inside itself, so a
run killed in the middle of one picks up where it stopped), and a stage whose settings in the
recipe changed since it ran is an error naming it, rather than a silent mix of old and new.
`pipeline.json` is rewritten atomically after every stage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from lmforge.errors import UserError
from lmforge.pipelines.recipe import STAGES, Recipe, RecipeError

RECORD = "pipeline.json"


class PipelineError(UserError, RuntimeError):
    """A stage failed for a reason the user can fix; the message names the stage."""


def _drops(summary: dict) -> dict:
    """A corpus run's drop reasons, most frequent first."""
    return dict(sorted(summary.get("dropped", {}).items(), key=lambda kv: -kv[1]))


def _top(dropped: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in list(dropped.items())[:4]) or "none"


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exception types the stages raise for bad input or settings (not bugs)."""
    from lmforge.corpus.dedup import DedupError
    from lmforge.corpus.ingest.base import IngestInputError
    from lmforge.corpus.pipeline import CorpusRunError
    from lmforge.documents import DocumentFileError
    from lmforge.tokenize.build import BuildError
    from lmforge.tokenize.mix import MixError
    from lmforge.tokenize.tokenizer import TokenizerError

    from lmforge.corpus.status import StatusError
    from lmforge.locks import OutputLocked

    errors: list[type[BaseException]] = [RecipeError, CorpusRunError, IngestInputError, DedupError, DocumentFileError, BuildError, MixError,
                                         TokenizerError, FileNotFoundError, ValueError, OutputLocked, StatusError]
    try:
        from lmforge.alignment.reward import AlignmentError
        from lmforge.alignment.sft import SFTError
        from lmforge.train.data import DataError
        from lmforge.train.trainer import TrainingError

        errors += [TrainingError, DataError, SFTError, AlignmentError]
    except ImportError:
        pass
    return tuple(errors)


def _write_record(out: Path, record: dict) -> None:
    from lmforge.documents import write_bytes_atomic

    write_bytes_atomic(out / RECORD, json.dumps(record, indent=2, default=str).encode())


def read_record(out: str | Path) -> dict | None:
    """The `pipeline.json` of an output folder, or None."""
    path = Path(out) / RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc}); move it away to start the record afresh") from None


def _run_steps(run_dir: Path) -> int:
    """The step of a run folder's newest good checkpoint (0 without one): a damaged newest
    checkpoint does not count as finished work, so the stage resumes (and falls back, saying
    so); with none good, the newest one's step, so that the stage's resume says what to do."""
    from lmforge.train.trainer import CheckpointError, checkpoint_dirs, newest_good_checkpoint, read_state

    try:
        ckpt = newest_good_checkpoint(run_dir, report=False)
    except CheckpointError:
        return int(checkpoint_dirs(run_dir)[-1].name.split("_")[1])
    return int(read_state(ckpt).get("step", 0)) if ckpt is not None else 0


class PipelineRunner:
    """Runs the stages of one recipe; `run()` returns the record it wrote to pipeline.json."""

    def __init__(self, recipe: Recipe, progress: bool = True, log: Callable[[str], None] = print):
        self.recipe = recipe
        self.out = recipe.output
        self.progress = progress
        self.log = log
        previous = read_record(self.out) or {}
        self.record = {
            "format": "lmforge-pipeline/1",
            "recipe": str(recipe.path) if recipe.path else None,
            "recipe_sha256": recipe.sha256,
            "output": str(self.out),
            "stages": previous.get("stages", {}),
            "lineage": previous.get("lineage", {}),
            # where the corpus, dedup, ingest and shards stages ran (how, not what: not a setting)
            "execution": _execution_record(recipe.executor()),
        }

    # ---- paths between stages -------------------------------------------------------------
    @property
    def crawl_documents(self) -> Path:
        stage = "dedup" if self.recipe.stages.get("dedup") is not None else "corpus"
        return self.out / stage / "documents"

    def _policy_source(self) -> Path:
        return self.out / ("sft" if self.recipe.stages.get("sft") is not None else "train")

    # ---- driving ---------------------------------------------------------------------------
    def run(self, until: str | None = None) -> dict:
        if until is not None and until not in STAGES:
            raise RecipeError(f"--until {until!r}: choose one of {', '.join(STAGES)}")
        plan = self.recipe.present()
        if until is not None:
            if until not in plan:
                raise RecipeError(f"--until {until}: the recipe has no [{until}] table (it has {', '.join(plan)})")
            plan = plan[: plan.index(until) + 1]
        from lmforge.pipelines.recipe import missing_inputs

        missing = [m for stage, m in missing_inputs(self.recipe) if stage in plan]
        if missing:
            raise RecipeError("the recipe names inputs that do not exist:\n  " + "\n  ".join(missing))
        if any(stage in plan for stage in ("corpus", "dedup", "ingest", "shards")):
            from lmforge.corpus.execution import check_engine

            try:  # sbatch missing, before any stage runs
                check_engine(self.recipe.executor())
            except RuntimeError as exc:
                raise RecipeError(f"[execution] {exc}") from None
        from lmforge.locks import hold

        # reentrant: `pipeline run` and `demo` took it already. With Slurm stages no temporary file
        # is stale: a task of an earlier run (whose wait ran out) may be writing it now
        with hold(self.out, PipelineError, clean=self.recipe.executor().executor != "slurm"):
            return self._run_plan(plan)

    def _run_plan(self, plan: list[str]) -> dict:
        from lmforge.locks import output_lock

        self.out.mkdir(parents=True, exist_ok=True)
        self._check_settings(plan)
        errors = _user_errors()
        for stage in plan:
            entry = self.record["stages"].setdefault(stage, {})
            entry.update(settings=self.recipe.stage_settings(stage), status="running")
            _write_record(self.out, self.record)
            t = time.perf_counter()
            self.log(f"pipeline: {stage} ...")
            try:
                # the stage's own output too: a command writing into it by hand is refused by name
                with output_lock(self.out / ("mix.json" if stage == "mix" else stage), file=stage == "mix", clean=False):
                    result = getattr(self, f"_{stage}")()
            except errors as exc:
                entry.update(status="failed", error=str(exc))
                _write_record(self.out, self.record)
                raise PipelineError(f"[{stage}] {exc}\n(fix it and run the same command again: finished stages are kept)") from None
            entry.update(status="done", seconds=round(time.perf_counter() - t, 2), **result)
            entry.pop("error", None)
            _write_record(self.out, self.record)
        self._lineage()
        _write_record(self.out, self.record)
        return self.record

    def _check_settings(self, plan: list[str]) -> None:
        for stage in plan:
            entry = self.record["stages"].get(stage, {})
            # a failed stage wrote nothing; a deleted output is to be made again
            kept = entry.get("status") in ("done", "running") and self._output_exists(stage)
            old = entry.get("settings") if kept else None
            new = self.recipe.stage_settings(stage)
            if old is not None and old != new:
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                raise RecipeError(
                    f"[{stage}] changed since {self.out} was made ({', '.join(changed)}); its output no longer matches "
                    f"the recipe: write to another folder (-o) or delete {self.out / stage if stage != 'mix' else self.out / 'mix.json'} "
                    "and the stages after it")

    def _output_exists(self, stage: str) -> bool:
        from lmforge.locks import LOCK_NAME

        path = self.out / ("mix.json" if stage == "mix" else stage)  # the lock this run holds on it is no output
        return path.is_file() or (path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir()))

    # ---- stages -----------------------------------------------------------------------------
    def _executor(self):
        return self.recipe.executor()

    def _wait(self, out: Path, what: str):
        """Wait for the Slurm submission of a stage into `out` (returns the stats it wrote, or
        raises naming the failed tasks and their logs)."""
        from lmforge.corpus.execution import parse_duration
        from lmforge.corpus.status import wait_for_run

        limit = self._executor().slurm_wait
        self.log(f"pipeline: {what} stage on Slurm; waiting for it, at most {limit} "
                 f"(`lmforge corpus status {out}` shows it)")
        return wait_for_run(out, timeout=parse_duration(limit, "slurm_wait"))

    def _in_flight(self, out: Path, what: str) -> bool:
        """Whether the stage's Slurm jobs of an earlier run of the pipeline (one whose wait ran
        out, or was interrupted) are still queued or running: they are waited for, not
        submitted a second time."""
        if self._executor().executor != "slurm":
            return False
        from lmforge.corpus.status import submission_in_flight

        jobs = submission_in_flight(out)
        if jobs:
            self.log(f"pipeline: {what} stage: Slurm job {', '.join(jobs)} of an earlier run is still queued or running")
        return bool(jobs)

    def _run_or_wait(self, out: Path, what: str, run: Callable[[], dict]) -> dict:
        """The stats of a stage into `out`: its Slurm jobs of an earlier run waited for when still
        in flight, else `run()`, waited for when it only submitted."""
        if self._in_flight(out, what):
            return self._wait(out, what)
        stats = run()
        return self._wait(out, what) if stats.get("submitted") else stats

    def _corpus(self) -> dict:
        from lmforge.corpus.pipeline import run_corpus

        cfg = dataclasses.replace(self.recipe.stages["corpus"], output_dir=str(self.out / "corpus"), dedup=False)
        stats = self._run_or_wait(self.out / "corpus", "corpus", lambda: run_corpus(cfg, self._executor(), progress=self.progress))
        s = stats.get("summary", {})
        dropped = _drops(s)
        if not s.get("kept"):
            raise RecipeError(f"kept no documents of {s.get('pages', 0)} pages (dropped: {_top(dropped)}); "
                              f"check [corpus] languages and filters against {self.out / 'corpus' / 'stats.json'}")
        figures = {k: s[k] for k in ("records", "pages", "extracted", "kept") if k in s}
        figures["dropped"] = dropped
        return {"outputs": {"documents": str(self.out / "corpus" / "documents"), "stats": str(self.out / "corpus" / "stats.json")},
                "figures": figures}

    def _dedup(self) -> dict:
        from lmforge.corpus.dedup import run_dedup

        # dedup's own resume compares input file names only: a corpus rebuilt under the same
        # names would leave its finished output stale, so the pipeline compares the files too
        upstream = _files_signature(self.out / "corpus" / "documents")
        before = self.record["stages"].get("dedup", {}).get("upstream")
        if before is not None and before != upstream and self._output_exists("dedup"):
            raise RecipeError(f"{self.out / 'dedup'} was made from other corpus documents (the corpus was rebuilt); "
                              f"delete {self.out / 'dedup'} and the stages after it to deduplicate the new ones")
        cfg = dataclasses.replace(self.recipe.stages["dedup"], progress=self.progress)
        stats = self._run_or_wait(self.out / "dedup", "dedup", lambda: run_dedup(
            [str(self.out / "corpus" / "documents")], str(self.out / "dedup"), cfg, self._executor()))
        keys = ("documents_in", "exact_duplicates_removed", "near_duplicates_removed", "kept")
        return {"outputs": {"documents": str(self.out / "dedup" / "documents"), "stats": str(self.out / "dedup" / "stats.json")},
                "figures": {k: stats[k] for k in keys if k in stats}, "upstream": upstream}

    def _ingest_documents(self, src) -> Path:
        return self.out / "ingest" / src.name / ("dedup" if src.dedup else "raw") / "documents"

    def _ingest(self) -> dict:
        """Each [[ingest]] source: `corpus ingest SOURCE` into OUT/ingest/NAME/raw, then (unless
        `dedup = false`) `corpus dedup` into OUT/ingest/NAME/dedup, with [dedup]'s settings."""
        from lmforge.corpus.dedup import DedupConfig, run_dedup
        from lmforge.corpus.pipeline import CorpusConfig, run_corpus

        outputs, figures = {}, {}
        dedup_cfg = self.recipe.stages.get("dedup") or DedupConfig()
        for src in self.recipe.stages["ingest"].sources:
            folder = self.out / "ingest" / src.name
            cfg = CorpusConfig(inputs=list(src.inputs), output_dir=str(folder / "raw"), mode="ingest",
                               source=src.source, source_config=src.options)
            stats = self._run_or_wait(folder / "raw", f"ingest {src.name}",
                                      lambda: run_corpus(cfg, self._executor(), progress=self.progress))
            s = stats.get("summary", {})
            if not s.get("kept"):
                raise RecipeError(f"[[ingest]] {src.name}: kept no documents of {s.get('records', 0)} records "
                                  f"(dropped: {_top(_drops(s))}); see {folder / 'raw' / 'stats.json'}")
            line = f"{s.get('records', 0)} records, {s['kept']} kept"
            if src.dedup:
                d = self._run_or_wait(folder / "dedup", f"ingest {src.name} dedup", lambda: run_dedup(
                    [str(folder / "raw" / "documents")], str(folder / "dedup"),
                    dataclasses.replace(dedup_cfg, progress=self.progress), self._executor()))
                line += f", {d.get('kept', s['kept'])} after dedup"
            outputs[src.name] = str(self._ingest_documents(src))
            figures[src.name] = line
        return {"outputs": outputs, "figures": figures}

    def _document_sources(self) -> list[tuple[str, str]]:
        """(name, documents path) of every mix source this pipeline shards itself."""
        sources = []
        if self.recipe.stages.get("corpus") is not None:
            sources.append(("web", str(self.crawl_documents)))
        ingest = self.recipe.stages.get("ingest")
        for src in (ingest.sources if ingest is not None else []):
            sources.append((src.name, str(self._ingest_documents(src))))
        mix = self.recipe.stages.get("mix")
        for src in (mix.sources if mix is not None else []):
            if src.documents:
                sources.append((src.name, src.documents))
        return sources

    def _tokenizer(self) -> dict:
        from lmforge.tokenize.train import train_tokenizer

        inputs = [path for _, path in self._document_sources()]
        if not inputs:
            raise RecipeError("[tokenizer] has no documents to train on: add [corpus] or a [[mix.source]] with `documents`")
        from lmforge.tokenize.tokenizer import TokenizerError

        target = self.out / "tokenizer"
        try:
            result = train_tokenizer(inputs, str(target), self.recipe.stages["tokenizer"])
        except TokenizerError as exc:
            if "was made with other settings" not in str(exc):
                raise
            raise TokenizerError(f"{target} was trained on other documents (the stages before it changed): "
                                 f"{str(exc).split(': ', 1)[-1].split(';')[0]}; delete {target} and the stages after it to retrain") from None
        return {"outputs": {"tokenizer": str(self.out / "tokenizer")},
                "figures": {"vocab_size": result.tokenizer.vocab_size, "fingerprint": result.tokenizer.fingerprint,
                            "trained_earlier": result.skipped}}

    def _shards(self) -> dict:
        from lmforge.tokenize.build import BuildError, build_shards

        cfg = self.recipe.stages["shards"]
        outputs, figures = {}, {}
        for name, docs in self._document_sources():
            target = self.out / "shards" / name
            try:
                if self._shards_executor() is not None and self._in_flight(target, f"shards {name}"):
                    source = self._wait(target, f"shards {name}")
                else:
                    res = build_shards([docs], str(self.out / "tokenizer"), str(target), cfg, executor=self._shards_executor())
                    source = self._wait(target, f"shards {name}") if res.submitted else res.source
            except BuildError as exc:
                if "already holds a build" not in str(exc):
                    raise
                raise BuildError(f"{target} holds shards of other documents or another tokenizer (the stages before it "
                                 f"changed); delete {target} and the stages after it to rebuild") from None
            outputs[name] = str(target)
            figures[f"{name}_tokens"] = source.get("tokens")
        return {"outputs": outputs, "figures": figures}

    def _shards_executor(self):
        """The executor of the shards stage: None (the process pool of a plain build, with
        [shards].workers processes) unless the recipe has an [execution] table."""
        return self.recipe.execution

    def _mix(self) -> dict:
        from lmforge.tokenize.mix import MixError, MixRecipe, SourceSpec, build_manifest

        mix = self.recipe.stages["mix"]
        specs = []
        if self.recipe.stages.get("corpus") is not None:
            weight = mix.web_weight if mix.web_weight is not None or mix.web_epochs is not None else 1.0
            specs.append(SourceSpec("web", str(self.out / "shards" / "web"), weight=weight, epochs=mix.web_epochs))
        ingest = self.recipe.stages.get("ingest")
        for src in (ingest.sources if ingest is not None else []):
            specs.append(SourceSpec(src.name, str(self.out / "shards" / src.name), weight=src.weight, epochs=src.epochs))
        for src in mix.sources:
            path = str(self.out / "shards" / src.name) if src.documents else src.shards
            specs.append(SourceSpec(src.name, path, weight=src.weight, epochs=src.epochs))
        path = self.out / "mix.json"
        try:
            manifest = build_manifest(MixRecipe(specs, mix.budget, mix.val_tokens), path)
        except MixError as exc:
            if "was made with other settings" not in str(exc):
                raise
            raise MixError(f"{path} was built from other shards (the stages before it changed): {str(exc).split(': ', 1)[-1].split(';')[0]}; "
                           f"delete {path} and the stages after it to rebuild") from None
        figures = {"budget": manifest.budget}
        for s in manifest.sources:
            figures[s.name] = f"weight {s.weight:.3f}, {s.tokens:,} tokens, {s.epochs:.2f} epochs"
        sha = _file_sha256(path)  # as `lmforge train` records it
        return {"outputs": {"manifest": str(path), "sha256": sha, "tokenizer_fingerprint": manifest.fingerprint}, "figures": figures}

    def _run_stage(self, stage: str, fn, figures: Callable, **wired) -> dict:
        """A training stage: skipped when its run already reached its steps, resumed when it
        has a checkpoint, else started; `figures(summary)` picks what the record shows."""
        run = self.out / stage
        cfg = self.recipe.stages[stage]
        done = _run_steps(run)
        upstream = self._upstream(stage, wired)
        before = self.record["stages"].get(stage, {}).get("upstream")
        if done and before is not None and before != upstream:
            raise RecipeError(
                f"{run} was trained from {before}, but that input is now {upstream}; delete {run} "
                "(and the stages after it) to train it again from the new one")
        if done >= cfg.steps:
            return {**self._run_entry(run, {"trained_earlier": True, "steps": done}), "upstream": upstream}
        cfg = dataclasses.replace(cfg, out_dir=str(run), resume=done > 0, **wired)
        summary = self._with_bar(stage, cfg.steps, lambda on_step: fn(cfg, on_step=on_step))
        return {**self._run_entry(run, {**figures(summary), **({"resumed_from": done} if done else {})}), "upstream": upstream}

    def _upstream(self, stage: str, wired: dict) -> str:
        """What a training stage starts from: the manifest's sha256 for pretraining, else the
        newest checkpoint of the run it starts from (and of the reward model, for PPO)."""
        from lmforge.train.trainer import latest_checkpoint

        if stage == "train":
            return _file_sha256(self.out / "mix.json")
        parts = []
        for key in ("base", "policy", "reward"):
            if key in wired:
                ckpt = latest_checkpoint(wired[key])
                parts.append(f"{ckpt} ({_file_sha256(ckpt / 'model.safetensors')[:19]})" if ckpt is not None
                             else f"{wired[key]} (no checkpoint)")
        return " + ".join(parts)

    def _train(self) -> dict:
        from lmforge.train.trainer import train

        def figures(s) -> dict:
            out = {"steps": s.steps, "loss": _arrow(s.first_loss, s.loss), "tokens_per_s": round(s.tokens_per_s), "precision": s.precision}
            out.update({f"val_bpb/{k}": round(v["bpb"], 4) for k, v in s.val.items() if isinstance(v, dict) and v.get("bpb") is not None})
            return out

        return self._run_stage("train", train, figures, manifest=str(self.out / "mix.json"))

    def _sft(self) -> dict:
        from lmforge.alignment.sft import sft

        def figures(s) -> dict:
            return {"steps": s.steps, "loss": _arrow(s.first_loss, s.loss), "val_loss": _arrow(s.base_val_loss, s.val_loss),
                    "conversations": s.conversations.get("train")}

        return self._run_stage("sft", sft, figures, base=str(self.out / "train"))

    @staticmethod
    def _preference_figures(s) -> dict:
        """Steps, the final held-out evaluation, and first -> last of the step metrics."""
        out = {"steps": s.steps}
        out.update({f"eval_{k}": round(v, 4) if isinstance(v, float) else v for k, v in (s.eval or {}).items() if isinstance(v, (int, float))})
        out.update({k: _arrow(s.first[k], s.last[k]) for k in ("loss", "reward", "accuracy", "margin") if k in s.first and k in s.last})
        return out

    def _rm(self) -> dict:
        from lmforge.alignment.reward import train_reward_model

        return self._run_stage("rm", train_reward_model, self._preference_figures, base=str(self._policy_source()))

    def _dpo(self) -> dict:
        from lmforge.alignment.dpo import train_dpo

        return self._run_stage("dpo", train_dpo, self._preference_figures, policy=str(self._policy_source()))

    def _rl(self) -> dict:
        from lmforge.alignment.rl import train_rl

        cfg = self.recipe.stages["rl"]
        wired = {"policy": str(self._policy_source())}
        if cfg.method == "ppo":
            wired["reward"] = str(self.out / "rm")
        return self._run_stage("rl", train_rl, self._preference_figures, **wired)

    # ---- helpers --------------------------------------------------------------------------------
    def _with_bar(self, name: str, total: int, fn):
        """Run `fn(on_step)` under a progress bar fed by its per-step rows."""
        if not self.progress:
            return fn(None)
        from lmforge.progress import ProgressBar

        with ProgressBar(name, total, info=True) as bar:
            return fn(bar.on_step(lambda row: f"loss {row['loss']:.4f}" if isinstance(row.get("loss"), float) else ""))

    def _run_entry(self, run: Path, figures: dict) -> dict:
        from lmforge.train.trainer import latest_checkpoint

        ckpt = latest_checkpoint(run)
        return {"outputs": {"run": str(run), "checkpoint": str(ckpt) if ckpt else None}, "figures": figures}

    def _lineage(self) -> None:
        """Where the newest model came from: its checkpoint, the manifest (with its sha256), the
        tokenizer fingerprint, and the corpus and dedup stats."""
        stages = self.record["stages"]
        last = next((s for s in reversed(STAGES) if stages.get(s, {}).get("status") == "done"
                     and stages[s].get("outputs", {}).get("checkpoint")), None)
        lineage = {}
        if last:
            lineage["model"] = {"stage": last, "checkpoint": stages[last]["outputs"]["checkpoint"]}
            chain = [s for s in ("rl", "dpo", "rm", "sft", "train") if s in stages and STAGES.index(s) <= STAGES.index(last)]
            lineage["runs"] = {s: stages[s]["outputs"].get("checkpoint") for s in chain if stages[s].get("outputs")}
        if "mix" in stages and stages["mix"].get("outputs"):
            lineage["manifest"] = stages["mix"]["outputs"]
        if "tokenizer" in stages and stages["tokenizer"].get("figures"):
            lineage["tokenizer"] = {"dir": str(self.out / "tokenizer"), "fingerprint": stages["tokenizer"]["figures"].get("fingerprint")}
        for s in ("corpus", "dedup"):
            if s in stages and stages[s].get("outputs"):
                lineage[f"{s}_stats"] = stages[s]["outputs"].get("stats")
        self.record["lineage"] = lineage


def _execution_record(config) -> dict:
    """The executor settings worth reading back: the engine, its tasks, and the cluster options given."""
    data = dataclasses.asdict(config)
    data.pop("extra", None)
    if config.executor != "slurm":  # the pipeline waits for Slurm stages only
        data.pop("slurm_wait", None)
    return {k: v for k, v in data.items() if v not in (None, {}, (), [])}


def _files_signature(folder: Path) -> str:
    """Names, sizes and modification times of the files below `folder`, hashed: cheap, and
    different whenever the folder was written again."""
    entries = sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())
    return "files:" + hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    """sha256 of a file (a checkpoint's weights: the identity of what a later stage starts from)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        return "sha256:missing"
    return "sha256:" + h.hexdigest()


def _fmt(value) -> str:
    return "?" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _arrow(a, b) -> str | None:
    """"first -> last" of a figure, or None when neither is known."""
    if a is None and b is None:
        return None
    return f"{_fmt(a)} -> {_fmt(b)}"


def run_pipeline(recipe: Recipe, until: str | None = None, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) `recipe`; returns the record also written to OUT/pipeline.json."""
    return PipelineRunner(recipe, progress=progress, log=log).run(until=until)
