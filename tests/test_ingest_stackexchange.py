"""`corpus ingest stackexchange` on real Posts.xml rows (tests/data/ingest/stackexchange: see the
README there for where each row comes from) and small cases for the rest."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from datatrove.data import Document

from lmforge.cli import main
from lmforge.corpus.ingest.base import BadRecord, Dropped
from lmforge.corpus.ingest.stackexchange import (
    LOW_SCORE, NO_ANSWERS, NOT_QUESTION, Config, Reader, html_to_text, site_of, tags_of)

DATA = Path(__file__).parent / "data" / "ingest" / "stackexchange"
CSTHEORY = DATA / "cstheory.meta.stackexchange.com" / "Posts.xml"
SO = DATA / "stackoverflow.com" / "Posts.xml"


def read_all(path, config=None):
    items = list(Reader([str(path)], config or Config()).read(str(path)))
    docs = [i for i in items if isinstance(i, Document)]
    return docs, Counter(i.reason for i in items if isinstance(i, Dropped)), [i for i in items if isinstance(i, BadRecord)]


def test_questions_with_answers_sorted_by_score():
    docs, reasons, bad = read_all(CSTHEORY)
    assert [d.metadata["question_id"] for d in docs] == [1, 2, 3, 4, 6] and not reasons and not bad
    q1 = docs[0]
    assert q1.text.startswith("Q:\n\nWhat should our site/domain name be?\n\nPossible Duplicate:")
    # answers 9 (27), 10 (8), 15 (1); 16 (-3) is under --min-score 0
    order = [q1.text.index(s) for s in ("TheoryOverflow seems", "TheoryCS.org", "tcsQandA.org")]
    assert order == sorted(order) and "theoreticalcomputerscience.org" not in q1.text
    assert q1.text.count("\n\nA:\n\n") == 3
    assert q1.metadata["answer_count"] == 3 and q1.metadata["score"] == 19
    q4 = docs[3]  # accepted answer 13 (16) before answer 7 (7)
    assert q4.metadata["accepted"] is True and q4.text.index("I'm not sure what") < q4.text.index("I don't agree")
    assert q4.metadata == {"site": "cstheory.meta.stackexchange.com", "question_id": 4, "title": "On using actual names",
                           "score": 17, "answer_count": 2, "accepted": True, "tags": ["discussion", "user-ids"],
                           "date": "2010-08-16T20:36:37.547", "url": "https://cstheory.meta.stackexchange.com/questions/4"}
    for doc in docs:
        assert "<p>" not in doc.text and "&lt;" not in doc.text and "&quot;" not in doc.text


def test_min_score_drops_questions_and_answers():
    docs, reasons, _ = read_all(CSTHEORY, Config(min_score=15))
    # questions scored >= 15: 1 (19), 3 (33), 4 (17); of their answers only 9 (27) and 13 (16) reach 15
    assert [d.metadata["question_id"] for d in docs] == [1, 4]
    assert reasons == {LOW_SCORE: 2, NO_ANSWERS: 1}
    assert docs[0].metadata["answer_count"] == 1 and "TheoryCS.org" not in docs[0].text


def test_code_blocks_are_kept():
    docs, reasons, _ = read_all(SO, Config(min_answers=0))
    assert [d.metadata["question_id"] for d in docs] == [4, 6]
    q4 = docs[0].text
    assert "decimal trans = trackBar1.Value / 5000;\nthis.Opacity = trans;" in q4
    assert "double trans = trackBar1.Value / 5000.0;\ndouble trans = trackBar1.Value / 5000d;" in q4
    assert docs[1].metadata["answer_count"] == 0
    assert "- Is there something I'm missing here?\n- Is there an easy fix" in docs[1].text
    assert read_all(SO)[1] == {NO_ANSWERS: 1}  # question 6's answers are not in this excerpt


def test_html_to_text_keeps_indentation_inside_pre():
    html = ("<p>Try&nbsp;this:</p>\n<pre class=\"lang-py\"><code>def f(x):\n    if x:\n        return 1\n</code></pre>\n"
            "<ol><li>one</li><li>two<br>lines</li></ol><blockquote><p>quoted</p></blockquote><img src=x alt=y>")
    assert html_to_text(html) == "Try this:\n\ndef f(x):\n    if x:\n        return 1\n\n- one\n- two\nlines\n\nquoted"
    assert html_to_text("plain &amp; simple") == "plain & simple"


def test_sites_flag_and_site_names(tmp_path):
    docs, _, _ = read_all(SO, Config(sites=["cstheory.meta.stackexchange.com"]))
    assert docs == []
    assert Config(sites=["stackoverflow"]).keeps("stackoverflow.com") and Config(sites=["Cooking"]).keeps("cooking.stackexchange.com")
    assert not Config(sites=["cstheory"]).keeps("cstheory.meta.stackexchange.com")
    assert site_of("dump/cooking.stackexchange.com/Posts.xml") == "cooking.stackexchange.com"
    assert site_of("stackoverflow.com-Posts.7z") == "stackoverflow.com" and site_of("x/ai.stackexchange.com.7z") == "ai.stackexchange.com"
    assert tags_of("&lt;c#&gt;".replace("&lt;", "<").replace("&gt;", ">")) == ["c#"] and tags_of("|a|b-c|") == ["a", "b-c"]


def test_bad_rows_and_broken_xml_are_counted(tmp_path):
    site = tmp_path / "x.stackexchange.com"
    site.mkdir()
    rows = CSTHEORY.read_text().splitlines()
    # real rows 1-10, a row without Id, a tag-wiki row, then the stream breaks mid-row
    broken = rows[:12] + ['  <row PostTypeId="1" Score="2" Body="no id" />', '  <row Id="99" PostTypeId="5" Score="0" Body="wiki" />',
                          rows[12][:80]]
    (site / "Posts.xml").write_text("\n".join(broken))
    docs, reasons, bad = read_all(site / "Posts.xml")
    assert [d.metadata["question_id"] for d in docs] == [1, 2, 3, 4]  # 6 has no answer before the break
    assert reasons == {NOT_QUESTION: 1, NO_ANSWERS: 1} and len(bad) == 2
    assert "broken XML" in bad[1].message and bad[1].where.startswith(str(site / "Posts.xml"))


def test_7z_archive(tmp_path):
    py7zr = pytest.importorskip("py7zr", reason="py7zr (the stackexchange extra) is not installed")
    archive = tmp_path / "cstheory.meta.stackexchange.com.7z"
    with py7zr.SevenZipFile(archive, "w") as z:
        z.write(CSTHEORY, "Posts.xml")
    docs, _, _ = read_all(archive)
    assert len(docs) == 5 and docs[0].metadata["site"] == "cstheory.meta.stackexchange.com"


def test_cli_end_to_end_with_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for src in (CSTHEORY, SO):
        (tmp_path / "dump" / src.parent.name).mkdir(parents=True)
        (tmp_path / "dump" / src.parent.name / "Posts.xml").write_bytes(src.read_bytes())
    result = CliRunner().invoke(main, ["corpus", "ingest", "stackexchange", "dump", "-o", "out", "--no-progress",
                                       "--min-score", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "stats.json").read_text())["summary"]
    # question 6 of each site loses its only answer (score 0 on cstheory; not in the SO excerpt)
    assert summary["files"] == 2 and summary["kept"] == 5 and summary["dropped"] == {NO_ANSWERS: 2}
    assert "dropped: no_answers" in result.output
    result = CliRunner().invoke(main, ["corpus", "ingest", "stackexchange", "dump/notes.txt", "-o", "out2"])
    assert result.exit_code != 0 and "notes.txt" in result.output and "Traceback" not in result.output


def test_the_sqlite_join_of_big_sites_gives_the_same_documents(monkeypatch):
    from lmforge.corpus.ingest import stackexchange

    small = read_all(CSTHEORY)[0]
    monkeypatch.setattr(stackexchange, "IN_MEMORY_BYTES", 0)
    big = read_all(CSTHEORY)[0]
    assert [(d.id, d.text, d.metadata) for d in big] == [(d.id, d.text, d.metadata) for d in small]


def test_7z_without_py7zr_is_a_one_line_error_before_any_work(tmp_path, monkeypatch):
    import importlib.util

    from lmforge.corpus.ingest import stackexchange

    real = importlib.util.find_spec
    monkeypatch.setattr(stackexchange.importlib.util, "find_spec", lambda name, *a: None if name == "py7zr" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "ai.stackexchange.com.7z").write_bytes(b"7z\xbc\xaf\x27\x1c")
    result = CliRunner().invoke(main, ["corpus", "ingest", "stackexchange", "dump", "-o", "out"])
    assert result.exit_code == 1 and "pip install 'lmforge[stackexchange]'" in result.output
    assert "ai.stackexchange.com.7z" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "documents").exists()


def test_a_question_without_text_is_dropped_as_empty(tmp_path):
    from lmforge.corpus.ingest.stackexchange import EMPTY

    site = tmp_path / "x.stackexchange.com"
    site.mkdir()
    (site / "Posts.xml").write_text('<posts><row Id="1" PostTypeId="1" Score="3" Title="T" Body="&lt;p&gt; &lt;/p&gt;" />'
                                    '<row Id="2" PostTypeId="2" ParentId="1" Score="1" Body="&lt;p&gt;a&lt;/p&gt;" /></posts>')
    assert read_all(site / "Posts.xml")[1] == {EMPTY: 1}


def test_a_folder_of_linked_site_folders_is_read(tmp_path):
    """A dump folder whose sites are links to where they were unpacked (and a link loop)."""
    dump = tmp_path / "dump"
    dump.mkdir()
    for site in ("cstheory.meta.stackexchange.com", "stackoverflow.com"):
        (dump / site).symlink_to(DATA / site, target_is_directory=True)
    (dump / "loop").symlink_to(dump, target_is_directory=True)
    units = Reader.expand_inputs([str(dump)])
    assert [Path(u).parent.name for u in units] == ["cstheory.meta.stackexchange.com", "stackoverflow.com"]
