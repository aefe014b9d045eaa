"""Tests for lmforge.corpus.warc (streaming WARC/WET reader) and lmforge.corpus.charset."""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import zlib
from pathlib import Path

import pytest
from conftest import shared_path

from lmforge.corpus import warc as W
from lmforge.corpus.charset import browser_codec, decode_html
from lmforge.corpus.warc import WarcInputError, dechunk, expand_inputs, iter_warc_pages

warcio = pytest.importorskip("warcio")
from warcio.statusandheaders import StatusAndHeaders  # noqa: E402
from warcio.warcwriter import WARCWriter  # noqa: E402

HTML = b"<!doctype html><html><head><title>t</title></head><body><p>Hello chunked world</p></body></html>"
OUTCOMES = {
    W.HTML, W.TEXT, W.SKIPPED_REQUEST, W.SKIPPED_REVISIT, W.SKIPPED_METADATA, W.SKIPPED_WARCINFO,
    W.SKIPPED_NON_HTML, W.SKIPPED_OTHER, W.SKIPPED_TOO_LARGE, W.BAD_RECORD, W.TRUNCATED_FILE,
}


def read(path, **_) -> tuple[list[W.WarcPage], dict[str, int]]:
    counts: dict[str, int] = {}
    pages = list(iter_warc_pages(str(path), counts))
    return pages, counts


def assert_balanced(counts: dict[str, int]) -> None:
    """Every record read lands in exactly one outcome."""
    assert sum(v for k, v in counts.items() if k in OUTCOMES) == counts.get(W.RECORDS, 0), counts


# ---------------------------------------------------------------- building small WARCs


def _response(writer, url, body, headers, status="200 OK", warc_headers=None):
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    rec = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                    warc_headers_dict=warc_headers or {})
    writer.write_record(rec)


def build_warc(path: Path, records, gz: bool = True) -> Path:
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gz)
        w.write_record(w.create_warcinfo_record(path.name, {"software": "lmforge-test"}))
        for r in records:
            r(w)
    return path


def resp(url, body, headers, status="200 OK"):
    return lambda w: _response(w, url, body, headers, status)


def chunked(data: bytes, size: int = 7) -> bytes:
    out = b""
    for i in range(0, len(data), size):
        part = data[i : i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


# ---------------------------------------------------------------- payload handling


def test_chunked_gzip_deflate_br_payloads(tmp_path):
    brotli = pytest.importorskip("brotli")
    ct = ("Content-Type", "text/html; charset=utf-8")
    path = build_warc(tmp_path / "enc.warc.gz", [
        resp("http://a/chunked", chunked(HTML), [ct, ("Transfer-Encoding", "chunked")]),
        resp("http://a/gzip", gzip.compress(HTML), [ct, ("Content-Encoding", "gzip")]),
        resp("http://a/deflate", zlib.compress(HTML), [ct, ("Content-Encoding", "deflate")]),
        resp("http://a/rawdeflate", zlib.compress(HTML)[2:-4], [ct, ("Content-Encoding", "deflate")]),
        resp("http://a/br", brotli.compress(HTML), [ct, ("Content-Encoding", "br")]),
        resp("http://a/chunked-gzip", chunked(gzip.compress(HTML)),
             [ct, ("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")]),
        # header says chunked but the crawler stored it de-chunked: used as is
        resp("http://a/not-chunked", HTML, [ct, ("Transfer-Encoding", "chunked")]),
        # header says gzip but the crawler stored it decoded: used as is
        resp("http://a/already-decoded", HTML, [ct, ("Content-Encoding", "gzip")]),
    ])
    pages, counts = read(path)
    assert [p.content for p in pages] == [HTML.decode()] * 8
    assert counts == {W.RECORDS: 9, W.SKIPPED_WARCINFO: 1, W.HTML: 8}
    assert pages[0].url == "http://a/chunked" and pages[0].kind == "html" and pages[0].charset == "utf-8"
    assert pages[0].id.startswith("urn:uuid:") and pages[0].date.startswith("20")
    assert pages[0].source == str(path) and pages[0].offset > 0
    assert len({p.offset for p in pages}) == 8


def test_broken_content_encoding_is_bad_record(tmp_path, caplog):
    ct = ("Content-Type", "text/html")
    path = build_warc(tmp_path / "bad.warc.gz", [
        resp("http://a/badgz", b"\x1f\x8b\x08\x00garbagegarbage", [ct, ("Content-Encoding", "gzip")]),
        resp("http://a/cutgz", gzip.compress(HTML * 20)[:60], [ct, ("Content-Encoding", "gzip")]),
        resp("http://a/unknown", b"\x00\x01binary", [ct, ("Content-Encoding", "compress")]),
        resp("http://a/ok", HTML, [ct]),
    ])
    with caplog.at_level(logging.WARNING, logger=W.__name__):
        pages, counts = read(path)
    assert [p.url for p in pages] == ["http://a/ok"]
    assert counts[W.BAD_RECORD] == 3
    assert_balanced(counts)
    assert re.search(rf"{re.escape(str(path))}: offset \d+: bad record", caplog.text)


def test_skip_reasons(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "MAX_PAYLOAD_BYTES", 1000)

    def req(w):
        w.write_record(w.create_warc_record("http://a/", "request", payload=io.BytesIO(b""),
                                            http_headers=StatusAndHeaders("GET / HTTP/1.1", [("Host", "a")], is_http_request=True)))

    def meta(w):
        w.write_record(w.create_warc_record("http://a/", "metadata", payload=io.BytesIO(b"x: y\r\n"),
                                            warc_content_type="application/warc-fields"))

    def revisit(w):
        w.write_record(w.create_revisit_record("http://a/", "sha1:AAAA", "http://a/", "2020-01-01T00:00:00Z"))

    def unknown(w):
        w.write_record(w.create_warc_record("http://a/", "bogus-type", payload=io.BytesIO(b"x")))

    def wet(w):
        w.write_record(w.create_warc_record("http://a/", "conversion", payload=io.BytesIO("Grüße".encode()),
                                            warc_content_type="text/plain"))

    path = build_warc(tmp_path / "mixed.warc", [
        req, meta, revisit, unknown, wet,
        resp("http://a/img", b"\x89PNG....", [("Content-Type", "image/png")]),
        resp("http://a/redirect", b"", [("Content-Type", "text/html"), ("Location", "/x")], status="301 Moved"),
        resp("http://a/big", b"<p>" + b"x" * 2000, [("Content-Type", "text/html")]),
        resp("http://a/bomb", gzip.compress(b"<p>" + b"x" * 5000), [("Content-Type", "text/html"), ("Content-Encoding", "gzip")]),
        resp("http://a/no-type", HTML, []),  # no Content-Type: sniffed as HTML
        resp("http://a/no-type-bin", b"\x00\x01\x02", []),
    ], gz=False)
    pages, counts = read(path)
    assert counts == {
        W.RECORDS: 12, W.SKIPPED_WARCINFO: 1, W.SKIPPED_REQUEST: 1, W.SKIPPED_METADATA: 1,
        W.SKIPPED_REVISIT: 1, W.SKIPPED_OTHER: 1, W.TEXT: 1, W.SKIPPED_NON_HTML: 3,
        W.SKIPPED_TOO_LARGE: 2, W.HTML: 1,
    }
    assert [(p.kind, p.content) for p in pages] == [("text", "Grüße"), ("html", HTML.decode())]


def test_dechunk():
    assert dechunk(chunked(HTML, 5)) == HTML
    assert dechunk(HTML) == HTML  # not chunked at all
    assert dechunk(b"5\nhello\n0\n\n") == b"hello"  # LF-only
    assert dechunk(b"5\r\nhello\r\nzz\r\nrest") == b"hello"  # broken later chunk: keep the prefix
    assert dechunk(b"a\r\nhello") == b"hello"  # cut inside a chunk


# ---------------------------------------------------------------- cut and corrupt files


def test_truncated_file_keeps_records_before(tmp_path, caplog):
    full = build_warc(tmp_path / "full.warc.gz",
                      [resp(f"http://a/{i}", HTML * 50, [("Content-Type", "text/html")]) for i in range(4)])
    data = full.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) - 200])
    with caplog.at_level(logging.WARNING, logger=W.__name__):
        pages, counts = read(cut)
    assert [p.url for p in pages] == ["http://a/0", "http://a/1", "http://a/2"]
    assert counts[W.TRUNCATED_FILE] == 1
    assert_balanced(counts)
    assert f"{cut}: offset " in caplog.text

    plain = build_warc(tmp_path / "plain.warc",
                       [resp(f"http://a/{i}", HTML * 50, [("Content-Type", "text/html")]) for i in range(4)], gz=False)
    cut_plain = tmp_path / "cut.warc"
    cut_plain.write_bytes(plain.read_bytes()[:-500])
    pages, counts = read(cut_plain)
    assert len(pages) == 3 and counts[W.TRUNCATED_FILE] == 1

    first = tmp_path / "first.warc.gz"  # cut inside the first record: a WARC, not a user mistake
    first.write_bytes(data[:100])
    pages, counts = read(first)
    assert pages == [] and counts[W.TRUNCATED_FILE] == 1
    assert_balanced(counts)


def test_resource_record_with_html(tmp_path):
    def res(w, ct):
        w.write_record(w.create_warc_record("http://a/r", "resource", payload=io.BytesIO(HTML), warc_content_type=ct))

    path = build_warc(tmp_path / "res.warc", [lambda w: res(w, "text/html"), lambda w: res(w, "text/plain")], gz=False)
    pages, counts = read(path)
    assert [(p.kind, p.url) for p in pages] == [("html", "http://a/r")]
    assert counts == {W.RECORDS: 3, W.SKIPPED_WARCINFO: 1, W.HTML: 1, W.SKIPPED_OTHER: 1}


def test_utf8_bytes_kept_only_when_they_are_the_text(tmp_path):
    """`WarcPage.utf8` (the bytes the extractor parses instead of encoding the text again) is
    the payload exactly when the text is its strict UTF-8 decoding: not after a BOM, not for
    another charset, not when the decoding needed a fallback; and the main text is the same
    from the bytes as from the text."""
    from lmforge.corpus.extract import extract_main_text_with_info

    article = "<html><body><article><p>" + "Ünïcödé prose, long enough to be the main text. " * 5 + "</p></article></body></html>"
    body = article.encode("utf-8")
    path = build_warc(tmp_path / "u.warc.gz", [
        resp("http://a/utf8", body, [("Content-Type", "text/html; charset=utf-8")]),
        resp("http://a/bom", b"\xef\xbb\xbf" + body, [("Content-Type", "text/html")]),
        resp("http://a/latin", article.encode("cp1252"), [("Content-Type", "text/html; charset=windows-1252")]),
        resp("http://a/broken", body + b"\xff\xfe", [("Content-Type", "text/html; charset=utf-8")]),
    ])
    pages = {p.url.rsplit("/", 1)[1]: p for p in read(path)[0]}
    assert pages["utf8"].utf8 == body == pages["utf8"].content.encode("utf-8")
    assert pages["bom"].utf8 is None and pages["latin"].utf8 is None and pages["broken"].utf8 is None
    page = pages["utf8"]
    assert extract_main_text_with_info(page.content, fallback=False, html_utf8=page.utf8) == \
        extract_main_text_with_info(page.content, fallback=False)


def test_corrupt_gzip_stream_keeps_records_before(tmp_path):
    full = build_warc(tmp_path / "full.warc.gz",
                      [resp(f"http://a/{i}", os.urandom(3000).hex().encode(), [("Content-Type", "text/html")])
                       for i in range(6)])
    data = bytearray(full.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = b"\xff" * 64
    bad = tmp_path / "corrupt.warc.gz"
    bad.write_bytes(bytes(data))
    pages, counts = read(bad)
    assert 1 <= len(pages) < 6
    assert counts[W.TRUNCATED_FILE] == 1
    assert_balanced(counts)


# ---------------------------------------------------------------- user mistakes


def test_not_a_warc_raises_input_error(tmp_path):
    for name, data in [("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8),
                       ("notes.txt", b"just some notes\nnot a crawl\n" * 20),
                       ("text.warc.gz", gzip.compress(b"hello\n" * 100))]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(WarcInputError, match=re.escape(str(p)) + ".*not a WARC"):
            read(p)


def test_missing_and_unreadable_paths(tmp_path):
    with pytest.raises(WarcInputError, match="nope.warc.gz.*not found"):
        read(tmp_path / "nope.warc.gz")
    with pytest.raises(WarcInputError, match="folder"):
        read(tmp_path)
    if os.geteuid() != 0:  # root reads everything
        p = tmp_path / "secret.warc"
        p.write_bytes(b"WARC/1.0\r\n")
        p.chmod(0)
        with pytest.raises(WarcInputError, match="permission"):
            read(p)
    empty = tmp_path / "empty.warc"
    empty.write_bytes(b"")
    assert read(empty) == ([], {})


def test_expand_inputs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ["d/a.warc.gz", "d/sub/b.warc", "d/c.wet.gz", "d/x.warc.wat.gz", "d/readme.txt", "e.warc.gz"]:
        (tmp_path / name).write_bytes(b"")
    d = str(tmp_path / "d")
    got = expand_inputs([d, str(tmp_path / "*.warc.gz"), str(tmp_path / "d" / "a.warc.gz"), d + "/"])
    assert got == sorted([f"{d}/a.warc.gz", f"{d}/c.wet.gz", f"{d}/sub/b.warc", str(tmp_path / "e.warc.gz")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarcInputError, match="empty"):
        expand_inputs([str(tmp_path / "empty")])
    with pytest.raises(WarcInputError, match=r"missing\.warc.*nothing-\*\.warc"):
        expand_inputs([str(tmp_path / "missing.warc"), d, str(tmp_path / "nothing-*.warc")])
    with pytest.raises(WarcInputError):
        expand_inputs([])


def test_fsspec_url_inputs(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    local = build_warc(tmp_path / "x.warc.gz", [resp("http://a/", HTML, [("Content-Type", "text/html")])])
    fs = fsspec.filesystem("memory")
    fs.pipe("/lmforge-test/crawl/x.warc.gz", local.read_bytes())
    fs.pipe("/lmforge-test/crawl/y.warc.gz", local.read_bytes())
    try:
        want = [fs.unstrip_protocol("/lmforge-test/crawl/x.warc.gz"), fs.unstrip_protocol("/lmforge-test/crawl/y.warc.gz")]
        assert expand_inputs(["memory://lmforge-test/crawl/*.warc.gz"]) == want
        assert expand_inputs(["memory://lmforge-test/crawl", want[1]]) == want
        pages, counts = read("memory://lmforge-test/crawl/x.warc.gz")
        assert [p.content for p in pages] == [HTML.decode()] and counts[W.HTML] == 1
        with pytest.raises(WarcInputError, match="memory://lmforge-test/none"):
            expand_inputs(["memory://lmforge-test/none/*.warc.gz"])
        with pytest.raises(WarcInputError, match="not found"):
            read("memory://lmforge-test/crawl/missing.warc.gz")
    finally:
        fs.rm("/lmforge-test", recursive=True)


# ---------------------------------------------------------------- charsets


@pytest.mark.parametrize(("label", "codec"), [
    ("gb2312", "gb18030"), ("GBK", "gb18030"), ("iso-8859-1", "cp1252"), ("us-ascii", "cp1252"),
    ("shift_jis", "cp932"), ("euc-jp", "euc_jp"), ("windows-1251", "cp1251"), ("euc-kr", "cp949"),
    ("utf8", "utf-8"), ("no-such-charset", None),
])
def test_browser_codec(label, codec):
    assert browser_codec(label) == codec


def test_decode_order():
    zh = "<p>中文网页，简体字</p>".encode("gbk")
    assert decode_html(b'<meta charset="gb2312">' + zh).charset == "gb18030"  # meta
    assert decode_html(zh, "gb2312").text.endswith("简体字</p>")  # HTTP
    # HTTP label wrong (utf-8) -> the <meta> label wins, no fallback
    d = decode_html(b'<meta http-equiv="Content-Type" content="text/html; charset=gbk">' + zh, "utf-8")
    assert (d.charset, d.fallback) == ("gb18030", False) and "简体字" in d.text
    ru = ("<p>" + "Привет, как у тебя дела сегодня? " * 20 + "</p>").encode("cp1251")
    d = decode_html(ru)  # nothing declared, not utf-8: detected
    assert d.fallback and d.charset == "cp1251" and "Привет" in d.text
    assert decode_html("é".encode("utf-8-sig")).text == "é"  # BOM
    d = decode_html(b"\xff\xfe\x00bad", "utf-8")
    assert "\ufffd" not in d.text or d.fallback


MULTILINGUAL_SCRIPT = {  # host -> the script of its text
    "01spb.ru": "cyrillic", "06.live-radsport.ch": "latin", "0900-hovenier.nl": "latin",
}
SCRIPTS = {"han": r"[\u4e00-\u9fff]", "cyrillic": r"[\u0400-\u04ff]", "latin": r"[a-zA-Z]",
           "japanese": r"[\u3040-\u30ff\u4e00-\u9fff]"}


def _text(html: str) -> str:
    return re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", html, flags=re.S | re.I)


def _assert_script(page, script):
    text = _text(page.content)
    assert "\ufffd" not in page.content, page.url
    assert not re.search("Ã[\x80-\xbf]|Ð[\x80-\xbf]", text), f"mojibake in {page.url}"
    letters = re.findall(r"[^\W\d_]", text)
    share = len(re.findall(SCRIPTS[script], "".join(letters))) / max(1, len(letters))
    assert share > 0.5 if script != "han" else len(re.findall(SCRIPTS["han"], text)) >= 30, (page.url, share)


def test_multilingual_charsets():
    pages, counts = read(shared_path("warc", "cc-main-2020-34-multilingual.warc.gz"))
    assert len(pages) == 16 and counts[W.HTML] == 16 and counts.get(W.CHARSET_FALLBACK, 0) == 0
    assert {p.charset for p in pages} == {"utf-8", "gb18030", "cp1251", "cp1252"}
    for p in pages:
        host = p.url.split("/")[2]
        _assert_script(p, MULTILINGUAL_SCRIPT.get(host, "han"))
    latin = [p for p in pages if MULTILINGUAL_SCRIPT.get(p.url.split("/")[2]) == "latin"]
    assert all(re.search("[äöüéèàçë]", _text(p.content)) for p in latin)


def test_clueweb_euc_jp():
    pages, counts = read(shared_path("warc", "clueweb09-ja-near-duplicates.warc.gz"))
    assert len(pages) == 29 and counts[W.HTML] == 29
    for p in pages:
        assert p.charset == "euc_jp"
        _assert_script(p, "japanese")


# ---------------------------------------------------------------- shared crawls


def test_iana_revisits_counts():
    pages, counts = read(shared_path("warc", "iana-2014-with-revisits.warc.gz"))
    assert counts[W.SKIPPED_REVISIT] == 123 and counts[W.SKIPPED_REQUEST] == 171
    responses = counts[W.HTML] + counts.get(W.SKIPPED_NON_HTML, 0) + counts.get(W.SKIPPED_TOO_LARGE, 0)
    assert responses == 48 and counts[W.HTML] == len(pages) > 0
    assert_balanced(counts)
    assert all(p.url.startswith("http") and "iana.org" in p.url for p in pages)


def test_wget_homepages():
    pages, counts = read(shared_path("warc", "wget-2024-homepages.warc.gz"))
    assert len(pages) == 22 and counts[W.HTML] == 22
    for p in pages:
        _assert_script(p, "latin")
        assert re.search(r"\b(the|and|to|of)\b", _text(p.content), re.I)


def test_wet_conversion_records_are_text():
    pages, counts = read(shared_path("warc", "cc-main-2024-22-whirlwind.warc.wet.gz"))
    assert [p.kind for p in pages] == ["text"] and counts[W.TEXT] == 1
    assert pages[0].url.startswith("https://an.wikipedia.org/") and "<" not in pages[0].content[:200]
    html, _ = read(shared_path("warc", "cc-main-2024-22-whirlwind.warc.gz"))
    assert [p.kind for p in html] == ["html"] and html[0].url == pages[0].url


BAD_EXPECTED = {
    "block-sized-records.warc.gz": {W.RECORDS: 3, W.SKIPPED_OTHER: 3},
    "clipped.warc.gz": {W.RECORDS: 1, W.TRUNCATED_FILE: 1},
    "example-bad-non-chunked.warc.gz": {W.RECORDS: 6, W.SKIPPED_WARCINFO: 2, W.HTML: 1, W.SKIPPED_REQUEST: 2,
                                        W.SKIPPED_REVISIT: 1},
    "example-trunc.warc": {W.RECORDS: 4, W.SKIPPED_WARCINFO: 2, W.BAD_RECORD: 1, W.SKIPPED_REQUEST: 1},
    "example-wrong-chunks.warc.gz": {W.RECORDS: 2, W.HTML: 1, W.SKIPPED_REQUEST: 1},
    "standard-torture-validate-field.warc": {W.RECORDS: 3, W.SKIPPED_OTHER: 2, W.SKIPPED_REQUEST: 1},
    "standard-torture-validate-record.warc": {W.RECORDS: 17, W.SKIPPED_WARCINFO: 3, W.SKIPPED_NON_HTML: 1,
                                              W.SKIPPED_OTHER: 5, W.SKIPPED_REQUEST: 2, W.SKIPPED_METADATA: 2,
                                              W.SKIPPED_REVISIT: 3, W.TEXT: 1},
}


@pytest.mark.parametrize("name", sorted(BAD_EXPECTED))
def test_bad_files_stream_without_errors(name):
    pages, counts = read(shared_path("warc", "bad", name))
    assert counts == BAD_EXPECTED[name]
    assert_balanced(counts)
    for p in pages:
        if p.kind == "html":
            assert "Example Domain" in p.content and p.content.rstrip().endswith("</html>")


def test_record_types_match_warcio():
    """Reference check: per-file record counts equal warcio's on the well-formed shared WARCs."""
    from warcio.archiveiterator import ArchiveIterator

    for name in ["cc-main-2020-34-multilingual.warc.gz", "iana-2014-with-revisits.warc.gz",
                 "wget-2024-homepages.warc.gz", "clueweb09-ja-near-duplicates.warc.gz"]:
        path = shared_path("warc", name)
        with open(path, "rb") as f:
            n = sum(1 for _ in ArchiveIterator(f, check_digests=False))
        assert read(path)[1][W.RECORDS] == n, name
