#!/bin/bash
# Rebuild lmforge/corpus/filters/ldnoobw/ (the C4 bad-words lists) from npm's `naughty-words`
# package, LDNOOBW's own npm release of its lists (CC-BY-4.0): English from 1.0.2 (byte for
# byte the commit 25e679f that C4 and datatrove pin), the 27 other languages from 1.1.0 (the 28
# languages of commit 5faf2ba, datatrove's pin for them). Needs npm and python3; no git, no
# GitHub.
#
#   scripts/fetch-ldnoobw.sh           # rewrites the lists; `git diff` shows any change
set -euo pipefail
DEST=$(cd "$(dirname "$0")/.." && pwd)/lmforge/corpus/filters/ldnoobw
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for version in 1.0.2 1.1.0; do
    mkdir -p "$WORK/$version"
    (cd "$WORK/$version" && npm pack --silent "naughty-words@$version" >/dev/null && tar xzf ./*.tgz 2>/dev/null)
done
python3 - "$WORK" "$DEST" <<'PY'
import json, sys
work, dest = sys.argv[1:]
langs = ("ar cs da de en eo es fa fi fil fr fr-CA-u-sd-caqc hi hu it ja kab ko nl no pl pt ru sv th tlh "
         "tr zh").split()
for lang in langs:
    version = "1.0.2" if lang == "en" else "1.1.0"
    words = json.load(open(f"{work}/{version}/package/{lang}.json", encoding="utf-8"))
    with open(f"{dest}/{lang}.txt", "w", encoding="utf-8") as f:
        f.write("".join(w + "\n" for w in words))
    print(f"{lang:16s} {len(words):4d} entries (naughty-words {version})")
PY
cp "$WORK/1.1.0/package/LICENSE" "$DEST/LICENSE.txt"
