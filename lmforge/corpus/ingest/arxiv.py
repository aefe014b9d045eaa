"""`corpus ingest arxiv`: LaTeX sources -> paper text, as RedPajama cleaned arXiv for LLaMA.

Inputs: arXiv's bulk source tars (`arXiv_src_YYMM_NNN.tar`: members `YYMM/ID.gz`, each one
paper), one paper's source as arXiv serves it (`ID.gz` / `ID.tar.gz`: a gzip'd tar, or a gzip'd
single `.tex`), any tarball/zip of a LaTeX project, a folder holding `.tex` files (one project),
a folder of any of those, or a single `.tex`.

Per paper (RedPajama's `data_prep/arxiv/arxiv_cleaner.py`, with the differences named):

1. the main file: the `.tex` with an uncommented `\\documentclass` (several: the one with
   `\\begin{document}`, then main/ms/paper.tex, then the largest); its `\\input{}` and
   `\\include{}` are inlined (recursively, a missing file is left out). RedPajama concatenated
   every `.tex` of a project in archive order instead. No `\\documentclass` anywhere: every
   `.tex`, concatenated by name.
2. comments removed: whole-line `%` comments, the rest of a line after an unescaped `%`, and
   `comment` environments (RedPajama removed the two kinds of `%` comments, and did it after
   step 3, so a commented-out `\\section` could start the text).
3. everything before the first `\\part`, `\\chapter`, `\\section`, ... `\\subparagraph` removed
   (no such header: dropped, `no_section`, as RedPajama's empty text).
4. everything from `\\appendix`, `\\begin{thebibliography}`, `\\begin{references}`, `\\bibliography{}`
   or `\\printbibliography` on removed (RedPajama's cut); `--keep-appendix` removes only the
   bibliography and keeps appendices.
5. user macros without arguments (`\\newcommand{\\x}{...}`, `\\newcommand*\\x{...}`,
   `\\renewcommand`, `\\def\\x{...}`; values with nested braces) expanded in one pass of one regex,
   repeated while a value uses another macro (at most 5 passes). RedPajama ran one regex per
   macro, once, and its value pattern ran to the last `}` of the line.

Metadata: arxiv_id (from the file name when it is one: `2101.00001v2`, `hep-th9901001`), url
(its abs page), name (the archive, file or folder), file (the main `.tex`), yymm (bulk tars),
and language / language_score, as RedPajama labelled each paper with fastText: LID-176 through
`lmforge.corpus.langid.LanguageIdentifier` (the model `corpus process` uses, loaded once per
worker), on the paper's prose (`latex_prose`: math, commands and their options left out, so
`\\begin{equation}` and `$x_i$` do not vote). `--languages en` keeps only those languages
(dropped: `language_not_wanted`); the default keeps every paper, labelled.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import Iterator

import click
from datatrove.data import Document

from datatrove.pipeline.base import PipelineStep

from lmforge.corpus.base import DocFilter
from lmforge.corpus.ingest.base import BadRecord, Dropped, IngestInputError, SourceReader
from lmforge.corpus.ingest.cli import ingest_options, run_source
from lmforge.corpus.options import dataclass_options

# drop reasons
NO_TEX = "no_tex"
NO_SECTION = "no_section"
LANGUAGE_NOT_WANTED = "language_not_wanted"  #: the paper's language is not one of --languages

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
PAPER_SUFFIXES = TAR_SUFFIXES + (".zip", ".gz", ".tex")
#: `2101.00001`, `2101.00001v2`, old style `hep-th9901001` / `hep-th/9901001`, `math.AG0101001`
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}(?:v\d+)?|[a-z-]+(?:\.[A-Z]{2})?/?\d{7}(?:v\d+)?)$")
_DOCUMENTCLASS = re.compile(r"^[^%\n]*\\documentclass", re.MULTILINE)
_INPUT = re.compile(r"\\(?:input|include|subfile)\s*\{([^}]+)\}|\\input\s+([^\s{}\\%]+)")
_SECTION = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\b\*?\s*(?:\[[^\]]*\])?\s*\{")
_LINE_COMMENT = re.compile(r"\n[ \t]*%[^\n]*")
_FIRST_LINE_COMMENT = re.compile(r"[ \t]*%[^\n]*\n?")
_COMMENT_ENV = re.compile(r"\\begin\{comment\}.*?\\end\{comment\}", re.DOTALL)
# two patterns that each start with a literal, which the regex engine finds at memchr speed (one
# alternation starting with a backslash was tried at every backslash: 3x slower on real papers)
_NEWCOMMAND = re.compile(r"newcommand\*?\s*(?:\{\s*(\\[a-zA-Z@]+)\s*\}|(\\[a-zA-Z@]+))\s*\{")
_DEF = re.compile(r"\\def\s*(\\[a-zA-Z@]+)\s*\{")
_MACRO_PASSES = 5
_GROUP_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)


@dataclass
class Config:
    """Settings of `corpus ingest arxiv`."""

    #: keep appendices (RedPajama cut the text at \appendix as at the bibliography)
    keep_appendix: bool = False
    #: expand user macros without arguments (\newcommand, \def)
    expand_macros: bool = True
    #: drop a paper whose cleaned text is shorter than this many characters
    min_chars: int = 1
    #: keep only papers in these languages (fastText LID-176 codes: en,de,...); empty keeps every one, labelled
    languages: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.min_chars < 0:
            raise ValueError(f"--min-chars must be >= 0, not {self.min_chars}")
        self.languages = [code.strip().lower() for code in self.languages if code.strip()]
        bad = [code for code in self.languages if not re.fullmatch(r"[a-z]{2,3}", code)]
        if bad:
            raise ValueError(f"--languages {','.join(bad)}: not a language code; use ISO 639 codes such as en,de,fr")


# ---- cleaning ---------------------------------------------------------------------------------

def _braced(text: str, start: int) -> int | None:
    """Index just past the `}` closing the group whose `{` is at `text[start - 1]`, or None."""
    close = text.find("}", start)
    if close >= 0 and "{" not in text[start:close] and "\\" not in text[close - 1: close]:
        return close + 1  # no nested group (most macro values): one find
    depth = 1  # nested groups: jump from brace to brace (an escaped character is skipped whole)
    for m in _GROUP_TOKEN.finditer(text, start):
        token = m.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                return m.end()
    return None


def macros_without_arguments(text: str) -> dict[str, str]:
    """`\\newcommand{\\name}{value}` and `\\def\\name{value}` (no `[n]` arguments, no `#1`) ->
    {"name": "value"}. `macros_without_arguments(r"\\newcommand{\\etal}{et\\,al.}") ->
    {"etal": r"et\\,al."}`."""
    found: dict[str, str] = {}
    matches = [m for m in _NEWCOMMAND.finditer(text) if text[max(m.start() - 1, 0)] == "\\" or text[max(m.start() - 3, 0): m.start()] == "\\re"]
    matches += list(_DEF.finditer(text))
    for m in sorted(matches, key=lambda m: m.start()):
        name = m.group(1) or (m.group(2) if m.re is _NEWCOMMAND else None)
        end = _braced(text, m.end())
        if end is None:
            continue
        value = text[m.end(): end - 1]
        if "#" in value or "\n\n" in value:  # an argument after all, or a runaway group
            continue
        found[name[1:]] = value.strip()
    return found


def expand_macros(text: str, macros: dict[str, str]) -> str:
    """Replace every `\\name` of `macros` not followed by a letter with its value. Values that use
    other macros are resolved among themselves first (short strings, at most 5 rounds: a macro
    defined through itself stops there), so the text itself takes one pass of one regex."""
    if not macros:
        return text
    pattern = re.compile(r"\\(" + "|".join(sorted(map(re.escape, macros), key=len, reverse=True)) + r")(?![a-zA-Z@])")
    values = dict(macros)
    for _ in range(_MACRO_PASSES):
        nested = {name: value for name, value in values.items() if "\\" in value and pattern.search(value)}
        if not nested:
            break
        for name, value in nested.items():
            values[name] = pattern.sub(lambda m: values[m.group(1)], value)
    return pattern.sub(lambda m: values[m.group(1)], text)


def _escaped(line: str, i: int) -> bool:
    """Whether `line[i]` follows an odd number of backslashes (`\\%` is a percent sign, `\\\\%` a
    line break then a comment)."""
    k = i
    while k > 0 and line[k - 1] == "\\":
        k -= 1
    return (i - k) % 2 == 1


def remove_comments(text: str) -> str:
    """Whole-line `%` comments (with their line break), the rest of a line after an unescaped
    `%`, `comment` environments. One C-speed regex for whole lines, then `str.find` from `%` to
    `%`: 0.09 ms on the emcee paper (41 KB), where a look-behind regex tried at every character
    took 1.2 ms and a loop over every line 0.4 ms."""
    if "\\begin{comment}" in text:
        text = _COMMENT_ENV.sub("", text)
    if "%" not in text:
        return text
    first = _FIRST_LINE_COMMENT.match(text)
    if first:
        text = text[first.end():]
    text = _LINE_COMMENT.sub("", text)
    i = text.find("%")
    out, pos = [], 0
    while i >= 0:
        if _escaped(text, i):
            i = text.find("%", i + 1)
            continue
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        out.append(text[pos:i])
        pos = end
        i = text.find("%", end)
    out.append(text[pos:])
    return "".join(out)


def clean_latex(text: str, keep_appendix: bool = False, expand: bool = True, comments_removed: bool = False) -> str:
    """One paper's (inlined) LaTeX -> the text RedPajama keeps: comments removed (unless
    `comments_removed`: `inline_inputs` did), from the first section header on, up to the
    bibliography (and appendix), macros expanded. '' when there is no section header."""
    if not comments_removed:
        text = remove_comments(text)
    macros = macros_without_arguments(text) if expand else {}
    start = _SECTION.search(text)
    if start is None:
        return ""
    text = text[start.start():]
    end = text.find("\\end{document}")
    if end >= 0:
        text = text[:end]
    if keep_appendix:
        text = re.sub(r"\\begin\{thebibliography\}.*?\\end\{thebibliography\}", "", text, flags=re.DOTALL)
        text = re.sub(r"\\bibliography(?:style)?\{[^}]*\}|\\printbibliography\b", "", text)
    else:
        cut = _first_cut(text)
        if cut is not None:
            text = text[:cut]
    if macros:
        text = expand_macros(text, macros)
    return text.strip() + "\n" if text.strip() else ""


#: where RedPajama cut the text: the bibliography and the appendix (a letter may not follow the
#: last two: `\appendixname` is no appendix)
_CUTS = ("\\begin{thebibliography}", "\\begin{references}", "\\begin{REFERENCES}", "\\bibliography{", "\\begin{appendices}",
         "\\printbibliography", "\\appendix")


def _first_cut(text: str) -> int | None:
    """Where the bibliography or the appendix starts, or None (`str.find`s: memchr speed)."""
    cuts = []
    for literal in _CUTS:
        i = text.find(literal)
        while i >= 0 and literal[-1].isalpha() and text[i + len(literal): i + len(literal) + 1].isalpha():
            i = text.find(literal, i + 1)
        if i >= 0:
            cuts.append(i)
    return min(cuts) if cuts else None


def find_main(files: dict[str, str]) -> str | None:
    """The main `.tex` of a project: the one with an uncommented `\\documentclass` (ties: with
    `\\begin{document}`, then named main/ms/paper, then the largest); None when there is none."""
    candidates = [name for name, text in files.items() if _DOCUMENTCLASS.search(text)]
    if not candidates:
        return None
    preferred = ("main.tex", "ms.tex", "paper.tex")

    def rank(name: str):
        base = name.rsplit("/", 1)[-1].lower()
        return ("\\begin{document}" in files[name], base in preferred, len(files[name]), name)

    return max(candidates, key=rank)


def inline_inputs(files: dict[str, str], main: str, depth: int = 0, seen: frozenset = frozenset()) -> str:
    """`files[main]` with `\\input{x}` / `\\include{x}` replaced by the text of `x` (or `x.tex`),
    looked up beside the main file and at the project root; missing ones are left out."""
    folder = main.rsplit("/", 1)[0] + "/" if "/" in main else ""
    text = remove_comments(files[main])

    def replace(m: re.Match) -> str:
        target = (m.group(1) or m.group(2) or "").strip()
        for candidate in (folder + target, folder + target + ".tex", target, target + ".tex"):
            candidate = os.path.normpath(candidate).replace(os.sep, "/")
            if candidate in files and candidate not in seen and depth < 10:
                return inline_inputs(files, candidate, depth + 1, seen | {main})
        return ""

    if "\\input" not in text and "\\include" not in text and "\\subfile" not in text:
        return text
    return _INPUT.sub(replace, text)


# ---- reading papers ---------------------------------------------------------------------------

def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older submissions (inputenc latin1); every byte decodes


def tex_files_of(data: bytes, name: str) -> dict[str, str]:
    """The `.tex` files of one paper given as bytes: a tar (any compression), a zip, a gzip'd
    single `.tex`, or a `.tex`. Raises tarfile/zip/gzip errors for a broken archive."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {i.filename: _decode(archive.read(i)) for i in archive.infolist() if i.filename.lower().endswith(".tex")}
    if len(data) > 262 and data[257:262] == b"ustar" or name.lower().endswith(TAR_SUFFIXES):
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return {m.name.removeprefix("./"): _decode(tar.extractfile(m).read())
                    for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(".tex")}
    return {_strip_suffix(os.path.basename(name)) + ".tex": _decode(data)}


def _strip_suffix(name: str) -> str:
    for suffix in sorted(PAPER_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def arxiv_id(name: str) -> str | None:
    """`2101.00001v2.tar.gz` -> `2101.00001v2`; `hep-th9901001.gz` -> `hep-th/9901001`; else None."""
    stem = _strip_suffix(os.path.basename(name))
    if not _ARXIV_ID.match(stem):
        return None
    m = re.match(r"^([a-z-]+(?:\.[A-Z]{2})?)/?(\d{7}(?:v\d+)?)$", stem)
    return f"{m.group(1)}/{m.group(2)}" if m else stem


def _has_documentclass(path: str) -> bool:
    with open(path, "rb") as f:
        return _DOCUMENTCLASS.search(f.read(1 << 16).decode("utf-8", "replace")) is not None


def _is_bulk(members: list[str]) -> bool:
    """arXiv's bulk tars hold one `.gz` (or `.pdf`) per paper, under a `YYMM/` folder."""
    return bool(members) and all(n.lower().endswith((".gz", ".pdf")) for n in members) and any(n.endswith(".gz") for n in members)


class Reader(SourceReader):
    """LaTeX sources -> one document per paper (metadata arxiv_id, url, name, file, yymm)."""

    source_name = "arxiv"
    config_class = Config
    suffixes = PAPER_SUFFIXES
    input_hint = "LaTeX sources: arXiv bulk tars, ID.gz / .tar.gz papers, .tex files, or folders of them"
    config: Config

    @classmethod
    def input_units(cls, path: str) -> list[str]:
        """A file is one paper (or a bulk tar of many). A folder holding archives (`.gz`,
        `.tar.gz`, ...) stands for them, each `.tex` beside them, and its subfolders' papers;
        a folder of only `.tex` files is one project when at most one of its top-level `.tex`
        files has a `\\documentclass` (its subfolders' `.tex` are its sections), else each
        top-level `.tex` is a paper of its own."""
        if not os.path.isdir(path):
            if not path.lower().endswith(PAPER_SUFFIXES) and _ARXIV_ID.match(os.path.basename(path)) is None:
                raise IngestInputError(f"{path}: not a LaTeX source ({', '.join(PAPER_SUFFIXES)}, or an arXiv id without "
                                       "suffix as arXiv serves it); pass the file, or the folder it is in")
            return [os.path.normpath(path)]
        names = [n for n in sorted(os.listdir(path)) if not n.startswith(".")]
        children = [os.path.join(path, n) for n in names]
        archives = [c for c in children if os.path.isfile(c) and c.lower().endswith(PAPER_SUFFIXES) and not c.lower().endswith(".tex")]
        texs = [c for c in children if os.path.isfile(c) and c.lower().endswith(".tex")]
        if texs and not archives and sum(map(_has_documentclass, texs)) <= 1:
            return [os.path.normpath(path)]
        units = archives + texs
        for child in children:
            if os.path.isdir(child):
                units.extend(cls.input_units(child))
        return sorted(units)

    def filter_steps(self) -> list[PipelineStep]:
        return [PaperLanguage(self.config.languages, keep_rejected=self.keep_rejected)]

    def read(self, path: str) -> Iterator[Document | Dropped | BadRecord]:
        name = os.path.basename(os.path.normpath(path))
        if os.path.isdir(path):
            files = {}
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for n in names:
                    if n.lower().endswith(".tex"):
                        full = os.path.join(root, n)
                        with open(full, "rb") as f:
                            files[os.path.relpath(full, path).replace(os.sep, "/")] = _decode(f.read())
            yield self._paper(files, path, name)
            return
        if path.lower().endswith(TAR_SUFFIXES):
            # a bulk tar (one .gz per paper) is read as a stream; a single project's tar is one paper
            with tarfile.open(path, mode="r|*") as tar:
                members = []
                for member in tar:
                    if not member.isfile():
                        continue
                    if not member.name.lower().endswith((".gz", ".pdf")):
                        members = None
                        break
                    members.append(member.name)
                    if member.name.endswith(".gz"):
                        data = tar.extractfile(member).read()
                        yield self._paper_bytes(data, f"{path}!{member.name}", member.name,
                                                yymm=member.name.split("/")[-2] if "/" in member.name else None)
            if members is not None and _is_bulk(members):
                return
        with open(path, "rb") as f:
            data = f.read()
        yield self._paper_bytes(data, path, name)

    def _paper_bytes(self, data: bytes, where: str, name: str, yymm: str | None = None) -> Document | Dropped | BadRecord:
        try:
            files = tex_files_of(data, name)
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
            return BadRecord(where, f"not a readable LaTeX source ({type(exc).__name__}: {exc})")
        return self._paper(files, where, name, yymm)

    def _paper(self, files: dict[str, str], where: str, name: str, yymm: str | None = None) -> Document | Dropped:
        if not files:
            return Dropped(NO_TEX, where)
        main = find_main(files)
        if main is not None:
            source = inline_inputs(files, main)  # comments removed on the way
        else:
            source = "\n".join(remove_comments(files[n]) for n in sorted(files))
        text = clean_latex(source, keep_appendix=self.config.keep_appendix, expand=self.config.expand_macros, comments_removed=True)
        paper_id = arxiv_id(name)
        meta = {"arxiv_id": paper_id, "url": f"https://arxiv.org/abs/{paper_id}" if paper_id else None,
                "name": _strip_suffix(os.path.basename(name)), "file": main or sorted(files)[0]}
        if yymm:
            meta["yymm"] = yymm
        doc = Document(text=text, id=f"arxiv/{paper_id or meta['name']}", metadata=meta)
        if len(text) < max(self.config.min_chars, 1):
            return Dropped(NO_SECTION if not text else "too_short", where, doc)
        return doc


# ---- language ---------------------------------------------------------------------------------

_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|\\\[.*?\\\]|\\\(.*?\\\)"
                   r"|\\begin\{(equation|align|eqnarray|gather|multline|displaymath|math|tabular|figure|table)(\*?)\}.*?\\end\{\1\2\}",
                   re.DOTALL)
_COMMAND = re.compile(r"\\[a-zA-Z@]+\*?(?:\[[^\]]*\])?|\\.")
_NOT_PROSE = re.compile(r"[{}~&^_]+")


def latex_prose(text: str) -> str:
    """The words of a cleaned paper for language ID: math and floats (`$...$`, `\\[...\\]`,
    equation/table/figure environments) removed, commands and their `[options]` removed (their
    `{arguments}` stay: `\\emph{Wort}` -> `Wort`), braces and spacing marks gone.

    `\\section{Zweck} Das \\emph{Paket} setzt $x^2$ Uhrzeiten~ab.` -> "Zweck Das Paket setzt
    Uhrzeiten ab." (spaces aside). On the three test papers it raises the score of the right
    language a little (emcee 0.87 -> 0.90, uhrzeit-doc (German) 0.975 -> 0.990).
    """
    return _NOT_PROSE.sub(" ", _COMMAND.sub(" ", _MATH.sub(" ", text)))


#: language ID reads the prose of a paper's first this many characters (after the cleaning: the
#: text from its first section on) and classifies the first `LID_CHARS` characters of it. fastText
#: LID-176 (.ftz) costs ~3.4 us a character here, so the whole paper (~30,000 characters) cost the
#: reader 3.5x its throughput in benchmarks/ingest.py, and 2,000 characters 2x; at 500 it is level
#: with RedPajama's cleaner + LID. Labels on the test papers: emcee en 0.92, george en 0.81,
#: uhrzeit-doc (German) de 0.98 (whole text: 0.90, 0.92, 0.99)
PROSE_WINDOW = 2_000
LID_CHARS = 500


class PaperLanguage(DocFilter):
    """Label each paper's `language` and `language_score` (fastText LID-176 on `latex_prose`);
    with `languages`, drop the others (`language_not_wanted`). Counts `language_<code>`."""

    name = "🌍 Language ID"

    def __init__(self, languages: list[str] | None = None, keep_rejected: bool = False):
        super().__init__(keep_rejected)
        from lmforge.corpus.langid import LanguageIdentifier

        self.identifier = LanguageIdentifier(max_chars=LID_CHARS)  # loaded lazily, once per worker process
        self.languages = set(languages or [])

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        language, score = self.identifier.predict(latex_prose(doc.text[:PROSE_WINDOW]))
        doc.metadata["language"], doc.metadata["language_score"] = language, round(score, 4)
        self.stat_update(f"language_{language}")
        if self.languages and language not in self.languages:
            return False, LANGUAGE_NOT_WANTED
        return True


@click.command(name="arxiv")
@ingest_options
@dataclass_options(Config)
def command(**kwargs) -> None:
    """LaTeX sources (arXiv tars, ID.gz, .tex folders) -> paper text, as RedPajama cleaned arXiv.

    \b
    Main file found (\\documentclass) and its \\input/\\include inlined; comments removed; text
    kept from the first \\section up to the bibliography (and \\appendix, unless
    --keep-appendix); \\newcommand/\\def macros without arguments expanded; language ID
    (--languages to keep some). Metadata: arxiv_id, url, name, file, language, language_score.

    \b
    Example:
      lmforge corpus ingest arxiv arXiv_src_2101_001.tar -o arxiv/
      lmforge corpus ingest arxiv papers/ 2101.00001.gz -o arxiv/ --keep-appendix
    """
    run_source("arxiv", kwargs)
