"""benchmarks/devsets.py (truth from a page's structure) and the snippet metric of
benchmarks/extract.py, on small pages written here."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


devsets = _load("devsets")
extract = _load("extract")

PARA = "The installer asks for the keyboard layout before it loads any additional components from the media."
DOCBOOK = f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>6.3. Components</title></head><body>
<div class="navheader"><table><tr><th>Chapter 6. Using the installer</th></tr>
<tr><td><a href="p.html">Prev</a></td></tr></table></div>
<div class="sect1"><h2 class="title">6.3. Components</h2>
<div class="toc"><dl><dt>6.3.1. Setting up the installer</dt></dl></div>
<p>{PARA}
It then continues.</p>
<pre>apt-get   install
  foo</pre>
<div class="note"><p>Network configuration is attempted with DHCP first, and a static address can be entered by hand.</p></div>
<p>When the partitioner finishes, the base system is unpacked onto the new file systems of the disk.</p>
</div>
<div class="navfooter"><table><tr><td>6.2. Overview of the components</td></tr></table></div>
</body></html>""".encode()


def test_docbook_truth_is_the_body_without_navigation(tmp_path):
    path = tmp_path / "ch06s03.html"
    path.write_bytes(DOCBOOK * 1)
    devsets.MIN_MAIN_CHARS, saved = 100, devsets.MIN_MAIN_CHARS
    try:
        page = devsets.docbook_page("f", "p1", "en", "pkg:ch06s03.html", path)
    finally:
        devsets.MIN_MAIN_CHARS = saved
    assert page.html == path.read_bytes()  # raw bytes, as shipped
    lines = page.text.splitlines()
    assert lines[0] == "6.3. Components"
    assert "apt-get install" in lines and "foo" in lines  # <pre> keeps its lines
    assert "Chapter 6. Using the installer" not in page.text  # navheader
    assert "Setting up the installer" not in page.text  # chapter table of contents
    assert PARA + " It then continues." in lines  # source line breaks inside a paragraph collapse
    assert len(page.with_) == 3 and all(len(s.split()) == 8 and s in page.text for s in page.with_)
    assert page.without == ["Chapter 6. Using the installer", "6.2. Overview of the components"]
    assert page.features == {"code", "admonition"}
    assert page.language == "en" and page.declared_language == "en"


def test_declared_language_kept_only_when_the_text_agrees():
    english = "This chapter describes how to configure the network interfaces of the system. " * 5
    assert devsets.confirmed_language("en", english) == "en"
    assert devsets.confirmed_language("ja", english) is None


def test_text_snippets_for_scripts_without_spaces():
    truth = "香港行政长官梁振英在各方压力下就其大宅的违章建筑问题到立法会接受质询并向香港民众道歉\nshort line"
    (snippet,) = devsets.text_with_snippets(truth)
    assert len(snippet) == 14 and snippet in truth


def test_snippet_metric_counts_like_trafilatura():
    page = extract.DevPage("f", "p", None, "", "", ["kept  words here", "lost words"], ["Next page", "Home menu"], None)
    tp, fn, fp, tn = extract.snippet_counts("text with kept words\nhere and a Next page link", page)
    assert (tp, fn, fp, tn) == (1, 1, 1, 1)  # whitespace-normalized substring matches
    assert extract.snippet_counts("", page) == (0, 2, 0, 2)  # empty output: misses, no leaks
    precision, recall, f1 = extract.snippet_prf(3, 1, 1, 5)
    assert (precision, recall) == (0.75, 0.75) and f1 == pytest.approx(0.75)
    assert extract.snippet_prf(0, 2, 0, 2) == (0.0, 0.0, 0.0)


BLOG = f"""<html lang="en"><head><title>A week of rain - Field notes</title></head><body>
<header><ul class="menu"><li><a href="/">Home page</a></li><li><a href="/archive">Archive of posts</a></li></ul></header>
<div class="post">
<h1>A week of rain</h1>
<div class="entry-content">
<p>The river rose two metres in three days and the lower path along the bank was closed to walkers.</p>
<p>{PARA}</p>
<div class="share-buttons"><a href="#">Share on social networks</a></div>
<p>By Sunday the water had gone down and the volunteers cleared the mud from the footbridge again.</p>
</div>
<div id="comments"><p>Great post, thanks for sharing these photos of the river with all of us here!</p></div>
</div>
<footer><p>Copyright Field notes blog</p></footer>
</body></html>""".encode()


def test_web_truth_is_the_cms_body_holding_the_curated_text(monkeypatch):
    monkeypatch.setattr(devsets, "MIN_WEB_CHARS", 100)
    page = devsets.cms_page("web-varied", "p", "en", "pkg:blog.html", BLOG, "The river rose two metres in three days")
    assert page.html == BLOG
    assert page.text.splitlines()[0].startswith("The river rose")  # entry-content, not the wrapper with <h1>
    assert "Share on social" not in page.text and "Great post" not in page.text  # share bar, comments
    assert len(page.with_) == 3 and all(s in page.text for s in page.with_)
    assert "Share on social networks" in page.without and "Archive of posts" in page.without
    assert "Copyright Field notes blog" in page.without
    assert devsets.cms_page("web-varied", "p", "en", "pkg:blog.html", BLOG, "text the page does not hold") is None


MALLARD = """<!DOCTYPE html><html><head><title>Wireless</title></head><body lang="fa" dir="rtl"><main><div class="page">
<header><div class="trails" role="navigation"><a class="trail" href="index.html">راهنمای میزکار گنوم</a></div></header>
<article><div class="hgroup"><h1 class="title">اتصال به شبکهٔ بی‌سیم</h1></div>
<div class="region"><div class="contents">
<p class="p">اگر رایانه‌ای با قابلیت بی‌سیم دارید، می‌توانید به شبکه‌ای بی‌سیم که در برد است وصل شده و به اینترنت دسترسی پیدا کنید.</p>
<p class="p">اگر شبکه با گذرواژه محافظت شده باشد، هنگام درخواست گذرواژه را وارد کرده و روی وصل شدن کلیک کنید تا اتصال برقرار شود.</p>
</div>
<section class="links" role="navigation"><div class="links guidelinks"><h2>اطّلاعات بیش‌تر</h2>
<ul><li><a href="net-wireless.html">شبکه‌سازی بی‌سیم و اینترنت</a></li></ul></div></section>
</div></article>
<footer><div class="credits">پروژهٔ مستندسازی گنوم</div></footer></div></main></body></html>""".encode()


def test_mallard_truth_is_the_article_without_its_link_sections(tmp_path, monkeypatch):
    monkeypatch.setattr(devsets, "MIN_MALLARD_CHARS", 100)
    path = tmp_path / "net-wireless-connect.html"
    path.write_bytes(MALLARD)
    page = devsets.mallard_page("rtl-docs-mallard", "p", "fa", "pkg:x.page", path)
    assert page.text.splitlines()[0] == "اتصال به شبکهٔ بی‌سیم"
    assert "اطّلاعات بیش‌تر" not in page.text and "گنوم" not in page.text  # links section, trail, footer
    assert len(page.with_) == 2 and "اطّلاعات بیش‌تر" in page.without


RECIPE = """<html lang="en"><head><title>Treacle tart</title>
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [{"@type": "WebPage"},
 {"@type": "Recipe", "name": "Treacle tart",
  "recipeIngredient": ["1 3/4 cups all-purpose flour", "1 cup golden syrup, warmed", "salt"],
  "recipeInstructions": [{"@type": "HowToStep", "text": "Rub the butter into the flour until the mixture looks like wet sand and then add the egg."},
   {"@type": "HowToSection", "itemListElement": [{"@type": "HowToStep",
    "text": "Bake the tart in the lower third of the oven for forty minutes until the filling is set."}]}]}]}
</script></head><body>
<nav><ul><li><a href="/">Recipe index</a></li><li><a href="/about">About the author</a></li></ul></nav>
<article><header><p>March 3 by Jane 2 Comments</p></header>
<p>My grandmother made this every Sunday.</p><ul><li>1 3/4 cups <a href="/flour">all-purpose flour</a></li>
<li>1 cup golden syrup, warmed</li><li>salt</li></ul>
<ol><li>Rub the butter into the flour until the mixture looks like wet sand and then add the egg.</li>
<li>Bake the tart in the lower third of the oven for forty minutes until the filling is set.</li></ol>
<div id="comments"><p>Lovely recipe, I made it twice this week already!</p></div></article>
<footer><p>Copyright the food blog</p></footer></body></html>""".encode()


def test_recipe_truth_is_the_pages_own_schema_recipe_scored_by_snippets_only():
    page = devsets.recipe_page("recipe-pages", "r", "pkg:tart.html", RECIPE)
    assert page.text.splitlines() == [
        "1 3/4 cups all-purpose flour", "1 cup golden syrup, warmed", "salt",
        "Rub the butter into the flour until the mixture looks like wet sand and then add the egg.",
        "Bake the tart in the lower third of the oven for forty minutes until the filling is set."]
    assert page.with_ == ["flour until the mixture looks like wet sand", "lower third of the oven for forty minutes",
                          "1 3/4 cups all-purpose flour", "1 cup golden syrup, warmed"]
    # nav, footer, comments; not the post's byline (its status is unknown)
    assert {"Recipe index", "About the author", "Copyright the food blog"} <= set(page.without)
    assert "Lovely recipe, I made it twice this week already!" in page.without
    assert not [w for w in page.without if "Comments" in w]
    assert page.truth_line()["word_f1"] is False
    # extract.py: such a page counts for snippets only, and a family of them has no word F1
    dev = extract.DevPage("recipe-pages", "r", None, RECIPE.decode(), page.text, page.with_, page.without, "en", False)
    families, _ = extract.run_families([dev], repeats=1)
    assert families["recipe-pages"]["lmforge"]["f1"] is None and families["recipe-pages"]["f1_gap"] is None
    assert families["recipe-pages"]["lmforge"]["snippet_recall"] == 1.0


THREAD = """<html lang="en"><head><title>Exhaust rattle - Tribute forum</title></head><body>
<div class="navbar"><a href="/">Forum index</a> <a href="/new">New posts today</a></div>
<table id="posts">""" + "".join(
    f"""<tr><td class="alt2"><div class="userinfo"><a href="/u/{i}">member{i}</a> Join Date: Jan 2005</div></td>
<td><div id="post_message_{i}">{body}</div><div class="signature">My 2005 Tribute with 102k miles</div></td></tr>"""
    for i, body in enumerate([
        "My wife's Tribute has an exhaust rattle at idle that goes away above twenty miles an hour.",
        "Mine did the same thing, the heat shield above the catalytic converter had come loose.",
        "A large hose clamp around the shield fixed it for me in ten minutes, cheap and quiet since.",
    ])) + """</table><div class="pagination"><a href="?page=2">Next page of this thread</a></div></body></html>"""


def test_thread_truth_is_every_post_without_poster_boxes_and_signatures(monkeypatch):
    monkeypatch.setattr(devsets, "MIN_THREAD_CHARS", 100)
    page = devsets.thread_page("forum-threads", "t", "pkg:t.html", THREAD.encode())
    assert page.text.splitlines() == [
        "My wife's Tribute has an exhaust rattle at idle that goes away above twenty miles an hour.",
        "Mine did the same thing, the heat shield above the catalytic converter had come loose.",
        "A large hose clamp around the shield fixed it for me in ten minutes, cheap and quiet since."]
    assert len(page.with_) == 3  # first, middle and last post: a page cut to one post misses two
    assert {"New posts today", "Next page of this thread", "My 2005 Tribute with 102k miles"} <= set(page.without)


PRODUCT = """<html lang="en"><head><title>Velvet bag - Great Music</title></head><body>
<div id="menu"><a href="/">Home</a> <a href="/cart">View your cart</a></div>
<div itemscope itemtype="http://schema.org/Product"><h1 itemprop="name">Velvet Drawstring Bag for Finger Cymbals</h1>
<span itemprop="offers" itemscope itemtype="http://schema.org/Offer"><span itemprop="description">In stock</span></span>
<div itemprop="description">This black velvet bag is perfect to store and carry zills, reeds, picks and more.
It is four inches wide and five and a half inches tall.</div></div>
<div class="related-products"><a href="/p/2">Brass finger cymbals, pair of two</a></div></body></html>"""


def test_product_truth_is_the_pages_own_schema_product_scored_by_snippets_only():
    page = devsets.product_page("product-pages", "p", "pkg:p.html", PRODUCT.encode())
    assert page.text.splitlines()[0] == "Velvet Drawstring Bag for Finger Cymbals"
    assert "In stock" not in page.text  # the Offer's description is not the product's
    assert "Velvet Drawstring Bag for Finger Cymbals" in page.with_ and len(page.with_) == 2
    assert {"View your cart", "Brass finger cymbals, pair of two"} <= set(page.without)
    assert page.truth_line()["word_f1"] is False


def test_blog_truth_is_every_post_body_the_cms_marks(monkeypatch):
    """blog-cms: a front page with two WordPress posts: both `div.entry-content`s in page order,
    minus the share bar inside them; reply forms and comments are not truth, post titles are on
    neither side; a body that is a grid of links is no post."""
    monkeypatch.setattr(devsets, "MIN_BLOG_CHARS", 100)
    second = BLOG.decode().replace("A week of rain", "Spring at last").replace(
        "The river rose two metres in three days", "The first swallows came back on Tuesday morning")
    two = second.replace('<div class="post">', BLOG.decode().split("<body>")[1].split('<div id="comments">')[0]
                         + '<form><p>Leave a reply to this post, your address is never shown</p></form></div><div class="post">', 1)
    page = devsets.blog_page("blog-cms", "b", "pkg:front.html", two.encode())
    lines = page.text.splitlines()
    assert lines[0].startswith("The river rose") and any(x.startswith("The first swallows") for x in lines)
    assert "Share on social" not in page.text and "Great post" not in page.text and "Leave a reply" not in page.text
    assert "Archive of posts" in page.without and "Copyright Field notes blog" in page.without
    assert not any("rain" in w or "Spring" in w for w in page.without)  # post titles: neither side
    links = "".join(f'<a href="/p/{i}">A product with a long name number {i}</a> ' for i in range(30))
    grid = f'<html><body><div class="entry-content"><p>{links}</p></div></body></html>'.encode()
    assert devsets.blog_page("blog-cms", "g", "pkg:grid.html", grid) is None  # a grid of links, not a post
