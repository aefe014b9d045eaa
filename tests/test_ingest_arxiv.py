"""`corpus ingest arxiv` on two real papers (tests/data/ingest/arxiv, see its NOTICE.md)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmforge.cli import main
from lmforge.corpus.ingest import arxiv
from lmforge.documents import find_document_files, iter_documents

DATA = Path(__file__).parent / "data" / "ingest" / "arxiv"
EMCEE = (DATA / "emcee-ms.tex").read_text()
GEORGE = (DATA / "george-ms.tex").read_text()
UHRZEIT = DATA / "uhrzeit-doc.tex"  # a real German LaTeX document (LPPL; see NOTICE.md)


def run(*args: str):
    return CliRunner().invoke(main, ["corpus", "ingest", "arxiv", *args, "--no-progress"], catch_exceptions=True)


def docs_of(out: Path, folder: str = "documents") -> list:
    return [doc for path in find_document_files([out / folder]) for doc in iter_documents(path)]


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in files.items():
            add(tar, name, data)
    return buffer.getvalue()


def test_real_paper_is_cleaned_as_redpajama_does():
    text = arxiv.clean_latex(EMCEE)
    assert text.startswith("\\section{Introduction}")
    assert "thebibliography" not in text and "\\bibitem" not in text  # bibliography cut
    assert "\\appendix" not in text  # and the appendix after it
    assert "\\documentclass" not in text and "\\newcommand" not in text  # preamble gone
    assert not any(line.lstrip().startswith("%") for line in text.splitlines())
    # \newcommand{\this}{\project{\thisplain}} and \thisplain{emcee}: expanded in two passes;
    # \project[1] takes an argument and stays
    assert "\\this " not in text and "\\thisplain" not in text and "\\project{emcee}" in text
    assert "\\paper" not in text and "in this document\\ have general applicability" in text
    assert 25_000 < len(text) < len(EMCEE)
    keep = arxiv.clean_latex(EMCEE, keep_appendix=True)
    assert "\\appendix" in keep and "thebibliography" not in keep and len(keep) > len(text)


def test_comments_are_removed_but_escaped_percent_stays():
    tex = ("\\section{A}\n% a whole-line comment\n50\\% of x % the rest of the line\n\\begin{comment}\nhidden\n\\end{comment}\n"
           "y \\\\% after a line break\n")
    assert arxiv.clean_latex(tex) == "\\section{A}\n50\\% of x \n\ny \\\\\n"


def test_a_commented_out_section_does_not_start_the_text():
    assert arxiv.clean_latex("% \\section{Old}\nintro\n\\section{New}\nbody\n") == "\\section{New}\nbody\n"


def test_macros_without_arguments_only():
    macros = arxiv.macros_without_arguments(EMCEE)
    assert macros["etal"] == "\\foreign{et\\,al.}" and macros["this"] == "\\project{\\thisplain}"
    assert "project" not in macros and "Fig" not in macros  # [1] arguments: not expanded
    assert arxiv.macros_without_arguments(r"\def\sun{\odot}\def\arg#1{#1}") == {"sun": "\\odot"}
    # nested groups and escaped braces inside a value; a group never closed is no macro
    assert arxiv.macros_without_arguments(r"\newcommand{\m}{\vec{\Theta}\}x}") == {"m": r"\vec{\Theta}\}x"}
    assert arxiv.macros_without_arguments(r"\newcommand{\m}{\vec{x}") == {}
    assert arxiv.expand_macros(r"\sun and \sunny", {"sun": "S"}) == r"S and \sunny"


def test_no_section_is_dropped_and_bibliography_variants_cut():
    assert arxiv.clean_latex("\\documentclass{article}\n\\begin{document}\nno headers\n\\end{document}\n") == ""
    tex = "\\section{A}\nbody\n\\bibliography{refs}\nafter\n"
    assert arxiv.clean_latex(tex) == "\\section{A}\nbody\n"


def test_main_file_found_and_inputs_inlined():
    head, sep, tail = GEORGE.partition("\\section{Notation}")
    files = {"sections/notation.tex": sep + tail, "ms.tex": head + "\\input{sections/notation}\n", "unused.tex": "\\section{X}\n"}
    assert arxiv.find_main(files) == "ms.tex"
    assert arxiv.clean_latex(arxiv.inline_inputs(files, "ms.tex")) == arxiv.clean_latex(GEORGE)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The input forms arXiv and authors use, built from the two real papers."""
    root = tmp_path_factory.mktemp("arxiv-in")
    (root / "1202.3665.gz").write_bytes(gzip.compress(EMCEE.encode()))  # a single .tex, gzip'd, as arXiv serves it
    (root / "george.tar.gz").write_bytes(tar_bytes({"paper/ms.tex": GEORGE.encode(), "paper/aastex61.cls": b"% class"}))
    folder = root / "folder-paper"
    folder.mkdir()
    (folder / "ms.tex").write_text(GEORGE)
    (root / "single.tex").write_text(EMCEE)  # loose beside archives: a paper of its own
    with tarfile.open(root / "arXiv_src_1202_001.tar", "w") as bulk:  # a bulk tar: YYMM/ID.gz per paper
        add(bulk, "1202/1202.3665v1.gz", gzip.compress(EMCEE.encode()))
        add(bulk, "1202/1202.9999.gz", tar_bytes({"main.tex": GEORGE.encode()}))
        add(bulk, "1202/1202.0001.gz", gzip.compress(b"\\documentclass{article}\\begin{document}no sections\\end{document}"))
    return root


def test_every_input_form_end_to_end_with_relative_paths(inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(inputs)
    out = tmp_path / "out"
    result = run(".", "-o", str(out), "--keep-rejected")
    assert result.exit_code == 0, result.output
    docs = {d.id: d for d in docs_of(out)}
    assert set(docs) == {"arxiv/1202.3665", "arxiv/1202.3665v1", "arxiv/george", "arxiv/folder-paper", "arxiv/single", "arxiv/1202.9999"}
    meta = dict(docs["arxiv/1202.3665"].metadata)
    assert meta.pop("language") == "en" and meta.pop("language_score") > 0.8
    assert meta == {"source": "arxiv", "arxiv_id": "1202.3665", "url": "https://arxiv.org/abs/1202.3665",
                    "name": "1202.3665", "file": "1202.3665.tex"}
    assert docs["arxiv/1202.9999"].metadata["yymm"] == "1202"
    assert docs["arxiv/george"].metadata["file"] == "paper/ms.tex"
    assert docs["arxiv/1202.3665"].text == docs["arxiv/single"].text == arxiv.clean_latex(EMCEE)
    stats = json.loads((out / "stats.json").read_text())["summary"]
    assert stats["dropped"] == {"no_section": 1}  # 1202.0001
    assert stats["records"] == 7 and stats["kept"] == 6
    rejected = docs_of(out, "rejected")
    assert [d.metadata["arxiv_id"] for d in rejected] == ["1202.0001"]
    # the same command again: finished, nothing redone
    written = {p: p.stat().st_mtime_ns for p in (out / "documents").iterdir()}
    assert run(".", "-o", str(out), "--keep-rejected").exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "documents").iterdir()} == written


def test_a_german_paper_is_labelled_and_languages_keeps_some(tmp_path):
    out = tmp_path / "all"
    assert run(str(UHRZEIT), str(DATA / "emcee-ms.tex"), "-o", str(out)).exit_code == 0
    labels = {d.id: (d.metadata["language"], d.metadata["language_score"]) for d in docs_of(out)}
    assert labels["arxiv/uhrzeit-doc"][0] == "de" and labels["arxiv/uhrzeit-doc"][1] > 0.9
    assert labels["arxiv/emcee-ms"][0] == "en"
    english = tmp_path / "en"
    assert run(str(UHRZEIT), str(DATA / "emcee-ms.tex"), "-o", str(english), "--languages", "en").exit_code == 0
    assert [d.id for d in docs_of(english)] == ["arxiv/emcee-ms"]
    summary = json.loads((english / "stats.json").read_text())["summary"]
    assert summary["dropped"] == {"language_not_wanted": 1}
    bad = run(str(UHRZEIT), "-o", str(tmp_path / "x"), "--languages", "german")
    assert bad.exit_code != 0 and "--languages german" in bad.output and "Traceback" not in bad.output


def test_latex_prose_leaves_math_and_commands_out():
    assert arxiv.latex_prose(r"\section{Zweck} Das \emph{Paket} setzt $x^2$ Uhrzeiten~ab.").split() == ["Zweck", "Das", "Paket", "setzt", "Uhrzeiten", "ab."]
    assert arxiv.latex_prose("a \\begin{equation} E = mc^2 \\end{equation} b").split() == ["a", "b"]


def test_broken_sources_are_counted_with_their_place(tmp_path):
    (tmp_path / "2101.00001.gz").write_bytes(gzip.compress(EMCEE.encode())[:500])  # cut short
    with tarfile.open(tmp_path / "arXiv_src_2101_001.tar", "w") as bulk:
        add(bulk, "2101/2101.00002.gz", b"\x1f\x8b\x08junk")
        add(bulk, "2101/2101.00003.gz", gzip.compress(GEORGE.encode()))
    (tmp_path / "cut.tar.gz").write_bytes(tar_bytes({"a/ms.tex": GEORGE.encode()})[:300])  # one paper: a bad record
    bulk = tar_bytes({"2102/2102.00001.gz": gzip.compress(GEORGE.encode()), "2102/2102.00002.gz": gzip.compress(EMCEE.encode())}, "w")
    with tarfile.open(fileobj=io.BytesIO(bulk)) as whole:
        cut = whole.getmembers()[1].offset_data + 100
    (tmp_path / "arXiv_src_2102_001.tar").write_bytes(bulk[:cut])  # a bulk tar cut in its 2nd paper
    out = tmp_path / "out"
    result = run(str(tmp_path), "-o", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "stats.json").read_text())["summary"]
    assert summary["errors"] == {"bad_record": 3, "truncated_file": 1}
    assert sorted(d.id for d in docs_of(out)) == ["arxiv/2101.00003", "arxiv/2102.00001"]


def test_user_mistakes_are_one_line_errors(tmp_path):
    (tmp_path / "paper.pdf").write_bytes(b"%PDF")
    result = run(str(tmp_path / "paper.pdf"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "not a LaTeX source" in result.output and "Traceback" not in result.output
    result = run(str(tmp_path / "missing"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "nothing to read" in result.output
    assert "Example:" in CliRunner().invoke(main, ["corpus", "ingest", "arxiv", "--help"]).output
