"""See what a tokenizer does: each token a coloured span, its id below (terminal or HTML).

Tokens that end inside a multi-byte character (byte-level BPE cuts CJK and emoji) are joined
with the following tokens until the bytes decode, and the span lists all their ids, so the
view never shows half characters. Spaces and newlines stay visible: a newline is drawn as
"↵" before the line break.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from lmforge.tokenize.tokenizer import Tokenizer

# Backgrounds cycled span by span like the OpenAI page. The terminal uses the named ANSI
# colours (distinct even on 16-colour terminals, where pastel hex values collapse to white);
# the HTML page uses pastels readable with black text.
TERMINAL_COLOURS = ("bright_green", "bright_yellow", "bright_cyan", "bright_magenta", "bright_blue", "yellow")
COLOURS = ("#c5e1a5", "#ffe082", "#90caf9", "#f48fb1", "#b39ddb", "#80cbc4", "#ffab91", "#e6ee9c")


@dataclass
class Span:
    text: str
    ids: list[int]
    special: bool = False


@dataclass
class TextStats:
    tokens: int
    chars: int
    bytes: int
    words: int

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    @property
    def words_per_token(self) -> float:
        return self.words / self.tokens if self.tokens else 0.0


def spans(tok: Tokenizer, ids: list[int]) -> list[Span]:
    """Group `ids` into spans of whole characters."""
    out: list[Span] = []
    buf = b""
    pending: list[int] = []
    for idx in ids:
        if tok.is_special(idx):
            if pending:
                out.append(Span(buf.decode("utf-8", errors="replace"), pending))
                buf, pending = b"", []
            out.append(Span(tok.id_to_bytes(idx).decode(), [idx], special=True))
            continue
        buf += tok.id_to_bytes(idx)
        pending.append(idx)
        try:
            text = buf.decode("utf-8")
        except UnicodeDecodeError:
            if len(buf) < 8:  # wait for the rest of the character
                continue
            text = buf.decode("utf-8", errors="replace")
        out.append(Span(text, pending))
        buf, pending = b"", []
    if pending:
        out.append(Span(buf.decode("utf-8", errors="replace"), pending))
    return out


def text_stats(text: str, ids: list[int]) -> TextStats:
    return TextStats(tokens=len(ids), chars=len(text), bytes=len(text.encode("utf-8", errors="surrogatepass")), words=len(text.split()))


def _visible(text: str) -> str:
    return text.replace("\n", "↵\n").replace("\t", "→\t")


def render_rich(span_list: list[Span], show_ids: bool = True):
    """A rich renderable: the coloured text, then the ids in the same colours."""
    from rich.console import Group
    from rich.text import Text

    body = Text()
    id_line = Text()
    for i, span in enumerate(span_list):
        colour = TERMINAL_COLOURS[i % len(TERMINAL_COLOURS)]
        style = "bold white on red" if span.special else f"black on {colour}"
        body.append(_visible(span.text), style=style)
        if show_ids:
            id_line.append(" ".join(str(x) for x in span.ids), style=style)
            id_line.append(" ")
    parts = [body]
    if show_ids:
        parts += [Text(""), id_line]
    return Group(*parts)


def render_html(span_list: list[Span], stats: TextStats, title: str = "lmforge tokenizer") -> str:
    """A standalone HTML page with the same view; hovering a span shows its ids."""
    pieces = []
    ids_html = []
    for i, span in enumerate(span_list):
        colour = "#e53935" if span.special else COLOURS[i % len(COLOURS)]
        ids = " ".join(str(x) for x in span.ids)
        text = html.escape(span.text).replace("\n", "↵\n")
        pieces.append(f'<span class="t" style="background:{colour}" title="{ids}">{text}</span>')
        ids_html.append(f'<span class="t" style="background:{colour}">{ids}</span>')
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
.box {{ font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.8; border: 1px solid #ccc; padding: 1em; }}
.t {{ border-radius: 3px; padding: 1px 0; }}
.ids .t {{ margin-right: 4px; padding: 1px 3px; }}
table {{ border-collapse: collapse; margin-top: 1em; }} td {{ padding: 2px 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="box">{"".join(pieces)}</div>
<h2>Token ids</h2>
<div class="box ids">{"".join(ids_html)}</div>
<table>
<tr><td>tokens</td><td>{stats.tokens}</td></tr>
<tr><td>characters</td><td>{stats.chars}</td></tr>
<tr><td>bytes (UTF-8)</td><td>{stats.bytes}</td></tr>
<tr><td>bytes per token</td><td>{stats.bytes_per_token:.2f}</td></tr>
<tr><td>words per token</td><td>{stats.words_per_token:.2f}</td></tr>
</table>
</body></html>
"""
