"""`lmforge shards build|inspect|verify` and `lmforge mix build|inspect`.

Each command parses its flags, calls the library (`build.py`, `shards.py`, `mix.py`) and
prints a summary; errors the library names become one line on stderr and exit status 1
(2 for bad flags), never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lmforge.cli import LocalPath
from lmforge.corpus.cli import slurm_options, slurm_settings
from lmforge.corpus.execution import EXECUTORS
from lmforge.locks import locks_output

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _fail(message: str, code: int = 1):
    click.echo(f"Error: {message}", err=True)  # as the root handler writes it
    sys.exit(code)


def _human(n: float, unit: str = "") -> str:
    for suffix in ("", "K", "M", "B", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{suffix}{unit}" if suffix else f"{n:.0f}{unit}" if float(n).is_integer() else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}P{unit}"


def _bytes(n: int) -> str:
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or suffix == "TiB":
            return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
        n /= 1024
    return str(n)


# ---- shards ----------------------------------------------------------------------------------


@click.group(context_settings=CONTEXT)
def shards():
    """Token shards: build them from documents, inspect one, verify checksums.

    \b
      lmforge shards build corpus/ --tokenizer tok/ -o shards/c4 --workers 8
      lmforge shards inspect shards/c4/shards/00000-part-0000.tokens.zst --doc 0
      lmforge shards verify shards/c4
      lmforge shards status shards/c4      # a --tasks build: tasks done, failed, queued on Slurm
    """


@shards.command("build", context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, type=LocalPath(urls=True))
@click.option("--tokenizer", "tokenizer_dir", required=True, type=LocalPath(), help="Tokenizer folder (from `lmforge tokenizer train`).")
@click.option("-o", "--output", "out_dir", required=True, type=LocalPath(file_okay=False, urls="write"),
              help="Output folder: OUT/shards/*.tokens.zst and OUT/source.json; or an object-store URL (s3://bucket/shards/web: "
                   "built in a local staging folder, then uploaded, source.json last).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Processes tokenising input files in parallel on this machine [1]; with --tasks or --executor slurm|ray: "
                   "tasks run at once [local: 1; slurm, ray: every task].")
@click.option("--tasks", default=None, type=click.IntRange(min=1),
              help="Run as this many datatrove tasks on --executor (input file i goes to task i mod N), then merge them into one "
                   "source.json [without it: one process pool here, as before; 1 with --executor slurm|ray].")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="datatrove executor of the tasks (with --tasks; slurm and ray imply it).")
@slurm_options
@click.option("--shard-tokens", default="100M", show_default=True, help="Most tokens per shard (a longer single document gets its own shard).")
@click.option("--frame-tokens", default=65536, show_default=True, type=click.IntRange(min=1), help="Tokens per zstd frame (the unit of random access).")
@click.option("--level", default=9, show_default=True, type=click.IntRange(1, 22), help="zstd level (1..22).")
@click.option("--text-key", default="text", show_default=True, help="JSON field or Parquet/Arrow column holding the text.")
@click.option("--strict", is_flag=True, help="A malformed JSONL line is an error naming file and line (default: counted and skipped).")
@click.option("--overwrite", "--force", "force", is_flag=True,
              help="Rebuild OUT from scratch even if it holds a build with other settings (otherwise refused by name).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@locks_output("out_dir", clean=lambda kw: kw["executor"] != "slurm")
def shards_build(inputs, tokenizer_dir, out_dir, workers, tasks, executor, shard_tokens, frame_tokens, level, text_key, strict, force,
                 no_progress, **slurm):
    """Tokenise documents (.jsonl.zst, .jsonl, .txt, Parquet; folders and globs) into shards.

    Every document starts with BOS. Resumable: a rerun skips finished shards and gives the
    same bytes. With --tasks N (or --executor slurm|ray) the input files are split over N
    datatrove tasks on the executor, each writing the shards of its files, then merged into
    one OUT/source.json: the same shards and source.json as a build here. A Slurm submission
    returns at once; `lmforge shards status OUT` follows it.

    \b
    Example:
      lmforge shards build dedup/ --tokenizer tok/ -o shards/web --workers 8
      lmforge shards build s3://bucket/dedup --tokenizer tok/ -o s3://bucket/shards/web
      lmforge shards build /shared/dedup --tokenizer /shared/tok -o /shared/shards/web --executor slurm --slurm-partition cpu --tasks 64
      lmforge shards build dedup/ --tokenizer tok/ -o shards/web --executor ray --tasks 16
    """
    from lmforge.documents import DocumentFileError
    from lmforge.progress import ProgressBar
    from lmforge.tokenize.build import BuildConfig, BuildError, build_shards
    from lmforge.tokenize.mix import parse_tokens
    from lmforge.tokenize.tokenizer import TokenizerError

    try:
        cfg = BuildConfig(
            shard_tokens=parse_tokens(shard_tokens, "--shard-tokens"), frame_tokens=frame_tokens, level=level, text_key=text_key,
            workers=workers or 1, strict=strict
        )
        cluster = None
        if tasks is not None or executor != "local":
            from lmforge.corpus.execution import ExecutorConfig

            cluster = ExecutorConfig(executor=executor, tasks=tasks or 1, workers=workers, **slurm_settings(slurm))
    except ValueError as exc:
        _fail(str(exc), 2)
    if cluster is not None:
        return _build_on(cluster, inputs, tokenizer_dir, out_dir, cfg, force, no_progress)
    counts = {"tokens": 0}
    with ProgressBar("[bold]shards build", info="files 0 tokens", elapsed=True, disable=no_progress) as bar:

        def progress(kind, value):
            if kind == "files":
                bar.update(total=value)
            elif kind == "file":
                bar.advance(value)
            elif kind == "tokens":
                counts["tokens"] += value
                bar.update(info=f"files {_human(counts['tokens'])} tokens")

        try:
            with staged_shards(out_dir) as local:
                result = build_shards(inputs, tokenizer_dir, local, cfg, force=force, progress=progress)
        except (FileNotFoundError, TokenizerError, BuildError, DocumentFileError) as exc:
            bar.stop()
            _fail(str(exc).strip("'\""))
    _print_build(result, shown=out_dir)


def _build_on(cluster, inputs, tokenizer_dir, out_dir, cfg, force, no_progress: bool = False) -> None:
    """`shards build --tasks N` on `cluster` (an ExecutorConfig): wait and print the summary,
    or for Slurm print the submitted job ids and how to follow them. While local or Ray tasks
    run, the bar counts the input files done from their part records (the tasks' processes
    draw nothing here)."""
    from lmforge.documents import DocumentFileError
    from lmforge.progress import ProgressBar
    from lmforge.tokenize.build import BuildError, build_progress, build_shards
    from lmforge.tokenize.tokenizer import TokenizerError

    if cluster.executor == "slurm" and "://" in out_dir:
        _fail(f"-o {out_dir}: a Slurm submission returns before anything is written, so nothing would upload it; write to the "
              "shared filesystem and copy (aws s3 sync), or use --executor local/ray", 2)
    tasks = f"files · {cluster.tasks} {cluster.executor} task{'s' if cluster.tasks > 1 else ''}"
    with ProgressBar("[bold]shards build", info=tasks, elapsed=True, lazy=True,
                     disable=no_progress or cluster.executor == "slurm") as bar:
        try:
            with staged_shards(out_dir) as local:
                with bar.polling(lambda: build_progress(local)):
                    result = build_shards(inputs, tokenizer_dir, local, cfg, force=force, executor=cluster)
        except (FileNotFoundError, TokenizerError, BuildError, DocumentFileError, RuntimeError) as exc:
            bar.stop()
            _fail(str(exc).strip("'\""))
    if result.submitted:
        sub = result.submitted
        click.echo(f"submitted to Slurm: {sub['tasks']} tasks as job {sub['tasks_job']}, the merge into source.json as job "
                   f"{sub['merge_job']} (-1: nothing left to run); logs in {sub['logging_dir']}\n"
                   f"follow it with: lmforge shards status {out_dir}")
        return
    _print_build(result, shown=out_dir, tasks=cluster)


def staged_shards(out_dir: str):
    """`out_dir` itself, or for a URL its local staging folder, uploaded when the build
    succeeds (`lmforge.remote.staged_output`: `source.json`, the completion marker, last)."""
    import contextlib

    if "://" not in out_dir:
        return contextlib.nullcontext(out_dir)
    from lmforge.remote import staged_output
    from lmforge.tokenize.build import SOURCE_FILE

    return staged_output(out_dir, marker=SOURCE_FILE, synced=("shards",))


def _print_build(result, shown: str | None = None, tasks=None) -> None:
    from rich.console import Console
    from rich.table import Table

    src = result.source
    shown = shown or str(result.out_dir)
    table = Table(title=f"shards build → {shown}")
    for col in ("input", "documents", "tokens", "shards", "skipped lines"):
        table.add_column(col, justify="left" if col == "input" else "right")
    for p in src["inputs"]:
        table.add_row(Path(p["path"]).name, f"{p['documents']:,}", f"{p['tokens']:,}", str(p["shards"]), f"{sum(p['errors'].values()):,}")
    table.add_section()
    table.add_row("total", f"{src['documents']:,}", f"{src['tokens']:,}", str(len(src["shards"])), f"{sum(src['errors'].values()):,}")
    console = Console()
    console.print(table)
    tps = (src["tokens"] / result.seconds) if result.seconds and result.files_skipped < result.files_total else 0
    console.print(
        f"{_bytes(src['bytes'])} on disk = {src['compression']:.3f} of raw {src['dtype']} ({_bytes(src['raw_bytes'])}); "
        f"{src['text_bytes'] / max(src['tokens'], 1):.2f} text bytes/token; "
        + (f"{result.files_skipped} of {result.files_total} files done by an earlier run ({result.shards_kept} shards kept), "
           if result.files_skipped else f"{result.files_total} file{'s' if result.files_total != 1 else ''}, ")
        + f"{result.shards_written} shard{'s' if result.shards_written != 1 else ''} written; {result.seconds:.1f}s" + (f" ({_human(tps)} tokens/s)" if tps else "")
        + (f"; {result.tasks} {tasks.executor} task{'s' if result.tasks > 1 else ''}" if tasks is not None else "")
    )
    if src["errors"]:
        console.print("skipped: " + ", ".join(f"{k} {v:,}" for k, v in sorted(src["errors"].items())))
    console.print(f"summary: {shown.rstrip('/')}/source.json")


@shards.command("status", context_settings=CONTEXT)
@click.argument("out", type=LocalPath(exists=True, file_okay=False))
def shards_status(out):
    """Where the `shards build --tasks N` run in OUT stands: its tasks (done, running, queued,
    failed with the last line of their logs) and, under Slurm, the merge job; exits 0 once
    OUT/source.json is written, 1 before. The same report as `lmforge corpus status OUT`.

    \b
    Example:
      lmforge shards build /shared/dedup --tokenizer /shared/tok -o /shared/shards/web --executor slurm --slurm-partition cpu --tasks 64
      lmforge shards status /shared/shards/web
    """
    from lmforge.corpus.status import staged_status
    from lmforge.corpus.status_cli import print_staged
    from lmforge.tokenize.build import SOURCE_FILE

    s = staged_status(out)
    if s is None or s.kind != "shards":
        if (Path(out) / SOURCE_FILE).is_file():
            click.echo(f"shards build in {out}: done (built without --tasks): {Path(out) / SOURCE_FILE}")
            return
        _fail(f"{out}: no shards build here (no source.json, no .lmforge/shards); give the -o folder of `lmforge shards build`")
    print_staged(s)


@shards.command("inspect", context_settings=CONTEXT)
@click.argument("file", type=LocalPath())
@click.option("--doc", "doc", type=int, default=None, help="Decode document N (needs the tokenizer; ids are shown without it).")
@click.option("--tokenizer", "tokenizer_dir", type=LocalPath(), default=None, help="Tokenizer folder for --doc (default: the one recorded in OUT/source.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the index as JSON.")
def shards_inspect(file, doc, tokenizer_dir, as_json):
    """Header, frames, documents and compression of one shard; --doc N decodes a document.

    \b
    Example:
      lmforge shards inspect shards/c4/shards/00000-c4-0000.tokens.zst --doc 3
    """
    import numpy as np
    import orjson
    from rich.console import Console
    from rich.table import Table

    from lmforge.tokenize.shards import ShardError, ShardReader

    try:
        r = ShardReader(file)
    except ShardError as exc:
        _fail(str(exc))
    with r:
        sizes = np.diff(np.asarray(r.frame_offsets, dtype=np.int64))
        starts = r.doc_starts
        lengths = np.diff(np.append(starts, len(r))) if len(starts) else np.zeros(0)
        info = {
            **{k: v for k, v in r.meta.items() if k != "arrays"},
            "file_bytes": Path(file).stat().st_size,
            "raw_bytes": len(r) * r.dtype.itemsize,
            "compression": round(Path(file).stat().st_size / max(1, len(r) * r.dtype.itemsize), 4),
            "frame_bytes": _stats(sizes),
            "document_tokens": _stats(lengths),
        }
        if as_json and doc is None:
            click.echo(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())
            return
        console = Console()
        if doc is None:
            table = Table(title=str(file), show_header=False)
            table.add_column("field")
            table.add_column("value")
            for key in ("format", "version", "dtype", "tokens", "documents", "frames", "frame_tokens", "zstd_level", "fingerprint", "vocab_size", "input", "doc_range"):
                if key in info:
                    table.add_row(key, str(info[key]))
            table.add_row("size", f"{_bytes(info['file_bytes'])} = {info['compression']:.3f} of raw {_bytes(info['raw_bytes'])}")
            fb = info["frame_bytes"]
            table.add_row("frame bytes", f"min {fb['min']:,}  mean {fb['mean']:,.0f}  max {fb['max']:,}")
            dt = info["document_tokens"]
            table.add_row("document tokens", f"min {dt['min']:,}  mean {dt['mean']:,.0f}  max {dt['max']:,}")
            console.print(table)
            return
        try:
            ids = r.document(doc)
        except IndexError as exc:
            _fail(f"{file}: {exc}")
        except ShardError as exc:  # the document's frame is corrupted
            _fail(f"{exc}; `lmforge shards verify {file}` lists every bad frame")
        tok = _tokenizer_for(Path(file), tokenizer_dir, r.fingerprint)
        if as_json:
            out = {"document": doc, "start": int(starts[doc if doc >= 0 else doc + len(starts)]), "tokens": len(ids), "ids": ids.tolist()}
            if tok is not None:
                out["text"] = tok.decode(ids.tolist(), skip_special_tokens=True)
            click.echo(orjson.dumps(out).decode())
            return
        console.print(f"[bold]document {doc}[/] of {r.documents}: {len(ids):,} tokens")
        if tok is None:
            console.print("(no tokenizer found: pass --tokenizer DIR to decode) ids: " + " ".join(map(str, ids[:2000].tolist())))
        else:
            click.echo(tok.decode(ids.tolist()))


def _stats(a) -> dict:
    if not len(a):
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": int(a.min()), "mean": float(a.mean()), "max": int(a.max())}


def _tokenizer_for(shard: Path, tokenizer_dir, fingerprint: str):
    import orjson

    from lmforge.tokenize.tokenizer import Tokenizer, TokenizerError

    candidates = [tokenizer_dir] if tokenizer_dir else []
    for parent in list(shard.resolve().parents)[:3]:
        src = parent / "source.json"
        if src.is_file():
            try:
                candidates.append(orjson.loads(src.read_bytes())["tokenizer"]["dir"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass
    for c in candidates:
        try:
            tok = Tokenizer.load(c)
        except TokenizerError as exc:
            if tokenizer_dir:
                _fail(str(exc))
            continue
        if tok.fingerprint != fingerprint:
            if tokenizer_dir:
                _fail(f"{c}: tokenizer fingerprint {tok.fingerprint} is not the shard's {fingerprint}; pass the tokenizer the shard was built with")
            continue
        return tok
    return None


@shards.command("verify", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, type=LocalPath())
@click.option("--quick", is_flag=True, help="Check frame CRCs only, without decompressing.")
def shards_verify(paths, quick):
    """Check every frame of every shard (CRC-32, zstd checksum, BOS at document starts) and,
    for a build folder, the sha256 of each shard listed in its source.json. Exits 1 naming
    the file and frame of the first problems found.

    \b
    Example:
      lmforge shards verify shards/c4 shards/wiki
    """
    import orjson

    from lmforge.tokenize.shards import ShardError, ShardReader, find_shards, sha256_file

    bad = 0
    checked = 0
    for item in paths:
        p = Path(item)
        try:
            files = find_shards(p)
        except FileNotFoundError as exc:
            click.echo(f"error: {exc}", err=True)
            bad += 1
            continue
        if not files:
            click.echo(f"error: {p}: no shard files (*.tokens.zst) inside; point at a `lmforge shards build` output folder", err=True)
            bad += 1
            continue
        listed = {}
        if p.is_dir() and (p / "source.json").is_file():
            try:
                for s in orjson.loads((p / "source.json").read_bytes())["shards"]:
                    listed[(p / s["path"]).resolve()] = s
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                click.echo(f"error: {p / 'source.json'}: unreadable ({exc})", err=True)
                bad += 1
            for f, s in listed.items():
                if not f.is_file():
                    click.echo(f"error: {f}: listed in {p / 'source.json'} but missing; rerun `lmforge shards build`", err=True)
                    bad += 1
        for f in files:
            checked += 1
            try:
                with ShardReader(f) as r:
                    problems = r.verify(decompress=not quick)
            except ShardError as exc:
                click.echo(f"error: {exc}", err=True)
                bad += 1
                continue
            for pr in problems:
                click.echo(f"error: {f}: {pr.message}", err=True)
            if problems:
                bad += 1
                continue
            entry = listed.get(f.resolve())
            if entry is not None and not quick and sha256_file(f) != entry["sha256"]:
                click.echo(f"error: {f}: sha256 differs from {p / 'source.json'}", err=True)
                bad += 1
                continue
    if bad:
        click.echo(f"{bad} problem(s) in {checked} shard(s); rebuild the named shards (rerun `lmforge shards build` after deleting them)", err=True)
        sys.exit(1)
    click.echo(f"ok: {checked} shard(s) verified")


# ---- mix -------------------------------------------------------------------------------------


@click.group(context_settings=CONTEXT)
def mix():
    """Mixture manifests: which shards a run trains on, with weights, epochs and a budget.

    \b
      lmforge mix build --source web=shards/web:0.8 --source wiki=shards/wiki@2 --budget 10B -o mix.json
      lmforge mix inspect mix.json
    """


@mix.command("build", context_settings=CONTEXT)
@click.option("--source", "sources", multiple=True, help="NAME=PATH:WEIGHT or NAME=PATH@EPOCHS; PATH is a `shards build` folder. Repeat per source.")
@click.option("--budget", default=None, help="Training tokens (1000000, 10M, 300B, 1.4T).")
@click.option("--val-tokens", default=None, help="Validation tokens per source, from the end of its last shard, in whole documents (0: none).")
@click.option("--from-toml", "recipe", type=LocalPath(), default=None, help="A recipe TOML (see lmforge/tokenize/recipes/llama.toml); --source/--budget add to or override it.")
@click.option("-o", "--output", "out", required=True, type=LocalPath(dir_okay=False, urls="write"),
              help="The manifest to write (mix.json), or its URL (s3://bucket/mix.json: every source must then be a URL in the same bucket).")
@click.option("--overwrite", is_flag=True, help="Replace OUT even if it is a manifest built with other sources, weights or budget.")
@locks_output("out", file=True)
def mix_build(sources, budget, val_tokens, recipe, out, overwrite):
    """Write a mixture manifest: shards (relative paths), tokens, checksums, weights, epochs.

    The same command again leaves OUT as it is; a manifest with other sources, weights, budget
    or shards is refused by name unless --overwrite (a run trained on it could no longer resume).

    \b
    Example (LLaMA-style):
      lmforge mix build --source cc=shards/cc:0.67 --source c4=shards/c4:0.15 \\
          --source wiki=shards/wiki:0.045 --budget 1.4T --val-tokens 1M -o mix.json
      lmforge mix build --from-toml lmforge/tokenize/recipes/llama.toml -o mix.json
      lmforge mix build --source web=s3://bucket/shards/web:1.0 --budget 10B -o s3://bucket/mix.json
    """
    from lmforge.tokenize.mix import MixError, MixRecipe, SourceSpec, build_manifest, load_recipe, parse_tokens

    try:
        base = load_recipe(recipe) if recipe else None
        specs = {s.name: s for s in (base.sources if base else [])}
        given: set[str] = set()
        for text in sources:
            spec = SourceSpec.parse(text)
            if spec.name in given:  # a recipe's source may be overridden, a --source not twice
                raise ValueError(f"--source {text!r}: source {spec.name!r} is given twice; give each source one --source with its own name")
            given.add(spec.name)
            specs[spec.name] = spec
        if budget is None and base is None:
            raise ValueError("--budget is required (training tokens, e.g. --budget 10B)")
        if val_tokens is not None:
            vt = 0 if val_tokens.strip() == "0" else parse_tokens(val_tokens, "--val-tokens")
        else:
            vt = base.val_tokens if base else 0
        mr = MixRecipe(list(specs.values()), parse_tokens(budget, "--budget") if budget is not None else base.budget, vt)
    except (ValueError, MixError) as exc:
        _fail(str(exc), 2)
    notes: list[str] = []
    try:
        if "://" in out:  # built in the store's local mirror, then uploaded (lmforge.remote.staged_output)
            from lmforge.remote import staged_output
            from lmforge.tokenize.mix import stage_sources

            with staged_output(out, file=True) as local:
                manifest = build_manifest(stage_sources(mr, out), local, notes=notes, overwrite=overwrite)
        else:
            manifest = build_manifest(mr, out, notes=notes, overwrite=overwrite)
    except MixError as exc:
        _fail(str(exc))
    for n in notes:
        click.echo(f"note: {n}", err=True)
    _print_mix(manifest)
    click.echo(f"{out}: already built with these settings; nothing to do" if manifest.unchanged else f"wrote {out}")


@mix.command("inspect", context_settings=CONTEXT)
@click.argument("manifest", type=LocalPath())
@click.option("--json", "as_json", is_flag=True, help='Print {"budget", "sources": [{"name", "weight", "tokens", "epochs", "bytes", ...}]}.')
@click.option("--quick", is_flag=True, help="Skip hashing every shard against its sha256 (sizes, indexes and the manifest's own checksum are still checked).")
def mix_inspect(manifest, as_json, quick):
    """The mixture table: source, sampling proportion, epochs, tokens, size on disk, totals.

    The manifest is checked against its own checksum and every shard against its sha256
    (`--quick` skips the hashing, which reads every byte of the shards).

    \b
    Example:
      lmforge mix inspect mix.json
      lmforge mix inspect mix.json --json | jq .sources
    """
    import orjson

    from lmforge.tokenize.mix import MixError, load_manifest, manifest_table, verify_shards

    try:
        m = load_manifest(manifest)
        if not quick:
            _verify_with_bar(m, verify_shards)
    except MixError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(orjson.dumps(manifest_table(m)).decode())
        return
    _print_mix(m)


def _verify_with_bar(m, verify_shards) -> None:
    from lmforge.progress import ProgressBar

    total = sum(e.bytes for s in m.sources for e in s.shards)
    with ProgressBar("[bold]sha256 of the shards", total, bytes=True) as bar:
        verify_shards(m, on_shard=bar.advance)


def _print_mix(m) -> None:
    from rich.console import Console
    from rich.table import Table

    from lmforge.tokenize.mix import manifest_table

    t = manifest_table(m)
    table = Table(title=f"{m.path} — budget {_human(m.budget)} tokens")
    for col in ("source", "sampling prop.", "epochs", "tokens", "disk size", "documents", "val tokens"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for r in t["sources"]:
        table.add_row(r["name"], f"{100 * r['weight']:.1f}%", f"{r['epochs']:.2f}", _human(r["tokens"]), _bytes(r["bytes"]), f"{r['documents']:,}", _human(r["val_tokens"]))
    table.add_section()
    table.add_row("total", "100.0%", f"{m.budget / max(t['tokens'], 1):.2f}", _human(t["tokens"]), _bytes(t["bytes"]), f"{t['documents']:,}", _human(sum(r["val_tokens"] for r in t["sources"])))
    Console().print(table)
