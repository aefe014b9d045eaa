"""One regex from a list of literal strings, folded into a trie.

CPython's `re` tries every branch of an alternation at every position, so a failing search of
`w1|w2|...|w377` costs one test per word per position; the trie tries one branch per distinct
character (~1-2 us on a 30-character string where 40 words cost ~10-40 us). Used by the
extractor's class/id gates and by C4's bad-words filter.
"""

from __future__ import annotations

import re


def trie_pattern(words, prefixes: bool = False) -> str:
    """A regex (uncompiled) matching exactly the strings of `words`:
    ["ab", "abc", "b"] -> `(?:ab(?:c)?|b)`.

    `prefixes=True`: only *whether* one of the words occurs counts, so where a word ends the
    longer words it begins are dropped: ("post", "post-body", "page") -> `p(?:age|ost)`.
    """
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        if prefixes and "" in node:  # a word ends here: a match already
            return ""
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)
