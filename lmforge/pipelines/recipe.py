"""Pipeline recipes: one TOML file that chains every stage, from crawl files to an aligned model.

A recipe is a typed configuration: each TOML table is the configuration dataclass of one
stage (the same one its command builds from flags), minus the paths the pipeline wires
between stages. A stage runs when its table is present; the tables run in this order:

    corpus -> dedup -> ingest -> tokenizer -> shards -> mix -> train -> sft -> rm -> dpo -> rl

```toml
[pipeline]
output = "runs/web-tiny"          # every stage writes below it (relative to this file)

[execution]                       # lmforge.corpus.execution.ExecutorConfig: where the corpus, dedup,
executor = "local"                # ingest and shards stages run: "local", "ray" or "slurm" (the flags
tasks = 2                         # of `corpus process`, without --: slurm_partition, ray_address, ...)

[corpus]                          # lmforge.corpus.pipeline.CorpusConfig
inputs = ["crawl/*.warc.gz"]      # WARC/WET paths, globs or URLs (relative to this file)
languages = ["en"]
workers = 2                       # processes (and tasks) for the corpus stages
[corpus.filters.c4]               # lmforge.corpus.filters.FilterConfig; `c4 = false` skips a filter
min_num_sentences = 3
[corpus.filters.c4_badwords]      # off unless its table is given (C4's recipe; FineWeb's leaves it out)
keep_fraction = 0.0

[dedup]                           # lmforge.corpus.dedup.DedupConfig (MinHash LSH)
threshold = 0.8
verify = "exact"                  # check LSH candidate pairs: exact Jaccard >= threshold ("estimate": from signatures, "none": LSH alone)

[[ingest]]                        # another source from its native dump (`lmforge corpus ingest`):
name = "github"                   # its name in the mixture
source = "code"                   # code | arxiv | wikipedia | stackexchange | books
inputs = ["repos/*", "sdists/*.tar.gz"]
weight = 0.045                    # (or epochs), as a [[mix.source]]
dedup = true                      # near-duplicates removed with [dedup]'s settings (its defaults without one)
[ingest.options]                  # the source's settings: its flags (`corpus ingest code --help`)
licenses = ["MIT", "BSD-3-Clause", "Apache-2.0"]

[tokenizer]                       # lmforge.tokenize.train.TrainConfig; trained on every mix source
vocab_size = 8192

[shards]                          # lmforge.tokenize.build.BuildConfig
frame_tokens = 65536

[mix]                             # the crawl is source "web"; more sources as [[mix.source]]
budget = "20M"
val_tokens = 20000
web_weight = 0.7
[[mix.source]]
name = "wiki"
documents = "wiki/"               # documents: sharded with this pipeline's tokenizer
weight = 0.3

[train]                           # lmforge.train.trainer.TrainConfig
preset = "tiny"
steps = 300

[sft]                             # lmforge.alignment.sft.SFTConfig, from the pretrained run
data = ["alpaca.json"]
[rm]                              # lmforge.alignment.reward.RewardConfig, from the SFT run
data = "preferences.jsonl"
[dpo]                             # lmforge.alignment.dpo.DPOConfig, from the SFT run
data = "preferences.jsonl"
[rl]                              # lmforge.alignment.rl.RLConfig, from the SFT run
method = "grpo"                   # (ppo scores with the [rm] run)
prompts = "gsm8k.jsonl"
```

Unknown tables or keys, wrong types and bad values are errors that name the file, the table
and the key (`RecipeError`); nothing runs until the whole recipe is valid.

`[execution]` is not a stage: without it the corpus stages run `workers` tasks in `workers`
processes here, as before. With `executor = "slurm"` each of those stages is submitted as
job arrays and the pipeline waits for them (polling `squeue`, as `lmforge corpus status`
does), so run it where it may wait: a login node, or inside an allocation. A failed or
cancelled task stops the wait at once (exit 1, naming the task and its log); after
`slurm_wait` (Slurm's time format, default "48:00:00"; `pipeline run --slurm-wait`) it stops
too, the jobs keep running, and the same command again waits for them. The executor is
recorded in `pipeline.json`; changing it does not make finished stages stale (the same
documents and shards come out on every engine).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.errors import UserError

#: stage tables in the order they run
STAGES = ("corpus", "dedup", "ingest", "tokenizer", "shards", "mix", "train", "sft", "rm", "dpo", "rl")

#: per stage: fields the pipeline sets itself (paths between stages, resumption)
WIRED = {
    "corpus": {"output_dir", "dedup", "dedup_config"},
    "dedup": {"progress"},
    "tokenizer": set(),
    "shards": set(),
    "train": {"manifest", "out_dir", "resume", "overwrite"},
    "sft": {"base", "out_dir", "resume", "overwrite"},
    "rm": {"base", "out_dir", "resume", "overwrite"},
    "dpo": {"policy", "out_dir", "resume", "overwrite"},
    "rl": {"policy", "out_dir", "resume", "reward", "overwrite"},
}

#: per stage: fields that name input files, resolved against the recipe's folder
PATH_FIELDS = {
    "corpus": {"inputs", "lid_model"},
    "train": {"init_from"},
    "sft": {"data", "tokenizer_dir"},
    "rm": {"data", "tokenizer_dir"},
    "dpo": {"data", "tokenizer_dir"},
    "rl": {"prompts", "tokenizer_dir"},
}


class RecipeError(UserError, ValueError):
    """A recipe that cannot run; the message names the file, the table and the key."""


@dataclass
class MixSource:
    """One more source of the mixture besides the crawl: documents to shard with the
    pipeline's tokenizer, or an existing `lmforge shards build` folder built with it."""

    name: str
    documents: str | None = None
    shards: str | None = None
    weight: float | None = None
    epochs: float | None = None


@dataclass
class IngestSource:
    """One `[[ingest]]` table: a source read from its native dump by `corpus ingest SOURCE`
    (deduplicated unless `dedup = false`), sharded with the pipeline's tokenizer and mixed
    under `name` with its `weight` or `epochs`."""

    name: str
    source: str
    inputs: list[str]
    weight: float | None = None
    epochs: float | None = None
    dedup: bool = True
    #: the source's settings (its `Config` dataclass, as built from the recipe's options table)
    options: Any = None


@dataclass
class IngestSection:
    sources: list[IngestSource] = field(default_factory=list)


@dataclass
class MixSection:
    budget: int
    val_tokens: int = 0
    web_weight: float | None = None  # the crawl's weight [1.0 when neither is given]
    web_epochs: float | None = None
    sources: list[MixSource] = field(default_factory=list)


@dataclass
class Recipe:
    """A loaded, validated recipe: stage name -> its configuration object (None: not run)."""

    path: Path | None
    output: Path
    sha256: str
    stages: dict[str, Any]
    workers: int = 1
    #: where the corpus, dedup, ingest and shards stages run (`[execution]`; None: `workers`
    #: tasks in `workers` processes on this machine)
    execution: Any = None

    def executor(self):
        """The `ExecutorConfig` of the corpus, dedup, ingest and shards stages."""
        from lmforge.corpus.execution import ExecutorConfig

        return self.execution or ExecutorConfig(tasks=self.workers, workers=self.workers)

    def present(self) -> list[str]:
        return [s for s in STAGES if self.stages.get(s) is not None]

    def changed_settings(self, stage: str) -> dict:
        """The settings of a stage that differ from its configuration's defaults."""
        cfg = self.stages.get(stage)
        out = {}
        for key, value in self.stage_settings(stage).items():
            f = next((f for f in dataclasses.fields(cfg) if f.name == key), None)
            if f is None or f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                out[key] = value
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if json.loads(json.dumps(dataclasses.asdict(default) if dataclasses.is_dataclass(default) else default, default=str)) != value:
                out[key] = value
        return out

    def stage_settings(self, stage: str) -> dict:
        """What a stage's output depends on, as JSON (for the rerun guard and the record)."""
        cfg = self.stages.get(stage)
        if cfg is None:
            return {}
        data = dataclasses.asdict(cfg)
        for key in WIRED.get(stage, ()):
            data.pop(key, None)
        for key in ("workers", "threads", "progress", "device"):  # how, not what
            data.pop(key, None)
        return json.loads(json.dumps(data, default=str))


# ---- loading ---------------------------------------------------------------------------------


def _stage_classes() -> dict[str, type]:
    from lmforge.corpus.dedup import DedupConfig
    from lmforge.corpus.pipeline import CorpusConfig
    from lmforge.tokenize.build import BuildConfig
    from lmforge.tokenize.train import TrainConfig as TokenizerConfig

    classes = {"corpus": CorpusConfig, "dedup": DedupConfig, "tokenizer": TokenizerConfig, "shards": BuildConfig}
    try:  # the training and alignment stages need torch (pip install 'lmforge[train]')
        from lmforge.alignment.dpo import DPOConfig
        from lmforge.alignment.reward import RewardConfig
        from lmforge.alignment.rl import RLConfig
        from lmforge.alignment.sft import SFTConfig
        from lmforge.train.trainer import TrainConfig

        classes.update(train=TrainConfig, sft=SFTConfig, rm=RewardConfig, dpo=DPOConfig, rl=RLConfig)
    except ImportError:
        pass
    return classes


#: stage -> the command whose flags are its keys: the flags' click types (`Finite`, `IntRange`)
#: are the one table of allowed ranges, for the command line and recipes alike
STAGE_COMMANDS = {
    "dedup": "lmforge.corpus.dedup_cli:dedup",
    "tokenizer": "lmforge.tokenize.cli:train",
    "shards": "lmforge.tokenize.shards_cli:shards_build",
    "train": "lmforge.train.cli:train",
    "sft": "lmforge.alignment.sft_cli:sft",
    "rm": "lmforge.alignment.reward_cli:rm",
    "dpo": "lmforge.alignment.dpo_cli:dpo",
    "rl": "lmforge.alignment.rl_cli:rl",
}


def _check_ranges(stage: str, table: dict, where: str) -> None:
    """Each number of a stage table checked as its command-line flag is (`[train] warmup = -1`
    is refused like `--warmup -1`), before any stage runs."""
    import importlib

    import click

    if stage not in STAGE_COMMANDS:
        return
    module, attr = STAGE_COMMANDS[stage].split(":")
    params = {p.name: p for p in getattr(importlib.import_module(module), attr).params}
    for key, value in table.items():
        param = params.get(key)
        if param is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not isinstance(param.type, click.types._NumberRangeBase):
            continue
        try:
            param.type.convert(value, param, None)
        except click.BadParameter as exc:
            raise RecipeError(f"{where}.{key}: {exc.message}") from None


def _resolve(value: str, base: Path) -> str:
    if "://" in value or os.path.isabs(value):
        return value
    return os.path.normpath(base / value)


def _type_name(value) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _check_type(value, hint, where: str):
    """`value` as the field's type wants it (ints become floats where a float is wanted)."""
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and args:
        if len(args) == 1:
            return _check_type(value, args[0], where)
        for a in args:
            try:
                return _check_type(value, a, where)
            except RecipeError:
                continue
        raise RecipeError(f"{where}: {value!r} is {_type_name(value)}; expected one of {', '.join(getattr(a, '__name__', str(a)) for a in args)}")
    if hint is Any or hint is typing.Any:
        return value
    if origin is list or hint is list:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise RecipeError(f"{where}: {value!r} is {_type_name(value)}; expected a list")
        inner = typing.get_args(hint)
        return [_check_type(v, inner[0], where) for v in value] if inner else value
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: {value!r} is {_type_name(value)}; expected a table")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: {value!r} is {_type_name(value)}; expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{where}: {value!r} is {_type_name(value)}; expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{where}: {value!r} is {_type_name(value)}; expected a number")
        if not math.isfinite(value):
            raise RecipeError(f"{where}: {value!r} is not a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise RecipeError(f"{where}: {value!r} is {_type_name(value)}; expected a string")
        return value
    return value


def _build(cls, table: dict, where: str, skip: set[str] = frozenset(), fill: dict | None = None):
    """`cls(**fill, **table)`, checking every key and type of `table` first (keys in `skip`
    are not the user's to set); nested dataclasses are sub-tables, and `false` (or "none")
    for an optional nested section gives None (e.g. a filter turned off)."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = sorted(set(table) - set(known))
    if unknown:
        extra = {"workers"} if cls.__name__ == "CorpusConfig" else set()
        raise RecipeError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                          f"known keys: {', '.join(sorted(set(known) | extra))}")
    kwargs = {}
    for name, value in table.items():
        hint = hints.get(name, known[name].type)
        nested = next((a for a in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(a)), None)
        if nested is not None:
            if value is False or (isinstance(value, str) and value.lower() == "none"):
                kwargs[name] = None
            elif isinstance(value, dict):
                kwargs[name] = _build(nested, value, f"{where}.{name}")
            else:
                raise RecipeError(f"{where}.{name}: expected a table ([{where.split('] ')[-1].strip('[]')}.{name}]) or false")
            continue
        if isinstance(value, str) and value.lower() == "none" and type(None) in typing.get_args(hint):
            kwargs[name] = None
            continue
        kwargs[name] = _check_type(value, hint, f"{where}.{name}")
    try:
        return cls(**(fill or {}), **kwargs)
    except TypeError as exc:  # a required key is missing
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in skip and f.name not in kwargs
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        raise RecipeError(f"{where}: missing {', '.join(missing) or 'a required key'} ({exc})") from None
    except Exception as exc:  # the stage's own validation: ValueError or the stage's error class
        if isinstance(exc, ValueError) or type(exc).__module__.startswith("lmforge."):
            raise RecipeError(f"{where}: {exc}") from None
        raise


def _placeholders(cls, skip: set[str]) -> dict:
    """Stand-ins for the wired fields a stage configuration requires; the runner replaces
    them with the previous stage's output before the stage runs."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            out[f.name] = ["(wired)"] if typing.get_origin(hints.get(f.name)) is list else "(wired)"
    return out


def parse_recipe(data: dict, *, path: Path | None = None, base: Path | None = None, output: str | os.PathLike | None = None) -> Recipe:
    """Validate a recipe already read from TOML (`data`); relative paths resolve against `base`."""
    from lmforge.tokenize.mix import parse_tokens

    name = str(path) if path else "recipe"
    base = (base or (path.parent if path else Path.cwd())).resolve()
    unknown = sorted(set(data) - set(STAGES) - {"pipeline", "execution"})
    if unknown:
        raise RecipeError(f"{name}: unknown table{'s' if len(unknown) > 1 else ''} [{'], ['.join(unknown)}]; "
                          f"a recipe has [pipeline], [execution] and stage tables: {', '.join(STAGES)}")
    head = dict(data.get("pipeline", {}))
    bad = sorted(set(head) - {"output", "workers"})
    if bad:
        raise RecipeError(f"{name}: [pipeline] unknown key {', '.join(bad)}; known keys: output, workers")
    if output is not None:
        out_dir = Path(output)
    elif "output" in head:
        out_dir = Path(_resolve(_check_type(head["output"], str, f"{name}: [pipeline].output"), base))
    else:
        raise RecipeError(f"{name}: [pipeline] needs `output = \"FOLDER\"` (where every stage writes), or pass -o")
    workers = _check_type(head.get("workers", 1), int, f"{name}: [pipeline].workers")
    if workers < 1:
        raise RecipeError(f"{name}: [pipeline].workers must be at least 1")

    classes = _stage_classes()
    stages: dict[str, Any] = {}
    for stage in STAGES:
        if stage not in data:
            continue
        where = f"{name}: [{stage}]"
        if stage == "ingest":
            stages[stage] = _ingest_section(data[stage], f"{name}: [[ingest]]", base)
            continue
        if not isinstance(data[stage], dict):
            raise RecipeError(f"{where} must be a table")
        table = dict(data[stage])
        if stage == "mix":
            stages[stage] = _mix_section(table, where, base, parse_tokens)
            continue
        if stage not in classes:
            raise RecipeError(f"{where} needs torch: pip install 'lmforge[train]'")
        if stage == "corpus":
            workers = _check_type(table.pop("workers", workers), int, f"{where}.workers")
        for key in PATH_FIELDS.get(stage, ()):
            if key in table:
                v = table[key]
                table[key] = [_resolve(str(x), base) for x in v] if isinstance(v, list) else _resolve(str(v), base)
        _check_ranges(stage, table, where)
        skip = WIRED.get(stage, set())
        wired = [k for k in table if k in skip]
        if wired:
            raise RecipeError(f"{where}: {', '.join(wired)} {'is' if len(wired) == 1 else 'are'} set by the pipeline "
                              "(the previous stage's output); remove it from the recipe")
        fill = _placeholders(classes[stage], skip)
        if stage == "rl" and table.get("method") == "ppo":
            fill["reward"] = "(wired)"  # the [rm] run
        if stage == "corpus" and "filters" in table:  # typed Any on CorpusConfig: build FilterConfig here
            from lmforge.corpus.filters import FilterConfig

            filters = table.pop("filters")
            if not isinstance(filters, dict):
                raise RecipeError(f"{where}.filters: expected a table ([corpus.filters.<filter>] with its settings)")
            fill["filters"] = _build(FilterConfig, filters, f"{where}.filters")
        stages[stage] = _build(classes[stage], table, where, skip=skip, fill=fill)
    mix = stages.get("mix")
    if "ingest" in stages:
        if mix is None:
            raise RecipeError(f"{name}: [[ingest]] sources are mixed: add a [mix] table (budget = \"20M\")")
        clash = sorted({s.name for s in stages["ingest"].sources} & ({s.name for s in mix.sources} | {"web"}))
        if clash:
            raise RecipeError(f"{name}: [[ingest]] name {', '.join(clash)} is also a [[mix.source]] (or the crawl's \"web\"); choose another")
    if mix is not None and ("corpus" in stages or "ingest" in stages or any(src.documents for src in mix.sources)):
        if "tokenizer" not in stages:
            raise RecipeError(f"{name}: [mix] has documents to shard: add a [tokenizer] table (e.g. vocab_size = 8192)")
        if "shards" not in stages:
            stages["shards"] = classes["shards"]()  # the default shard settings
    _check_order(stages, name)
    execution = _execution_section(data["execution"], f"{name}: [execution]", workers) if "execution" in data else None
    text = json.dumps(data, sort_keys=True, default=str)
    return Recipe(path=path, output=out_dir, sha256="sha256:" + hashlib.sha256(text.encode()).hexdigest(), stages=stages,
                  workers=workers, execution=execution)


def _execution_section(table, where: str, workers: int):
    """`[execution]` as an `ExecutorConfig`: its keys are the config's fields (the command
    line's flags without `--`: executor, tasks, workers, slurm_partition, ray_address, ...);
    `tasks` defaults to the recipe's `workers`, and `workers` (tasks at once) to them too
    on the local executor, to every task on Ray and Slurm."""
    from lmforge.corpus.execution import ExecutorConfig

    if not isinstance(table, dict):
        raise RecipeError(f"{where} must be a table (executor = \"ray\", tasks = 8, ...)")
    table = dict(table)
    table.setdefault("tasks", workers)
    if table.get("executor", "local") == "local":
        table.setdefault("workers", workers)
    if "ray_env" in table:
        table["ray_env"] = _check_type(table["ray_env"], list[str], f"{where}.ray_env")
    config = _build(ExecutorConfig, table, where, skip={"extra"})
    config.ray_env = tuple(config.ray_env)
    return config


def _mix_section(table: dict, where: str, base: Path, parse_tokens) -> MixSection:
    known = {"budget", "val_tokens", "web_weight", "web_epochs", "source"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise RecipeError(f"{where}: unknown key {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
    if "budget" not in table:
        raise RecipeError(f"{where}: needs `budget` (training tokens, e.g. budget = \"20M\")")
    try:
        budget = parse_tokens(table["budget"], "budget")
        vt = table.get("val_tokens", 0)
        val_tokens = 0 if vt in (0, "0") else parse_tokens(vt, "val_tokens")
    except ValueError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    web_weight = _check_type(table["web_weight"], float, f"{where}.web_weight") if "web_weight" in table else None
    web_epochs = _check_type(table["web_epochs"], float, f"{where}.web_epochs") if "web_epochs" in table else None
    if web_weight is not None and web_epochs is not None:
        raise RecipeError(f"{where}: give web_weight or web_epochs, not both")
    from lmforge.tokenize.mix import SourceSpec

    def check_source(spec: SourceSpec, at: str) -> None:  # the checks `mix build --source` makes
        try:
            spec.check(at)
        except ValueError as exc:
            raise RecipeError(str(exc)) from None

    if web_weight is not None or web_epochs is not None:
        check_source(SourceSpec("web", "", weight=web_weight, epochs=web_epochs), f"{where}.web_{'weight' if web_weight is not None else 'epochs'}")
    sources = []
    for i, src in enumerate(table.get("source", [])):
        w = f"{where} [[mix.source]] #{i + 1}"
        s = _build(MixSource, src, w)
        if (s.documents is None) == (s.shards is None):
            raise RecipeError(f"{w}: give `documents` (to shard with this pipeline's tokenizer) or `shards`, not both")
        if (s.weight is None) == (s.epochs is None):
            raise RecipeError(f"{w}: give `weight` or `epochs`")
        if s.name == "web":
            raise RecipeError(f"{w}: the name \"web\" is the crawl's; choose another")
        check_source(SourceSpec(s.name, "", weight=s.weight, epochs=s.epochs), w)
        s.documents = _resolve(s.documents, base) if s.documents else None
        s.shards = _resolve(s.shards, base) if s.shards else None
        sources.append(s)
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise RecipeError(f"{where}: source names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return MixSection(budget=budget, val_tokens=val_tokens, web_weight=web_weight, web_epochs=web_epochs, sources=sources)


def _ingest_section(tables, where: str, base: Path) -> IngestSection:
    """The `[[ingest]]` tables: each checked as its `corpus ingest SOURCE` command checks its
    flags (the source's `Config` built from `options`), inputs resolved against `base`."""
    from lmforge.corpus.ingest import SOURCES, source_module
    from lmforge.tokenize.mix import SourceSpec

    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RecipeError(f"{where}: expected tables ([[ingest]] with name, source, inputs, weight)")
    sources = []
    for i, table in enumerate(tables):
        w = f"{where} #{i + 1}"
        table = dict(table)
        options = table.pop("options", {})
        if not isinstance(options, dict):
            raise RecipeError(f"{w}.options: expected a table ([ingest.options] with the source's settings)")
        src = _build(IngestSource, table, w)
        if src.source not in SOURCES:
            raise RecipeError(f"{w}.source: {src.source!r} is not a source; choose one of {', '.join(SOURCES)}")
        if not src.inputs:
            raise RecipeError(f"{w}.inputs: give the dumps to read (files, folders or globs)")
        if (src.weight is None) == (src.epochs is None):
            raise RecipeError(f"{w}: give `weight` or `epochs`")
        try:
            SourceSpec(src.name, "", weight=src.weight, epochs=src.epochs).check(w)
        except ValueError as exc:
            raise RecipeError(str(exc)) from None
        src.options = _build(source_module(src.source).Config, options, f"{w}.options")
        src.inputs = [_resolve(str(x), base) for x in src.inputs]
        sources.append(src)
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise RecipeError(f"{where}: names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return IngestSection(sources)


def _check_order(stages: dict, name: str) -> None:
    """Each stage needs the one it reads from."""
    needs = {
        "dedup": ["corpus"],
        "tokenizer": ["corpus", "mix", "ingest"],  # trained on the mixture's documents
        "shards": ["tokenizer"],
        "train": ["mix"],
        "sft": ["train"],
        "rm": ["sft", "train"],
        "dpo": ["sft", "train"],
        "rl": ["sft", "train"],
    }
    for stage, options in needs.items():
        if stage in stages and not any(o in stages for o in options):
            raise RecipeError(f"{name}: [{stage}] reads the output of [{options[0]}], which the recipe does not have")
    if "shards" in stages and "mix" not in stages:
        raise RecipeError(f"{name}: [shards] without [mix]: add a [mix] table (budget, sources) so the shards are used")
    if "tokenizer" in stages and "mix" not in stages:
        raise RecipeError(f"{name}: [tokenizer] is trained on the mixture's documents: add a [mix] table")
    if "mix" in stages and "corpus" not in stages and "ingest" not in stages and not stages["mix"].sources:
        raise RecipeError(f"{name}: [mix] has no sources: add [corpus], [[ingest]] or [[mix.source]] tables")
    rl = stages.get("rl")
    if rl is not None and rl.method == "ppo" and "rm" not in stages:
        raise RecipeError(f"{name}: [rl] method = \"ppo\" scores with the reward model: add an [rm] table")


def missing_inputs(recipe: Recipe) -> list[tuple[str, str]]:
    """The recipe's local input files (or globs) that do not exist, as (stage, "[table] key:
    path"); URLs are not checked. The runner refuses to start while this is not empty, so a typo in
    [sft].data does not surface only after pretraining."""
    import glob

    missing = []

    def check(stage: str, where: str, value: str | None) -> None:
        if not value or "://" in value:
            return
        if glob.has_magic(value):
            if not glob.glob(value):
                missing.append((stage, f"{where}: {value} (matches nothing)"))
        elif not os.path.exists(value):
            missing.append((stage, f"{where}: {value}"))

    for stage, keys in PATH_FIELDS.items():
        cfg = recipe.stages.get(stage)
        for key in keys if cfg is not None else ():
            value = getattr(cfg, key, None)
            for v in value if isinstance(value, list) else [value]:
                check(stage, f"[{stage}] {key}", v)
    mix = recipe.stages.get("mix")
    for src in mix.sources if mix is not None else []:
        check("mix" if src.shards else "tokenizer", f"[[mix.source]] {src.name}", src.documents or src.shards)
    ingest = recipe.stages.get("ingest")
    for src in ingest.sources if ingest is not None else []:
        for path in src.inputs:
            check("ingest", f"[[ingest]] {src.name} inputs", path)
    return missing


def load_recipe(path: str | os.PathLike, output: str | os.PathLike | None = None) -> Recipe:
    """Read and validate a recipe file; `output` overrides its [pipeline].output."""
    from lmforge.documents import read_toml

    path = Path(path)
    data = read_toml(path, RecipeError)
    return parse_recipe(data, path=path, output=output)
