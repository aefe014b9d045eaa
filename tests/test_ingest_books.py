"""`corpus ingest books` on real Project Gutenberg files (tests/data/ingest/books: see the README
there) and small cases for the header/footer variants the samples lack."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from datatrove.data import Document

from lmforge.cli import main
from lmforge.corpus.ingest.base import BadRecord, Dropped
from lmforge.corpus.ingest.books import (
    NEAR_DUPLICATE, TOO_SHORT, Config, NearDuplicateBooks, Reader, decode, strip_gutenberg)

DATA = Path(__file__).parent / "data" / "ingest" / "books"
ALICE_PG = DATA / "alice-pg11.txt.gz"
ALICE_29 = DATA / "alice29.txt.gz"
MILTON = DATA / "plrabn12.txt.gz"
LOC = DATA / "lcet10.txt.gz"


def read_one(path, config=None):
    items = list(Reader([str(path)], config or Config()).read(str(path)))
    assert len(items) == 1
    return items[0]


def test_modern_header_and_footer_are_removed():
    doc = read_one(ALICE_PG)
    assert doc.text.startswith("ALICE'S ADVENTURES IN WONDERLAND\n\nLewis Carroll")
    assert doc.text.endswith("the happy summer days.\n\n              THE END")
    assert "Gutenberg" not in doc.text and "\ufeff" not in doc.text
    assert doc.metadata == {"title": "Alice's Adventures in Wonderland", "author": "Lewis Carroll", "language": "en",
                            "ebook": 11, "file": str(ALICE_PG), "encoding": "utf-8", "header": True, "footer": True}
    assert doc.id == "alice-pg11"


def test_1992_headers_without_markers_are_removed():
    milton = read_one(MILTON)
    assert milton.text.startswith("Paradise Lost\n\n\n\n\nBook I\n\n\nOf Man's first disobedience")
    assert milton.text.endswith("Through Eden took their solitary way.\n\n[The End]")
    assert "Gutenberg" not in milton.text and "etext" not in milton.text and "\r" not in milton.text
    assert (milton.metadata["title"], milton.metadata["author"]) == ("Paradise Lost", "John Milton")
    loc = read_one(LOC)
    assert "Project Gutenberg" not in loc.text and loc.metadata["title"] == "LOC WORKSHOP ON ELECTRONIC TEXTS"
    assert loc.text.lstrip().startswith("WORKSHOP ON ELECTRONIC TEXTS") and loc.metadata["footer"]


def test_a_book_without_header_is_kept_whole():
    doc = read_one(ALICE_29)
    assert doc.metadata["header"] is False and doc.metadata["footer"] is False and doc.metadata["title"] is None
    assert doc.text.lstrip().startswith("ALICE'S ADVENTURES IN WONDERLAND") and not doc.text.endswith("\x1a")


def test_near_duplicate_edition_is_dropped():
    paths = [str(p) for p in (ALICE_29, ALICE_PG, MILTON, LOC)]
    reader = Reader(paths, Config(), progress=False)
    assert [type(step) for step in reader.filter_steps()] == [NearDuplicateBooks]
    dedup = NearDuplicateBooks(0.9, backend="numpy")  # the same signatures; no numba compile in a test
    kept = list(dedup.run(reader.run()))
    assert [d.id for d in kept] == ["alice29", "plrabn12", "lcet10"]
    assert dedup.stats.to_dict()["stats"][f"dropped_{NEAR_DUPLICATE}"] == 1
    # switched off: both editions stay
    assert Reader(paths, Config(near_duplicate=None)).filter_steps() == []


def test_near_duplicate_threshold():
    base = " ".join(f"word{i}" for i in range(2000))
    changed = base.replace("word100 ", "other ").replace("word900 ", "other ")  # ~0.99 similar
    different = " ".join(f"term{i}" for i in range(2000))
    step = NearDuplicateBooks(0.9, backend="numpy")
    results = [step.filter(Document(text=t, id=str(i))) for i, t in enumerate((base, changed, different))]
    assert results == [True, (False, NEAR_DUPLICATE), True]


@pytest.mark.parametrize("text, body", [
    ("The Project Gutenberg EBook of X\n\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nProduced by A. Person\nand B.\n\n"
     "Body.\n" + "line\n" * 100 + "End of the Project Gutenberg EBook of X\n\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nlicence",
     "Body.\n" + "line\n" * 99 + "line"),
    ("licence\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\nBody.\n" + "l\n" * 100
     + "End of Project Gutenberg's X\nlicence", "Body.\n" + "l\n" * 99 + "l"),
    ("***start of the project gutenberg ebook x***\nBody.", "Body."),
    ("Just a text.\n\nNo header.", "Just a text.\n\nNo header."),
    ("Body.\nEnd of the Project Gutenberg EBook: too early to be the footer", "Body.\nEnd of the Project Gutenberg EBook: too early to be the footer"),
])
def test_strip_gutenberg_variants(text, body):
    assert strip_gutenberg(text).text == body


def test_decode_and_short_and_binary_files(tmp_path):
    assert decode("caf\u00e9".encode("utf-8")) == ("caf\u00e9", "utf-8")
    assert decode("caf\u00e9 \u2014".encode("cp1252")) == ("caf\u00e9 \u2014", "cp1252")
    short = tmp_path / "short.txt"
    short.write_text("*** START OF THE PROJECT GUTENBERG EBOOK S ***\nA few words only.")
    assert isinstance(read_one(short), Dropped) and read_one(short).reason == TOO_SHORT
    binary = tmp_path / "data.txt"
    binary.write_bytes(b"\x00\x01" * 100)
    assert isinstance(read_one(binary), BadRecord)


def test_cli_end_to_end_with_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "books").mkdir()
    for src in (ALICE_PG, ALICE_29, MILTON):
        (tmp_path / "books" / src.name).write_bytes(src.read_bytes())
    (tmp_path / "books" / "broken.txt.gz").write_bytes(LOC.read_bytes()[:2000])  # cut short
    result = CliRunner().invoke(main, ["corpus", "ingest", "books", "books", "-o", "out", "--no-progress", "--keep-rejected"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "stats.json").read_text())["summary"]
    assert summary["files"] == 4 and summary["kept"] == 2
    assert summary["dropped"] == {NEAR_DUPLICATE: 1} and summary["errors"] == {"unreadable_file": 1}
    assert "near_duplicate" in result.output
    assert list((tmp_path / "out" / "rejected" / NEAR_DUPLICATE).rglob("*.jsonl.zst"))
    result = CliRunner().invoke(main, ["corpus", "ingest", "books", "books", "-o", "out2", "--near-duplicate", "2"])
    assert result.exit_code != 0 and "--near-duplicate" in result.output and "Traceback" not in result.output


def test_a_file_of_licence_only_is_dropped_as_empty(tmp_path):
    from lmforge.corpus.ingest.books import EMPTY

    path = tmp_path / "licence.txt"
    path.write_text("*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n\n")
    item = read_one(path)
    assert isinstance(item, Dropped) and item.reason == EMPTY
