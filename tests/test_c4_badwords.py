"""C4's bad-words filter: the reason fires and stays quiet, its options do what datatrove's do,
the shipped lists are LDNOOBW's, the trie matcher accepts what datatrove's regex accepts, and
`corpus process --c4-badwords` runs it (C4's recipe) while FineWeb's default leaves it out."""

from __future__ import annotations

import json
import pickle
import random
import re
from importlib import resources

import pytest
from datatrove.data import Document

from lmforge.corpus.filters import C4_BADWORDS, C4BadWordsConfig, C4BadWordsFilter, FilterConfig, fineweb_filters
from lmforge.corpus.filters.c4_badwords import BADWORDS_LANGUAGES, badwords, badwords_regex, trie_pattern
from tests.conftest import shared_path


def decide(flt, text, lang="en"):
    return flt.filter(Document(text=text, id="0", metadata={"language": lang}))


def test_c4_badwords_fires_on_a_whole_word_and_not_inside_one():
    flt = C4BadWordsFilter()
    assert decide(flt, "A page about PORN links.") == (False, C4_BADWORDS)  # lowercased, whole word
    assert decide(flt, "2 girls 1 cup") == (False, C4_BADWORDS)  # an entry with spaces
    assert decide(flt, "The Essex assessment passed the classic test.") is True  # 'ass', 'sex' inside words
    assert decide(flt, "Scunthorpe United won.") is True
    assert decide(flt, "Sexo", lang="en") == (False, C4_BADWORDS)  # every entry of the language's list


def test_c4_badwords_languages_without_spaces_match_inside_words():
    flt = C4BadWordsFilter()
    assert decide(flt, "这是三级片网站", lang="zh") == (False, C4_BADWORDS)
    # the allow-list: 性 is a common subword in Chinese, "sm" in Japanese
    assert decide(flt, "性能很好", lang="zh") is True
    assert "性" not in badwords("zh") and "sm" not in badwords("ja")


def test_c4_badwords_keep_fraction_and_seed_follow_numpy_draws():
    import numpy as np

    flt = C4BadWordsFilter(keep_fraction=0.5, seed=7)
    kept = [decide(flt, "porn") is True for _ in range(200)]
    assert kept == [u < 0.5 for u in np.random.default_rng(7).uniform(size=200)]  # datatrove's draws
    assert flt.stats["document_kept_with_badwords"].total == sum(kept)
    assert flt.stats["documents_with_badwords_en"].total == 200
    assert all(decide(C4BadWordsFilter(keep_fraction=1.0), "porn") is True for _ in range(5))


def test_c4_badwords_missing_language_raises_or_passes():
    with pytest.raises(ValueError, match="no list for \"an\".*fail-on-missing-language"):
        decide(C4BadWordsFilter(), "porn", lang="an")
    assert decide(C4BadWordsFilter(fail_on_missing_language=False), "porn", lang="an") is True
    unlabelled = Document(text="porn", id="0")  # no language: default_language
    assert C4BadWordsFilter().filter(unlabelled) == (False, C4_BADWORDS)
    assert C4BadWordsFilter(default_language="de").filter(unlabelled) is True


def test_c4_badwords_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="keep_fraction=1.5 is not a fraction"):
        C4BadWordsConfig(keep_fraction=1.5)
    with pytest.raises(ValueError, match="no list for an, gl.*--no-c4-badwords-fail-on-missing-language"):
        C4BadWordsConfig().check_languages(["en", "an", "gl"])
    C4BadWordsConfig(fail_on_missing_language=False).check_languages(["an"])


def test_shipped_lists_are_ldnoobw_at_datatroves_pins():
    en = (resources.files("lmforge.corpus.filters") / "ldnoobw" / "en.txt").read_text(encoding="utf-8")
    assert en.splitlines()[:3] == ["2g1c", "2 girls 1 cup", "acrotomophilia"]
    assert len(en.splitlines()) == 377  # commit 25e679f, the English list C4 and datatrove pin
    for lang in BADWORDS_LANGUAGES:
        assert badwords(lang), lang
    from datatrove.pipeline.filters.c4_filters import _BADWORDS_LANGS

    assert sorted(_BADWORDS_LANGS) == sorted(BADWORDS_LANGUAGES)


def test_trie_matcher_accepts_what_datatroves_regex_accepts():
    assert trie_pattern(["ab", "abc", "b"]) == "(?:ab(?:c)?|b)"
    rng = random.Random(0)
    for lang in ("en", "de", "zh"):
        words = sorted(badwords(lang))
        if lang == "zh":
            reference = re.compile("|".join(re.escape(w) for w in words))
        else:
            reference = re.compile(r"(?:\W|^)({})(?:\W|$)".format("|".join(re.escape(w) for w in words)))
        pieces = words + ["x", "a", "_", "-", " ", ".", "é", "9", "the", "ass", "hole", "\n"]
        for _ in range(3000):
            text = rng.choice(["", " ", "_", "-"]).join(rng.choice(pieces) for _ in range(rng.randint(1, 5))).lower()
            assert (reference.search(text) is None) == (badwords_regex(lang).search(text) is None), (lang, text)


def test_c4_badwords_is_c4s_recipe_not_finewebs():
    names = [type(step).__name__ for step in fineweb_filters()]
    assert "C4BadWordsFilter" not in names
    names = [type(step).__name__ for step in fineweb_filters(FilterConfig(c4_badwords=C4BadWordsConfig()))]
    assert names.index("C4QualityFilter") + 1 == names.index("C4BadWordsFilter")
    assert FilterConfig(c4_badwords={"keep_fraction": 0.1}).c4_badwords.keep_fraction == 0.1
    # the steps travel to worker processes (local workers, Ray, Slurm) pickled: the seeded
    # generator travels with them, the compiled lists stay behind (module cache)
    flt = C4BadWordsFilter(keep_fraction=0.5, seed=3)
    clone = pickle.loads(pickle.dumps(flt))
    assert [decide(clone, "porn") for _ in range(20)] == [decide(flt, "porn") for _ in range(20)]
    assert len(pickle.dumps(flt)) < 5000


def test_c4_badwords_agree_with_datatrove_on_real_documents():
    """datatrove's filter on the same list files (its download pointed at them): same calls on
    the C4 documents (all kept: C4 was released after this filter) and the Wikipedia articles."""
    import datatrove.pipeline.filters.c4_filters as c4_filters

    texts = [json.loads(line)["text"] for line in shared_path("text", "c4-300-docs.jsonl").open(encoding="utf-8")]
    texts += [t for t in shared_path("text", "wikipedia-30-articles.txt").read_text(encoding="utf-8").splitlines() if t.strip()]
    folder = resources.files("lmforge.corpus.filters") / "ldnoobw"
    original = c4_filters.cached_asset_path_or_download
    c4_filters.cached_asset_path_or_download = lambda url, **kw: str(folder / (url.rsplit("/", 1)[1] + ".txt"))
    try:
        theirs = c4_filters.C4BadWordsFilter()
        ours = C4BadWordsFilter()
        mine = [decide(ours, t) is True for t in texts]
        ref = [decide(theirs, t) is True for t in texts]
    finally:
        c4_filters.cached_asset_path_or_download = original
    assert mine == ref
    assert all(mine[:300])  # C4's own documents pass C4's bad-words rule
    assert not all(mine[300:])


def test_corpus_process_c4_badwords_flags(tmp_path):
    from click.testing import CliRunner

    from lmforge.cli import main

    warc = shared_path("warc", "wget-2024-homepages.warc.gz")
    out = tmp_path / "c4"
    result = CliRunner().invoke(main, ["corpus", "process", str(warc), "-o", str(out), "--no-progress", "--keep-rejected",
                                       "--c4-filter-no-terminal-punct", "--c4-badwords"])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())["summary"]
    assert stats["dropped"][C4_BADWORDS] == 2  # two of the 22 English home pages
    assert len(list((out / "rejected" / C4_BADWORDS).rglob("*.jsonl.zst"))) >= 1
    # the filter's options need its switch; a kept language with no list is refused up front
    result = CliRunner().invoke(main, ["corpus", "process", str(warc), "-o", str(tmp_path / "x"), "--c4-badwords-seed", "3"])
    assert result.exit_code == 2 and "--c4-badwords-seed needs --c4-badwords" in result.output
    result = CliRunner().invoke(main, ["corpus", "process", str(warc), "-o", str(tmp_path / "y"), "--c4-badwords",
                                       "--languages", "en,an"])
    assert result.exit_code == 1 and "no list for an" in result.output and "Traceback" not in result.output
