"""`corpus ingest wikipedia` on real MediaWiki dumps (tests/data/ingest/wikipedia, from gensim's
test data: see the README there) and on small cases for what the samples lack."""

from __future__ import annotations

import bz2
import functools
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from datatrove.data import Document

from lmforge.cli import main
from lmforge.corpus.ingest.base import BadRecord, Dropped
from lmforge.corpus.ingest.wikipedia import (
    DISAMBIGUATION, EMPTY, NAMESPACE, REDIRECT, Config, Reader, is_disambiguation, language_of, parse, wikitext_to_text)

DATA = Path(__file__).parent / "data" / "ingest" / "wikipedia"
ENWIKI = DATA / "enwiki-pages-articles-cut.xml.bz2"
BGWIKI = DATA / "bgwiki-pages-articles-shortened.xml.bz2"
TABLES = DATA / "enwiki-table-markup.xml.bz2"
MARKUP = ("[[", "]]", "{{", "}}", "'''", "''", "<ref", "</ref", "{|", "|}", "<!--", "thumb|")


@functools.lru_cache(maxsize=None)
def read_default(path):
    """read_all with the default settings, once per sample per test run."""
    return read_all(path)


def read_all(path, config=None):
    items = list(Reader([str(path)], config or Config()).read(str(path)))
    docs = [i for i in items if isinstance(i, Document)]
    reasons = Counter(i.reason for i in items if isinstance(i, Dropped))
    bad = [i for i in items if isinstance(i, BadRecord)]
    return docs, reasons, bad


@pytest.fixture(scope="module")
def enwiki():
    return read_default(ENWIKI)


def test_enwiki_sample_counts_and_drop_reasons(enwiki):
    docs, reasons, bad = enwiki
    # 113 pages: 99 redirects, 8 disambiguation pages (5 "X (disambiguation)" + 3 bare titles), 1 project page
    assert (len(docs), reasons[REDIRECT], reasons[DISAMBIGUATION], reasons[NAMESPACE]) == (5, 99, 8, 1)
    assert not bad
    titles = {d.metadata["title"] for d in docs}
    assert titles == {"A", "Alabama", "Albedo", "Anarchism", "Autism"}
    assert not any("(disambiguation)" in t for t in titles)


def test_no_wikitext_markup_reaches_the_text(enwiki):
    docs = enwiki[0] + read_default(BGWIKI)[0] + read_default(TABLES)[0]
    for doc in docs:
        for mark in MARKUP:
            assert mark not in doc.text, (doc.metadata["title"], mark)
        assert "Category:" not in doc.text and "File:" not in doc.text
    anarchism = next(d for d in docs if d.metadata["title"] == "Anarchism")
    assert anarchism.text.startswith("Anarchism is a political philosophy")
    assert "\nEtymology and terminology\n" in anarchism.text  # headings stay as lines


def test_metadata(enwiki):
    doc = next(d for d in enwiki[0] if d.metadata["title"] == "Anarchism")
    assert doc.metadata == {"title": "Anarchism", "page_id": 12, "revision_id": "716551092",
                            "timestamp": "2016-04-22T10:19:33Z", "language": "en",
                            "url": "https://en.wikipedia.org/wiki/Anarchism", "wiki": "enwiki"}
    assert doc.id == "enwiki/12"


def test_other_language_utf16_dump_with_localised_namespaces():
    docs, reasons, _ = read_default(BGWIKI)
    assert len(docs) == 1 and reasons == {NAMESPACE: 2}  # two Уикипедия: (ns 4) pages
    doc = docs[0]
    assert doc.metadata["language"] == "bg" and doc.metadata["title"] == "Григориански календар"
    assert doc.metadata["url"].startswith("https://bg.wikipedia.org/wiki/%D0%93")
    assert doc.text.startswith("Григорианският календар (понякога наричан и Грегориански календар")
    assert "Файл:" not in doc.text and "Категория:" not in doc.text and "thumb" not in doc.text


def test_tables_are_dropped_and_a_dump_without_siteinfo_takes_xml_lang():
    docs, _, _ = read_default(TABLES)
    assert len(docs) == 5
    assert all(d.metadata["language"] == "en" and d.metadata["url"] is None for d in docs)
    for doc in docs:
        assert "wikitable" not in doc.text and "rowspan" not in doc.text and "|-" not in doc.text


def test_namespaces_flag_keeps_project_pages():
    docs, reasons, _ = read_all(BGWIKI, Config(namespaces=["0", "4"]))
    assert len(docs) == 3 and not reasons


@pytest.mark.parametrize("wikitext, expected", [
    ("'''Alan''' was a [[United Kingdom|British]] {{cite|x}}man.<ref>r</ref>", "Alan was a British man."),
    ("A [[dog]]s life.<!-- hidden --> {{Infobox|a=[[b]]}}", "A dogs life."),
    ("x [[File:a.png|thumb|a [[b]] caption]] [[Image:c.jpg]] y [[Category:Z]] [[de:Hund]]", "x y"),
    ("Intro.\n\n==Life==\nText.\n==See also==\n==Notes==\n<references/>", "Intro.\n\nLife\n\nText."),
    ("* one\n* two <ref name=a/>\n#three", "one\ntwo\nthree"),
    ("Before.\n{| class=\"wikitable\"\n! h\n|-\n| cell\n|}\nAfter.", "Before.\n\nAfter."),
    ("E = <math>mc^2</math> &amp; ''so'' on", "E = & so on"),
    ("[http://example.org Example site] and [http://bare.example]", "Example site and"),
])
def test_wikitext_to_text(wikitext, expected):
    assert wikitext_to_text(wikitext) == expected


@pytest.mark.parametrize("wikitext, is_dab", [
    ("'''Mercury''' may refer to:\n* [[Mercury (planet)]]\n{{disambiguation}}", True),
    ("x\n{{Disambig|geo}}", True),
    ("x\n{{dab}}", True),
    ("x\n{{hndis|Smith, John}}", True),
    ("x __DISAMBIG__", True),
    ("x [[Category:Disambiguation pages]]", True),
    ("'''Bulgarian''' {{Пояснителна страница}}", True),
    ("A real article.{{Disambiguation needed|date=May 2016}}", False),
    ("{{distinguish|Alkene}} An article.", False),
])
def test_disambiguation_detection(wikitext, is_dab):
    assert is_disambiguation(parse(wikitext)) is is_dab


def test_language_of():
    assert language_of("enwiki", None, None) == "en"
    assert language_of("zh_yuewiki", None, None) == "zh-yue"
    assert language_of(None, "https://de.wikipedia.org/wiki/Wikipedia:Hauptseite", "x") == "de"
    assert language_of(None, None, "fr") == "fr"


def _page(title, ns, body, pid, redirect=False):
    return (f"<page><title>{title}</title><ns>{ns}</ns><id>{pid}</id>" + ("<redirect title='X'/>" if redirect else "")
            + f"<revision><id>1</id><timestamp>2020-01-01T00:00:00Z</timestamp><text>{body}</text></revision></page>")


def test_bad_records_and_a_broken_stream_are_counted_not_fatal(tmp_path):
    head = ("<mediawiki xml:lang='en'><siteinfo><dbname>enwiki</dbname><base>https://en.wikipedia.org/wiki/Main_Page</base>"
            "<namespaces><namespace key='0'/><namespace key='14'>Category</namespace></namespaces></siteinfo>")
    body = (_page("Good", 0, "Some '''text'''.", 1) + "<page><title>No text</title><ns>0</ns><id>2</id></page>"
            + _page("Moved", 0, "#REDIRECT [[Good]]", 3) + _page("Stub", 0, "{{stub}}", 4)
            + _page("Other", "x", "y", 5) + _page("Second", 0, "More text.", 6))
    path = tmp_path / "cut.xml.bz2"
    path.write_bytes(bz2.compress((head + body + _page("Lost", 0, "never", 7)[:40]).encode()))
    reader = Reader([str(path)], Config(), progress=False)
    docs = list(reader.run())
    assert [d.text for d in docs] == ["Some text.", "More text."]
    stats = reader.stats.to_dict()["stats"]
    assert stats["bad_record"] == 2  # the page without <text>, the page with <ns>x</ns>
    assert stats[f"dropped_{REDIRECT}"] == 1 and stats[f"dropped_{EMPTY}"] == 1
    assert stats["truncated_file"] == 1  # the XML ends mid-page: the file stops there


def test_cli_end_to_end_with_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "dumps").mkdir()
    for src in (BGWIKI, TABLES):
        (tmp_path / "dumps" / src.name).write_bytes(src.read_bytes())
    (tmp_path / "dumps" / "notes.txt").write_text("not a dump")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["corpus", "ingest", "wikipedia", "dumps", "-o", "out", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "stats.json").read_text())["summary"]
    assert summary["files"] == 2 and summary["kept"] == 6 and summary["dropped"] == {NAMESPACE: 2}
    assert "dropped: namespace" in result.output
    assert list((tmp_path / "out" / "documents").glob("*.jsonl.zst"))


def test_cli_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["corpus", "ingest", "wikipedia", "missing.xml.bz2", "-o", "out"])
    assert result.exit_code != 0 and "missing.xml.bz2" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["corpus", "ingest", "wikipedia", str(TABLES), "-o", "out", "--namespaces", "main"])
    assert result.exit_code != 0 and "--namespaces" in result.output


def test_template_leftovers_in_lead_sentences():
    text = wikitext_to_text("__NOTOC__'''Anarchism''' ({{IPA|x}}; from {{lang-grc|y}}, ''anarchia'') and Paris ({{IPA|p}}) x&nbsp;y")
    assert text == "Anarchism (from, anarchia) and Paris x y"


def test_keep_disambiguation_flag(tmp_path):
    path = tmp_path / "d.xml"
    path.write_text("<mediawiki xml:lang='en'>" + _page("Mercury", 0, "'''Mercury''' may be:\n* [[Mercury (planet)]]\n{{dab}}", 1)
                    + "</mediawiki>")
    assert read_all(path)[1] == {DISAMBIGUATION: 1}
    docs = read_all(path, Config(keep_disambiguation=True))[0]
    assert [d.text for d in docs] == ["Mercury may be:\nMercury (planet)"]
