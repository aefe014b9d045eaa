"""A built-in crawl sample for `lmforge demo`, made offline on any machine.

The demo must run on a fresh machine without network and without shipping third-party web
pages, yet the pipeline should face what real crawls hold. So this module writes a genuine
WARC/1.0 file (gzip per record, request/response pairs, a revisit, non-HTML responses)
whose HTML pages wrap real English prose — the Python reference manual's topic texts that
ship with every CPython (`pydoc_data.topics`, PSF licence) — in the boilerplate real sites
carry: navigation, cookie banners, share buttons, related-post lists, footers, scripts.
Around those articles it plants what the filters and dedup exist for:

- near-duplicates: the same article again on a mirror, with other boilerplate and small edits;
- low-quality pages: keyword spam, repeated lines, link farms, "lorem ipsum" placeholders;
- a blocklisted URL, and pages in German, French, Spanish, Russian (windows-1251),
  Chinese (GBK) and Japanese (EUC-JP), written for this sample, in their real charsets.

The output is deterministic for a given seed.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import random
import re
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

SITES = ["docs-digest.example.org", "pyweekly.example.net", "codenotes.example.com", "learn-python.example.io"]

OTHER_LANGUAGES = {
    "de": ("iso-8859-1", "Die Stadt am Fluss", [
        "Die kleine Stadt liegt an einem breiten Fluss, über den seit dem Mittelalter eine steinerne Brücke führt. "
        "Jeden Samstag findet auf dem Marktplatz ein Wochenmarkt statt, auf dem Bauern aus der Umgebung Obst, Gemüse und Käse verkaufen.",
        "Im Sommer kommen viele Besucher, um am Ufer spazieren zu gehen oder mit dem Fahrrad den Radweg entlang des Flusses zu fahren. "
        "Die Gasthäuser in der Altstadt sind dann bis spät in den Abend geöffnet.",
        "Die Geschichte der Stadt ist eng mit dem Handel verbunden. Schiffe brachten Salz und Holz flussabwärts, "
        "und die Kaufleute bauten prächtige Häuser, die man heute noch bewundern kann.",
    ]),
    "fr": ("iso-8859-1", "Une journée au marché", [
        "Le marché du village ouvre très tôt le matin, bien avant que le soleil ne se lève au-dessus des collines. "
        "Les marchands installent leurs étals et disposent avec soin les fruits, les légumes et les fromages de la région.",
        "Vers dix heures, la place est pleine de monde. On y entend parler de la météo, des récoltes et des dernières nouvelles de la commune, "
        "tandis que les enfants courent entre les stands.",
        "À midi, les cafés autour de la place se remplissent et les conversations continuent à l'ombre des platanes.",
    ]),
    "es": ("utf-8", "El faro de la costa", [
        "El viejo faro se levanta sobre las rocas desde hace más de un siglo y todavía guía a los barcos de pesca que vuelven al puerto al atardecer. "
        "Su luz se ve desde muy lejos en las noches claras.",
        "El guardián del faro vivía en una pequeña casa junto a la torre y anotaba cada día el estado del mar y del viento en un cuaderno. "
        "Esos cuadernos se conservan hoy en el museo del pueblo.",
        "Los visitantes pueden subir los ciento veinte escalones de la escalera de caracol y contemplar toda la bahía desde lo alto.",
    ]),
    "ru": ("windows-1251", "Зимняя дорога", [
        "Зимой дорога через лес становится узкой и тихой, и только следы саней показывают, что здесь недавно кто-то проезжал. "
        "Снег лежит на ветвях елей толстым слоем, и кажется, что время остановилось.",
        "В деревне за лесом жители заранее готовятся к холодам: запасают дрова, чинят крыши и варят варенье из летних ягод. "
        "По вечерам в окнах горит тёплый свет, а из труб поднимается дым.",
        "Весной снег тает, ручьи бегут к реке, и дорога снова становится широкой и шумной.",
    ]),
    "zh": ("gbk", "城市里的小公园", [
        "在城市的中心有一个不大的公园，每天早上都有很多老人在这里打太极拳、散步和聊天。公园里种满了树木和花草，环境非常安静。",
        "到了周末，年轻的父母会带着孩子来这里放风筝、骑自行车。湖边的长椅上总是坐满了看书和休息的人。",
        "这个公园建于上世纪八十年代，经过多次改造，现在已经成为附近居民最喜欢的休闲场所之一。",
    ]),
    "ja": ("euc-jp", "山の上の小さな図書館", [
        "山の上にある小さな図書館は、村の人々にとって大切な場所です。週末になると、子どもたちが集まって絵本を読んだり、宿題をしたりしています。",
        "図書館の窓からは遠くの海が見え、天気の良い日には船がゆっくりと進んでいく様子を眺めることができます。",
        "この図書館は古い学校の建物を改装して作られ、地域のボランティアによって大切に運営されています。",
    ]),
}

SPAM_WORDS = ["cheap", "best", "price", "buy", "online", "discount", "free", "shipping", "deal", "offer", "sale", "top"]


def _prose_articles(per_article: int = 4) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) from the Python reference topics: prose paragraphs only, grouped
    in topic order into articles of `per_article` paragraphs (~30 articles)."""
    from pydoc_data.topics import topics

    articles, title, buffer = [], None, []
    for key in sorted(topics):
        text = topics[key]
        for block in text.split("\n\n"):
            if not block.strip() or block.startswith((" ", "\t")) or block.strip().startswith(("*", "=", "-", ">>>")):
                continue
            para = " ".join(line.strip() for line in block.splitlines())
            if len(para.split()) >= 12 and para.rstrip().endswith(".") and _is_prose(para):
                title = title or text.splitlines()[0].strip()
                buffer.append(para)
                if len(buffer) == per_article:
                    articles.append((title, buffer))
                    title, buffer = None, []
    return articles


def _is_prose(paragraph: str) -> bool:
    """Prose rather than code talk: few quoted identifiers and symbols (a page of those is
    what Gopher's alpha-word rule drops, which would leave the demo with little to show)."""
    tokens = re.findall(r"\w+|[^\w\s]", paragraph)
    symbols = sum(1 for t in tokens if not any(c.isalpha() for c in t))
    return symbols / max(1, len(tokens)) < 0.15 and paragraph.count('"') <= 4 and "*" not in paragraph


def _boilerplate_page(title: str, paragraphs: list[str], site: str, rng: random.Random, lang: str = "en", charset: str = "utf-8") -> str:
    nav = "".join(f'<li><a href="/{w.lower()}">{w}</a></li>' for w in rng.sample(
        ["Home", "Tutorials", "News", "Reference", "Blog", "About", "Contact", "Newsletter", "Jobs", "Events"], 6))
    related = "".join(f'<li><a href="/post/{rng.randrange(10**6)}">{html.escape(t)}</a></li>' for t in rng.sample(
        ["Ten tips for faster code", "Why your tests are slow", "A tour of the standard library", "Packaging in 2026",
         "Understanding iterators", "Memory views explained", "Async in practice", "Debugging like a pro"], 4))
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    date = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 28):02d}"
    return textwrap.dedent(f"""\
        <!DOCTYPE html>
        <html lang="{lang}"><head><meta charset="{charset}">
        <title>{html.escape(title)} | {site}</title>
        <style>body{{font-family:sans-serif}} .nav li{{display:inline}}</style>
        <script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments)}}gtag('js',new Date());</script>
        </head><body>
        <div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. <a href="/privacy">Privacy policy</a> <button>Accept all</button></div>
        <header><a class="logo" href="/">{site}</a><nav><ul class="nav">{nav}</ul></nav>
        <form class="search"><input name="q" placeholder="Search"></form></header>
        <main><article>
        <h1>{html.escape(title)}</h1>
        <div class="byline">Posted on <time datetime="{date}">{date}</time> by the editors</div>
        {body}
        </article>
        <div class="share">Share: <a href="#">Twitter</a> <a href="#">Facebook</a> <a href="#">LinkedIn</a></div>
        <section class="comments"><h3>3 comments</h3><div class="comment">Great post, thanks!</div><div class="comment">Very helpful.</div></section>
        </main>
        <aside class="sidebar"><h3>Related posts</h3><ul>{related}</ul>
        <h3>Subscribe</h3><p>Get the newsletter every week.</p></aside>
        <footer><p>&copy; 2026 {site}. All rights reserved.</p><a href="/terms">Terms of use</a> | <a href="/privacy">Privacy</a></footer>
        <script src="/static/app.js"></script>
        </body></html>
        """)


def _spam_page(rng: random.Random, site: str) -> str:
    kind = rng.randrange(3)
    if kind == 0:  # keyword soup
        words = " ".join(rng.choice(SPAM_WORDS) for _ in range(300))
        body = f"<p>{words}</p>"
    elif kind == 1:  # the same lines again and again
        line = f"<p>{rng.choice(SPAM_WORDS).title()} {rng.choice(SPAM_WORDS)} here! Click now!</p>"
        body = line * 60
    else:  # placeholder text and a link farm
        body = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>" + "".join(
            f'<a href="https://{rng.choice(SPAM_WORDS)}{i}.example.biz/">{rng.choice(SPAM_WORDS)} {i}</a><br>' for i in range(80))
    return f"<html><head><title>{rng.choice(SPAM_WORDS)} {rng.choice(SPAM_WORDS)}</title></head><body>{body}</body></html>"


def _edit(paragraphs: list[str], rng: random.Random) -> list[str]:
    """A mirror's copy: one paragraph dropped or a sentence tweaked."""
    out = list(paragraphs)
    if len(out) > 3 and rng.random() < 0.5:
        out.pop(rng.randrange(len(out)))
    i = rng.randrange(len(out))
    out[i] = out[i].replace(" the ", " this ", 1)
    return out


def _record(warc_type: str, uri: str | None, date: datetime, payload: bytes, content_type: str, extra: dict | None = None) -> bytes:
    record_id = f"<urn:uuid:{uuid.UUID(bytes=hashlib.md5(uri.encode() + warc_type.encode() + payload[:64]).digest() if uri else bytes(16))}>"
    headers = {
        "WARC-Type": warc_type,
        "WARC-Record-ID": record_id,
        "WARC-Date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if uri:
        headers["WARC-Target-URI"] = uri
    headers.update(extra or {})
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(payload))
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return gzip.compress(head.encode() + payload + b"\r\n\r\n", mtime=0)


def _http_response(body: bytes, content_type: str, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nServer: nginx\r\n\r\n"
    return head.encode("latin-1") + body


def write_sample_warc(path: str | Path, seed: int = 0, articles: int = 80, duplicates: int = 12, spam: int = 10) -> dict:
    """Write the demo crawl to `path` (a `.warc.gz`); returns what was planted."""
    rng = random.Random(seed)
    prose = _prose_articles()
    rng.shuffle(prose)
    prose = prose[:articles]
    start = datetime(2026, 5, 1, tzinfo=timezone.utc)
    pages: list[tuple[str, bytes, str]] = []  # (url, http payload, content type of the payload)
    planted = {"articles": 0, "near_duplicates": 0, "spam": 0, "other_languages": 0, "blocklisted": 0, "non_html": 0}

    for i, (title, paragraphs) in enumerate(prose):
        site = SITES[i % len(SITES)]
        slug = "-".join(title.lower().split())[:40] or f"page-{i}"
        body = _boilerplate_page(title, paragraphs[:12], site, rng).encode("utf-8")
        pages.append((f"https://{site}/{slug}", _http_response(body, "text/html; charset=utf-8"), "html"))
        planted["articles"] += 1
    for j in range(duplicates):
        title, paragraphs = prose[j * 3 % len(prose)]
        site = f"mirror{j % 3}.example.info"
        body = _boilerplate_page(title, _edit(paragraphs[:12], rng), site, rng).encode("utf-8")
        pages.append((f"https://{site}/copy/{j}", _http_response(body, "text/html; charset=utf-8"), "html"))
        planted["near_duplicates"] += 1
    for k in range(spam):
        site = f"{rng.choice(SPAM_WORDS)}-{rng.choice(SPAM_WORDS)}.example.biz"
        pages.append((f"http://{site}/index{k}.html", _http_response(_spam_page(rng, site).encode(), "text/html"), "html"))
        planted["spam"] += 1
    for lang, (charset, title, paragraphs) in OTHER_LANGUAGES.items():
        body = _boilerplate_page(title, paragraphs, f"{lang}.example.org", rng, lang=lang, charset=charset)
        pages.append((f"https://{lang}.example.org/article", _http_response(body.encode(charset), f"text/html; charset={charset}"), "html"))
        planted["other_languages"] += 1
    # a URL on datatrove's blocklist of adult words, with otherwise ordinary content
    title, paragraphs = prose[-1]
    body = _boilerplate_page(title, paragraphs[:6], "xxx-porn.example.com", rng).encode()
    pages.append(("https://xxx-porn.example.com/video/1", _http_response(body, "text/html"), "html"))
    planted["blocklisted"] += 1
    for url, ctype, payload in [
        ("https://docs-digest.example.org/static/app.js", "application/javascript", b"console.log('hi');"),
        ("https://docs-digest.example.org/logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
        ("https://docs-digest.example.org/feed.json", "application/json", b'{"items": []}'),
    ]:
        pages.append((url, _http_response(payload, ctype), "other"))
        planted["non_html"] += 1
    rng.shuffle(pages)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        info = b"software: lmforge demo sample\r\nformat: WARC File Format 1.0\r\n"
        f.write(_record("warcinfo", None, start, info, "application/warc-fields", {"WARC-Filename": path.name}))
        for n, (url, payload, _kind) in enumerate(pages):
            date = start + timedelta(seconds=7 * n)
            request = f"GET / HTTP/1.1\r\nHost: {url.split('/')[2]}\r\nUser-Agent: lmforge-demo\r\n\r\n".encode()
            f.write(_record("request", url, date, request, "application/http; msgtype=request"))
            f.write(_record("response", url, date, payload, "application/http; msgtype=response",
                            {"WARC-Payload-Digest": "sha1:" + hashlib.sha1(payload).hexdigest()}))
        # a revisit of the first page, as crawlers write for unchanged content
        url = pages[0][0]
        f.write(_record("revisit", url, start + timedelta(days=1), b"HTTP/1.1 304 Not Modified\r\n\r\n",
                        "application/http; msgtype=response",
                        {"WARC-Profile": "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest"}))
    tmp.replace(path)
    planted["records"] = 2 + 2 * len(pages)
    return planted
