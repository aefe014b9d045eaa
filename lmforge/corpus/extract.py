"""Main-content extraction (placeholder)."""
from __future__ import annotations


def extract_main_text(html: str, url: str | None = None) -> str:
    try:
        from resiliparse.extract.html2text import extract_plain_text

        return extract_plain_text(html, main_content=True)
    except Exception:
        return ""
