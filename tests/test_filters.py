"""FineWeb filter chain: each reason fires on a tiny document and stays quiet on a good one,
configs fail with messages that name the fix, and decisions agree with datatrove's filters."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import pytest
from datatrove.data import Document

from lmforge.corpus.base import REJECTED_KEY
from lmforge.corpus.filters import (
    C4_CURLY_BRACKET,
    C4_LOREM_IPSUM,
    C4_TOO_FEW_SENTENCES,
    EMPTY_DOCUMENT,
    FINEWEB_DUPLICATE_LINE_CHARS,
    FINEWEB_FEW_PUNCTUATED_LINES,
    FINEWEB_MANY_NEWLINES,
    FINEWEB_MANY_SHORT_LINES,
    GOPHER_AVG_WORD_TOO_LONG,
    GOPHER_AVG_WORD_TOO_SHORT,
    GOPHER_DUPLICATE_LINE_CHARS,
    GOPHER_DUPLICATE_LINES,
    GOPHER_DUPLICATE_NGRAMS,
    GOPHER_DUPLICATE_PARAGRAPH_CHARS,
    GOPHER_DUPLICATE_PARAGRAPHS,
    GOPHER_LONG_DOC,
    GOPHER_SHORT_DOC,
    GOPHER_TOO_FEW_ALPHA_WORDS,
    GOPHER_TOO_FEW_STOP_WORDS,
    GOPHER_TOO_MANY_BULLETS,
    GOPHER_TOO_MANY_ELLIPSIS,
    GOPHER_TOO_MANY_END_ELLIPSIS,
    GOPHER_TOO_MANY_HASHES,
    GOPHER_TOP_NGRAM,
    URL_BANNED_SUBWORD,
    URL_BANNED_WORD,
    URL_BLOCKED_DOMAIN,
    URL_BLOCKED_URL,
    URL_MISSING,
    URL_SOFT_BANNED_WORDS,
    C4QualityConfig,
    C4QualityFilter,
    FilterConfig,
    FineWebQualityConfig,
    FineWebQualityFilter,
    GopherQualityConfig,
    GopherQualityFilter,
    GopherRepetitionConfig,
    GopherRepetitionFilter,
    LanguageFilter,
    URLFilter,
    URLFilterConfig,
    fineweb_filters,
    url_filter,
)
from lmforge.corpus.filters.text import count_sentences, split_words

# A clean page: passes every filter with FineWeb's defaults.
GOOD = (
    "The river town of Millbrook sits at the bend where two valleys meet.\n"
    "Its first settlers built a mill there in 1820, and the village grew around the water wheel.\n"
    "Today the old mill is a museum that shows how grain was ground by hand and by water.\n\n"
    "Visitors can walk along the towpath to see the locks that once carried barges to the coast.\n"
    "A small market opens every Saturday with bread, cheese and vegetables from nearby farms.\n"
    "In the autumn the town holds a festival with music, games and a long procession of lanterns.\n"
)


def doc(text: str, **metadata) -> Document:
    return Document(text=text, id="0", metadata=dict(metadata))


def run(flt, text: str, **metadata):
    return flt.filter(doc(text, **metadata))


@pytest.mark.parametrize(
    "flt", [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()], ids=str
)
def test_good_document_passes(flt):
    assert run(flt, GOOD) is True


# --- text splitting --------------------------------------------------------------------------


def test_split_words_follows_spacy_english():
    assert split_words("Mr. Smith don't pay US$ 1,000.50 for well-known e.g. UTF-8 items...") == (
        "Mr.", "Smith", "do", "n't", "pay", "US$", "1,000.50", "for", "well", "-", "known", "e.g.", "UTF-8", "items", "...",
    )  # fmt: skip


def test_count_sentences():
    assert count_sentences("One. Two! Three? Dr. Who e.g. stays.") == 4
    assert count_sentences("no end mark") == 1
    assert count_sentences("One. Two. Three. Four.", stop_at=2) == 2


# --- Gopher repetition -------------------------------------------------------------------------

REP = GopherRepetitionConfig


@pytest.mark.parametrize(
    "text, config, reason",
    [
        ("Alpha para.\n\nBeta para.\n\nAlpha para.\n\nAlpha para.", REP(), GOPHER_DUPLICATE_PARAGRAPHS),
        ("A" * 50 + "\n\nb\n\nc\n\nd\n\ne\n\n" + "A" * 50, REP(dup_para_frac=None), GOPHER_DUPLICATE_PARAGRAPH_CHARS),
        ("one\ntwo\none\none", REP(dup_para_frac=None, dup_para_char_frac=None), GOPHER_DUPLICATE_LINES),
        (
            "x" * 40 + "\nb\nc\nd\ne\nf\n" + "x" * 40,
            REP(dup_para_frac=None, dup_para_char_frac=None, dup_line_frac=None),
            GOPHER_DUPLICATE_LINE_CHARS,
        ),
    ],
)
def test_gopher_repetition_line_and_paragraph_reasons(text, config, reason):
    assert run(GopherRepetitionFilter(config), text) == (False, reason)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_gopher_top_ngram_fires(n):
    text = " ".join(["buy cheap shoes now"] * 30)
    assert run(GopherRepetitionFilter(top_n_grams=((n, 0.18),), dup_n_grams=()), text) == (
        False,
        GOPHER_TOP_NGRAM.format(n=n),
    )
    assert GOPHER_TOP_NGRAM.format(n=n) == f"gopher_top_{n}_gram"


@pytest.mark.parametrize("n", [5, 6, 7, 8, 9, 10])
def test_gopher_duplicate_ngrams_fire(n):
    text = " ".join(f"w{i}" for i in range(12)) + " " + " ".join(f"w{i}" for i in range(12))
    assert run(GopherRepetitionFilter(top_n_grams=(), dup_n_grams=((n, 0.1),)), text) == (
        False,
        GOPHER_DUPLICATE_NGRAMS.format(n=n),
    )


def test_gopher_repetition_quiet_on_varied_text():
    text = " ".join(f"w{i}" for i in range(200))
    assert run(GopherRepetitionFilter(), text) is True


def test_gopher_repetition_empty():
    assert run(GopherRepetitionFilter(), "") == (False, EMPTY_DOCUMENT)


# --- Gopher quality ----------------------------------------------------------------------------

VARIED = " ".join(f"{w}{i}" for i, w in enumerate(["house", "garden", "river", "window"] * 15))


@pytest.mark.parametrize(
    "text, config, reason",
    [
        ("The cat and the dog.", GopherQualityConfig(), GOPHER_SHORT_DOC),
        (GOOD, GopherQualityConfig(min_doc_words=10, max_doc_words=20), GOPHER_LONG_DOC),
        (" ".join(["ab"] * 60) + " the and", GopherQualityConfig(), GOPHER_AVG_WORD_TOO_SHORT),
        (" ".join(["abcdefghijkl"] * 60) + " the and", GopherQualityConfig(), GOPHER_AVG_WORD_TOO_LONG),
        (GOOD + " #tag" * 30, GopherQualityConfig(), GOPHER_TOO_MANY_HASHES),
        (GOOD + " wait..." * 30, GopherQualityConfig(), GOPHER_TOO_MANY_ELLIPSIS),
        ("\n".join(f"- the item {i} is with the best house" for i in range(20)), GopherQualityConfig(), GOPHER_TOO_MANY_BULLETS),
        (
            "\n".join(f"the story {i} of the house continues with more words…" for i in range(20)),
            GopherQualityConfig(),
            GOPHER_TOO_MANY_END_ELLIPSIS,
        ),
        (GOOD + " 1234" * 60, GopherQualityConfig(max_symbol_word_ratio=None), GOPHER_TOO_FEW_ALPHA_WORDS),
        (VARIED, GopherQualityConfig(), GOPHER_TOO_FEW_STOP_WORDS),
    ],
)
def test_gopher_quality_reasons(text, config, reason):
    assert run(GopherQualityFilter(config), text) == (False, reason)


def test_gopher_quality_stop_words_are_enough():
    assert run(GopherQualityFilter(), VARIED + " the and") is True


def test_gopher_quality_empty():
    assert run(GopherQualityFilter(), "") == (False, EMPTY_DOCUMENT)


# --- C4 ----------------------------------------------------------------------------------------


def test_c4_lorem_ipsum():
    assert run(C4QualityFilter(), GOOD + "Lorem ipsum dolor sit amet.\n") == (False, C4_LOREM_IPSUM)
    assert run(C4QualityFilter(filter_lorem_ipsum=False), GOOD + "Lorem ipsum dolor sit amet.\n") is True


def test_c4_curly_bracket():
    assert run(C4QualityFilter(), GOOD + "function f() { return the value; }\n") == (False, C4_CURLY_BRACKET)
    assert run(C4QualityFilter(), GOOD + "a {\n") is True  # a line of < 3 words is dropped first


def test_c4_too_few_sentences():
    assert run(C4QualityFilter(), "One short sentence here.\nAnother one follows it.") == (False, C4_TOO_FEW_SENTENCES)
    assert run(C4QualityFilter(min_num_sentences=2), "One short sentence here.\nAnother one follows it.") is True


def test_c4_rewrites_lines():
    d = doc(
        GOOD
        + "Please enable JavaScript to view this page properly.\n"
        + "Read our privacy policy before you continue.\n"
        + "Menu\n"
        + "The mill was rebuilt in 1901.[1] It still turns.[citation needed]\n"
    )
    flt = C4QualityFilter()
    assert flt.filter(d) is True
    assert "JavaScript" not in d.text and "privacy" not in d.text and "\nMenu" not in d.text
    assert d.text.endswith("The mill was rebuilt in 1901. It still turns.")
    assert flt.stats["c4_line_dropped_javascript"].total == 1
    assert flt.stats["c4_line_dropped_policy"].total == 1


def test_c4_terminal_punct_off_in_fineweb_on_in_c4():
    text = GOOD + "A line without an end mark\n"
    d = doc(text)
    assert C4QualityFilter().filter(d) is True and d.text.endswith("end mark")
    d = doc(text)
    assert C4QualityFilter(filter_no_terminal_punct=True).filter(d) is True and not d.text.endswith("end mark")


# --- FineWeb -----------------------------------------------------------------------------------


def test_fineweb_few_punctuated_lines():
    text = "\n".join(f"This line number {i} has no end mark at all" for i in range(10))
    assert run(FineWebQualityFilter(), text) == (False, FINEWEB_FEW_PUNCTUATED_LINES)
    assert run(FineWebQualityFilter(line_punct_exclude_zero=True), text) is True


def test_fineweb_many_short_lines():
    text = "\n".join(f"Short line {i}." for i in range(20)) + "\n" + GOOD
    assert run(FineWebQualityFilter(), text) == (False, FINEWEB_MANY_SHORT_LINES)


def test_fineweb_duplicate_line_chars():
    line = "Subscribe to our newsletter for the latest updates and offers.\n"
    assert run(FineWebQualityFilter(), GOOD + line + line) == (False, FINEWEB_DUPLICATE_LINE_CHARS)


def test_fineweb_many_newlines():
    text = "\n".join(f"Antidisestablishmentarianism{i} pneumonoultramicroscopic." for i in range(30))
    assert run(FineWebQualityFilter(), text) == (False, FINEWEB_MANY_NEWLINES)
    assert run(FineWebQualityFilter(new_line_ratio=0.5), text) is True


def test_fineweb_empty():
    assert run(FineWebQualityFilter(), " \n\n ") == (False, EMPTY_DOCUMENT)


# --- URL ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin_url_filter() -> URLFilter:
    return URLFilter()


@pytest.mark.parametrize(
    "url, reason",
    [
        ("https://www.0-1avsex.com/page", URL_BLOCKED_DOMAIN),  # on datatrove's domain list
        ("https://sub.0-1sex.com:8080/x", URL_BLOCKED_DOMAIN),  # subdomain of a listed domain
        (
            "http://0149614511.strimbat.fr/porno-anal-escort-granville-faire-sa-salope-baise-une-vache-video-gratuite"
            "-x-escort-girl-auxerre",
            URL_BLOCKED_URL,
        ),
        ("https://example.com/PORN/1", URL_BANNED_WORD),
        ("https://example.com/ass-babes", URL_SOFT_BANNED_WORDS),
        ("https://example.com/2girls1cupfans", URL_BANNED_SUBWORD),
    ],
)
def test_url_builtin_lists(builtin_url_filter, url, reason):
    assert run(builtin_url_filter, "x", url=url) == (False, reason)


@pytest.mark.parametrize("url", ["https://en.wikipedia.org/wiki/Mill", "https://example.com/assessment", "https://example.com/babes"])
def test_url_builtin_lists_keep_clean_urls(builtin_url_filter, url):
    assert run(builtin_url_filter, "x", url=url) is True


def test_url_extra_lists_without_builtin():
    flt = URLFilter(
        use_builtin_lists=False,
        extra_domains=["spam.example"],
        extra_urls=["good.org/bad-page"],
        extra_words=["casino"],
        extra_subwords=["freemoney"],
        extra_soft_words=["cheap", "pills"],
    )
    assert run(flt, "x", url="http://a.b.spam.example/") == (False, URL_BLOCKED_DOMAIN)
    assert run(flt, "x", url="https://good.org/bad-page") == (False, URL_BLOCKED_URL)
    assert run(flt, "x", url="https://good.org/casino/") == (False, URL_BANNED_WORD)
    assert run(flt, "x", url="https://good.org/cheap-pills") == (False, URL_SOFT_BANNED_WORDS)
    assert run(flt, "x", url="https://good.org/get-free-money") == (False, URL_BANNED_SUBWORD)
    assert run(flt, "x", url="https://good.org/cheap-flights") is True
    assert run(flt, "x", url="https://notspam.example/") is True


def test_url_missing_kept_by_default_or_dropped():
    assert run(URLFilter(use_builtin_lists=False), "x") is True
    assert run(URLFilter(use_builtin_lists=False, drop_missing_url=True), "x") == (False, URL_MISSING)


def test_url_filter_pickles_without_lists(builtin_url_filter):
    assert len(pickle.dumps(builtin_url_filter)) < 5000


# --- configs and the chain ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GopherRepetitionConfig(dup_line_frac=1.5), "dup_line_frac"),
        (lambda: GopherRepetitionConfig(top_n_grams=((0, 0.2),)), "top_n_grams"),
        (lambda: GopherQualityConfig(min_doc_words=200, max_doc_words=100), "swap"),
        (lambda: GopherQualityConfig(min_alpha_words_ratio=2), "min_alpha_words_ratio"),
        (lambda: GopherQualityConfig(stop_words="the"), "stop_words"),
        (lambda: C4QualityConfig(min_num_sentences=-3), "min_num_sentences"),
        (lambda: FineWebQualityConfig(short_line_thr=-0.1), "short_line_thr"),
        (lambda: FineWebQualityConfig(stop_chars="."), "stop_chars"),
        (lambda: URLFilterConfig(soft_word_threshold=0), "soft_word_threshold"),
        (lambda: URLFilterConfig(extra_domains="spam.com"), "extra_domains"),
    ],
)
def test_config_errors_name_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_config_and_overrides_are_exclusive():
    with pytest.raises(TypeError):
        GopherQualityFilter(GopherQualityConfig(), min_doc_words=10)


def test_c4_minus_one_disables_like_datatrove():
    assert C4QualityConfig(min_num_sentences=-1).min_num_sentences is None


def test_fineweb_filters_order_and_sections():
    steps = fineweb_filters()
    assert [type(s) for s in steps] == [
        LanguageFilter,
        GopherRepetitionFilter,
        GopherQualityFilter,
        C4QualityFilter,
        FineWebQualityFilter,
    ]
    assert [type(s) for s in fineweb_filters(FilterConfig(language=None, c4=None))] == [
        GopherRepetitionFilter,
        GopherQualityFilter,
        FineWebQualityFilter,
    ]
    assert isinstance(url_filter(), URLFilter) and url_filter(FilterConfig(url=None)) is None


def test_filter_config_accepts_dicts():
    config = FilterConfig(gopher_quality={"min_doc_words": 10}, language={"languages": ["de"]})
    assert config.gopher_quality.min_doc_words == 10 and config.language.languages == ["de"]
    with pytest.raises(TypeError, match="c4"):
        FilterConfig(c4=GopherQualityConfig())


def test_chain_runs_and_keeps_rejected_with_reason():
    steps = fineweb_filters(keep_rejected=True)
    docs = iter([doc(GOOD), doc("Dies ist ein deutscher Satz über das Wetter, das heute sehr schön ist.")])
    for step in steps:
        docs = step.run(docs)
    out = list(docs)
    assert REJECTED_KEY not in out[0].metadata and out[0].metadata["language"] == "en"
    assert out[1].metadata[REJECTED_KEY] == "language_not_wanted"
    clones = pickle.loads(pickle.dumps(steps))
    assert len(clones) == len(steps)


# --- agreement with datatrove ------------------------------------------------------------------


def _load_benchmark():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "filters.py"
    spec = importlib.util.spec_from_file_location("lmforge_bench_filters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_agreement_with_datatrove(shared_data):
    """Keep/drop agreement with datatrove 0.10.1's filters (same FineWeb thresholds; datatrove
    splits words with spaCy) on the 300 C4 documents + 30 Wikipedia articles.

    Measured: Gopher repetition 0.9970 (1 of 330: a 5-gram repeat spaCy tokens see and ours
    do not), Gopher quality 0.9909 (3 docs: our tokens hold a few more bracket/quote tokens, so
    the alpha-word ratio dips under 0.8), C4 quality 1.0, FineWeb quality 1.0.
    """
    pytest.importorskip("spacy", reason="datatrove's filters need spaCy (pip install spacy)")
    bench = _load_benchmark()
    result = bench.compare(bench.load_texts(shared_data))
    for name, stats in result.items():
        assert stats["agreement"] >= 0.985, (name, stats)
    assert result["c4_quality"]["agreement"] >= 0.997
    assert result["fineweb_quality"]["agreement"] >= 0.997
