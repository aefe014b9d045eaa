"""Decode crawled HTML bytes to text the way a browser would.

Order of evidence (what the HTML standard's encoding sniffing does, minus the parts that need a
DOM): a byte-order mark; the HTTP ``Content-Type`` charset; a ``<meta charset>`` or
``<meta http-equiv="Content-Type">`` in the first 4 KB; strict UTF-8; then detection with
uchardet (resiliparse's ``detect_encoding``). A declared charset that fails to decode strictly
falls through to the next source, so a page labelled ``iso-8859-1`` that is really UTF-8 comes
out right. Only when nothing decodes strictly is ``errors="replace"`` used.

Labels are mapped the way browsers map them (WHATWG "Encoding" names and labels, via
resiliparse's ``map_encoding_to_html5``), then to the Python codec that matches the browser's
decoder: the web's GBK decoder is GB18030, its Shift_JIS is Windows-31J (cp932), its EUC-KR is
UHC (cp949), its Big5 carries HKSCS, and ISO-8859-1 / US-ASCII mean windows-1252.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

#: bytes of the document searched for a <meta> charset (the HTML standard prescans 1024; pages
#: with long <head> scripts put it later, so 4 KB)
META_SNIFF_BYTES = 4096

# resiliparse's WHATWG-mapped Python name -> the codec a browser's decoder actually matches
_BROWSER_CODEC = {
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "iso8859-11": "cp874",
}

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]{1,40})""",
    re.IGNORECASE,
)
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]{1,40})""", re.IGNORECASE)


@dataclass(slots=True)
class Decoded:
    text: str
    charset: str  # the Python codec actually used
    fallback: bool  # True when detection or errors="replace" was needed


def browser_codec(label: str | None, *, from_meta: bool = False) -> str | None:
    """Python codec for a charset label as a browser reads it; None for an unknown label.

    >>> browser_codec("GB2312"), browser_codec("iso-8859-1"), browser_codec("x-sjis")
    ('gb18030', 'cp1252', 'cp932')
    """
    if not label:
        return None
    name = map_encoding_to_html5(label.strip().strip("\"'"), fallback_utf8=False)
    if name is None:
        return None
    name = _BROWSER_CODEC.get(name, name)
    if from_meta and name.startswith("utf-16"):
        return "utf-8"  # HTML: a <meta> can only be read if the page is ASCII-compatible
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def charset_from_content_type(content_type: str | None) -> str | None:
    """The charset label in a Content-Type header value, e.g. 'text/html; charset=gbk' -> 'gbk'."""
    if not content_type:
        return None
    m = _CHARSET_PARAM.search(content_type)
    return m.group(1) if m else None


def sniff_meta_charset(data: bytes) -> str | None:
    """The charset label of the first <meta charset> / http-equiv in the first 4 KB, if any."""
    m = _META_CHARSET.search(data, 0, META_SNIFF_BYTES)
    return m.group(1).decode("ascii") if m else None


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_html(data: bytes, declared: str | None = None, *, html: bool = True) -> Decoded:
    """Decode a page. `declared` is the HTTP charset label; `html` enables <meta> sniffing."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = _strict(data[len(bom) :], codec)
            if text is not None:
                return Decoded(text, codec, False)
            break
    tried: set[str] = set()
    candidates = [browser_codec(declared)]
    if html:
        candidates.append(browser_codec(sniff_meta_charset(data), from_meta=True))
    candidates.append("utf-8")
    for codec in candidates:
        if codec is None or codec in tried:
            continue
        tried.add(codec)
        text = _strict(data, codec)
        if text is not None:
            return Decoded(text, codec, False)
    # nothing declared decodes: ask the detector (uchardet, WHATWG-mapped); if its guess does not
    # decode strictly either, keep its guess with U+FFFD for the bad bytes (the script is right)
    detected = browser_codec(detect_encoding(data, html5_compatible=True, from_html_meta=False)) or "utf-8"
    if detected not in tried:
        text = _strict(data, detected)
        if text is not None:
            return Decoded(text, detected, True)
    return Decoded(data.decode(detected, errors="replace"), detected, True)
