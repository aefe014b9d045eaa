"""`lmforge tokenizer ...`: train a tokenizer, look at what it does, measure its compression.

Each command parses flags, calls the library (`train`, `show`, `stats`) and prints a rich
summary. Errors a user can fix become `click.ClickException`/`click.BadParameter` naming the
file or flag; no traceback.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from lmforge.cli import LocalPath, os_error_message
from lmforge.locks import locks_output

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


class ByteSize(click.ParamType):
    """A byte count: 5000000, 500K, 200MB, 2G (powers of 1000)."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = _SIZE.match(str(value))
        if not m:
            self.fail(f"{value!r} is not a size (examples: 5000000, 500K, 200MB, 2G)", param, ctx)
        return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _console():
    from rich.console import Console

    return Console(stderr=False)


def _load(directory: str):
    from lmforge.tokenize.tokenizer import Tokenizer, TokenizerError

    try:
        return Tokenizer.load(directory)
    except TokenizerError as exc:
        raise click.BadParameter(str(exc), param_hint="--tokenizer") from None


def _files(inputs):
    from lmforge.documents import find_document_files

    try:
        return find_document_files(inputs)
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc).strip("'\""), param_hint="INPUT") from None


@click.group()
def tokenizer() -> None:
    """Byte-level BPE tokenizers: train on documents, show tokens, measure compression.

    \b
    lmforge tokenizer train corpus/ -o tok/ --vocab-size 32768 --sample-bytes 200MB
    lmforge tokenizer show --tokenizer tok/ "El Coronel No Tiene Quien le Escriba"
    lmforge tokenizer stats --tokenizer tok/ corpus/
    """


@tokenizer.command()
@click.argument("inputs", nargs=-1, required=True, type=LocalPath(urls=True))
@click.option("-o", "--output", "output_dir", required=True, type=LocalPath(file_okay=False), help="Folder for tokenizer.json, lmforge-tokenizer.json and tokenizer_config.json.")
@click.option("--vocab-size", type=click.IntRange(min=1), default=32768, show_default=True, help="Tokens in the vocabulary, 16 reserved specials and 256 bytes included.")
@click.option("--sample-bytes", type=ByteSize(), default="200MB", show_default=True, help="UTF-8 text to train on (bounds memory): a seeded sample of the inputs.")
@click.option("--max-doc-chars", type=click.IntRange(min=1), default=10_000, show_default=True, help="Each document is cut to this many characters before sampling.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Sample seed; the same seed and inputs give the same tokenizer.")
@click.option("--digits", type=click.IntRange(min=1), default=3, show_default=True, help="Longest run of digits in one pre-token (GPT-4: 3).")
@click.option("--min-frequency", type=click.IntRange(min=0), default=2, show_default=True, help="A pair seen fewer times is never merged.")
@click.option("--text-key", default="text", show_default=True, help="JSON field or Parquet/Arrow column with the text.")
@click.option("--overwrite", "--force", "overwrite", is_flag=True,
              help="Train again even if OUT holds a tokenizer (one made with other settings or inputs is otherwise refused).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@locks_output("output_dir")
def train(inputs, output_dir, vocab_size, sample_bytes, max_doc_chars, seed, digits, min_frequency, text_key, overwrite, no_progress) -> None:
    """Train a byte-level BPE tokenizer on a seeded sample of documents.

    OUT records the settings and inputs it was trained with: the same command again does
    nothing; other settings or inputs are refused by name unless --overwrite.

    INPUT: document files or folders (*.jsonl.zst, *.jsonl, *.jsonl.gz, *.txt, *.parquet, *.arrow,
    `datasets.save_to_disk` folders)
    or globs ("data/**/*.jsonl.zst").

    \b
    Example:
      lmforge tokenizer train corpus/ -o tok/ --vocab-size 32768 --sample-bytes 200MB
    """
    from lmforge.documents import DocumentFileError
    from lmforge.progress import ProgressBar
    from lmforge.tokenize.tokenizer import TokenizerError
    from lmforge.tokenize.train import TrainConfig, train_tokenizer

    try:
        cfg = TrainConfig(vocab_size=vocab_size, sample_bytes=sample_bytes, max_doc_chars=max_doc_chars, seed=seed,
                          digits=digits, min_frequency=min_frequency, text_key=text_key)
    except ValueError as exc:
        flag = str(exc).split(" ", 1)[0]
        raise click.BadParameter(str(exc).split(": ", 1)[-1], param_hint=flag) from None
    files = _files(inputs)
    progress = ProgressBar("sampling documents", spinner=True, elapsed=True, lazy=True, disable=no_progress, stderr=False)
    console = progress.console
    state = {"bytes": 0, "shown": 0}

    def on_event(event, info):
        if event == "files":
            progress.update(total=len(info["files"]))
        elif event == "document":
            state["bytes"] += info["bytes"]
            if state["bytes"] - state["shown"] > 1_000_000:
                state["shown"] = state["bytes"]
                progress.update(description=f"sampling documents ({state['bytes'] / 1e6:,.0f} MB read)")
        elif event == "file":
            progress.advance()
        elif event == "training":
            progress.next_phase(f"training BPE on {info['documents']:,} documents, {info['bytes'] / 1e6:.1f} MB")

    try:
        with progress:
            result = train_tokenizer(files, output_dir, cfg, overwrite=overwrite, progress=on_event)
    except (DocumentFileError, TokenizerError) as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        if exc.filename is None:
            exc.filename = output_dir
        raise click.ClickException(os_error_message(exc)) from None
    _train_summary(console, result, cfg)


def _train_summary(console, result, cfg) -> None:
    from rich.table import Table

    meta = result.meta
    info = meta["training"]
    if result.skipped:
        console.print(f"{result.directory}: already trained with these settings and inputs; nothing to do", soft_wrap=True)
    table = Table(title=f"tokenizer {'already trained (skipped)' if result.skipped else 'trained'}: {result.directory}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("vocab size", f"{meta['vocab_size']:,}" + ("" if meta["vocab_size"] == cfg.vocab_size else f" (asked {cfg.vocab_size:,}: the sample has no more pairs)")),
        ("special ids", "0 bos, 1 pad, 2/3 user, 4/5 assistant, 6/7 system, 8-15 reserved"),
        ("documents read", f"{info['documents_read']:,} ({info['bytes_read'] / 1e6:,.1f} MB)"),
        ("sample", f"{info['sample_documents']:,} documents, {info['sample_bytes'] / 1e6:,.1f} MB"),
        ("duplicates skipped", f"{info['duplicates_skipped']:,}"),
        ("documents cut", f"{info['documents_truncated']:,} (> {cfg.max_doc_chars:,} chars)"),
        ("bad lines skipped", f"{sum(info['errors'].values()):,}"),
        ("sampling / training", f"{info['sample_seconds']:.1f} s / {info['train_seconds']:.1f} s"),
        ("fingerprint", meta["fingerprint"][:23] + "…"),
        ("tokenizer", str(result.directory / "tokenizer.json")),
        ("metadata", str(result.directory / "lmforge-tokenizer.json")),
        ("transformers", f"{result.directory / 'tokenizer_config.json'} (AutoTokenizer: BOS on encode, chat template)"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)


@tokenizer.command()
@click.argument("text", required=False)
@click.option("-t", "--tokenizer", "tokenizer_dir", required=True, type=LocalPath(), help="Tokenizer folder (from `lmforge tokenizer train`).")
@click.option("--html", "html_file", type=LocalPath(dir_okay=False, writable=True), help="Also write the view as an HTML page here.")
@click.option("--specials", is_flag=True, help="Treat <|bos|>-style literals in TEXT as special tokens (trusted text only).")
@click.option("--no-ids", is_flag=True, help="Do not print the ids under the text.")
def show(text, tokenizer_dir, html_file, specials, no_ids) -> None:
    """Show TEXT (or stdin) token by token, each token in its own colour, ids below.

    \b
    Example:
      lmforge tokenizer show --tokenizer tok/ "El Coronel No Tiene Quien le Escriba"
      cat page.txt | lmforge tokenizer show --tokenizer tok/ --html tokens.html
    """
    from rich.table import Table

    from lmforge.tokenize.show import render_html, render_rich, spans, text_stats

    tok = _load(tokenizer_dir)
    if text is None or text == "-":
        if sys.stdin.isatty():
            raise click.UsageError("give TEXT as an argument or pipe it on stdin")
        text = sys.stdin.read()
    if not text:
        raise click.BadParameter("the text is empty", param_hint="TEXT")
    ids = tok.encode_with_specials(text) if specials else tok.encode(text)
    span_list = spans(tok, ids)
    stats = text_stats(text, ids)
    console = _console()
    console.print(render_rich(span_list, show_ids=not no_ids))
    if html_file:
        try:
            Path(html_file).write_text(render_html(span_list, stats), encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"{html_file}: cannot write ({exc.strerror or exc})", param_hint="--html") from None
    table = Table(show_header=False, title=f"{tokenizer_dir} (vocab {tok.vocab_size:,})")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("tokens", f"{stats.tokens:,}")
    table.add_row("characters", f"{stats.chars:,}")
    table.add_row("bytes (UTF-8)", f"{stats.bytes:,}")
    table.add_row("bytes per token", f"{stats.bytes_per_token:.2f}")
    table.add_row("words per token", f"{stats.words_per_token:.2f}")
    if html_file:
        table.add_row("html", str(html_file))
    console.print(table)


@tokenizer.command()
@click.argument("inputs", nargs=-1, required=True, type=LocalPath(urls=True))
@click.option("-t", "--tokenizer", "tokenizer_dir", required=True, type=LocalPath(), help="Tokenizer folder (from `lmforge tokenizer train`).")
@click.option("--max-documents", type=click.IntRange(min=1), default=None, help="Stop after this many documents.")
@click.option("--text-key", default="text", show_default=True, help="JSON field or Parquet/Arrow column with the text.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON object instead of a table.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def stats(inputs, tokenizer_dir, max_documents, text_key, as_json, no_progress) -> None:
    """Bytes and words per token on documents, per language (metadata.language).

    \b
    Example:
      lmforge tokenizer stats --tokenizer tok/ corpus/ --max-documents 10000
    """
    import orjson
    from rich.table import Table

    from lmforge.documents import DocumentFileError
    from lmforge.progress import ProgressBar
    from lmforge.tokenize.stats import compression_stats

    tok = _load(tokenizer_dir)
    files = _files(inputs)
    progress = ProgressBar("encoding", len(files), info="files · 0 docs", elapsed=True, disable=no_progress or as_json, stderr=False)
    console = progress.console
    try:
        with progress:
            done = {"docs": 0}

            def on_batch(n, _bytes):
                done["docs"] += n
                progress.update(info=f"files · {done['docs']:,} docs")

            def each_file():
                for f in files:
                    yield f
                    progress.advance()

            result = compression_stats(tok, each_file(), text_key=text_key, max_documents=max_documents, on_batch=on_batch)
    except DocumentFileError as exc:
        raise click.ClickException(str(exc)) from None
    total = result.total
    if total.documents == 0:
        bad = sum(result.errors.values())
        hint = (f"; {bad:,} lines were not JSON objects with a {text_key!r} string (pick the field with --text-key)" if bad else "")
        raise click.ClickException(f"no text in {', '.join(str(f) for f in files[:3])}: nothing to measure{hint}")
    rows = sorted(result.by_language.items(), key=lambda kv: -kv[1].bytes)
    if as_json:
        out = {lang: {"documents": s.documents, "bytes": s.bytes, "words": s.words, "tokens": s.tokens,
                      "bytes_per_token": round(s.bytes_per_token, 4), "words_per_token": round(s.words_per_token, 4)}
               for lang, s in rows + [("all", total)]}
        click.echo(orjson.dumps({"tokenizer": tok.fingerprint, "languages": out, "errors": result.errors}).decode())
        return
    table = Table(title=f"compression of {tokenizer_dir} (vocab {tok.vocab_size:,})")
    for col in ("language", "documents", "MB", "tokens", "bytes/token", "words/token"):
        table.add_column(col, justify="left" if col == "language" else "right")
    for lang, s in rows + [("all", total)]:
        table.add_row(lang, f"{s.documents:,}", f"{s.bytes / 1e6:,.2f}", f"{s.tokens:,}", f"{s.bytes_per_token:.2f}", f"{s.words_per_token:.2f}",
                      style="bold" if lang == "all" else None)
    console.print(table)
    if result.errors:
        console.print(f"skipped: {', '.join(f'{k} {v:,}' for k, v in result.errors.items())}")
