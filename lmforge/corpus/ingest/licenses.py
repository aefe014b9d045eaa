"""Which licence a repository or source archive carries, as SPDX identifiers.

Three kinds of evidence, strongest first:

1. licence files at the root (`LICENSE`, `LICENCE`, `COPYING`, `UNLICENSE`, with any suffix:
   `LICENSE.md`, `LICENSE-MIT`, `COPYING.LESSER`): an `SPDX-License-Identifier:` line in them,
   else their text matched against the phrases that identify each common licence
   (`match_license_text`: "Permission is hereby granted, free of charge" is MIT, "Redistribution
   and use in source and binary forms" is BSD, 3-clause when it has the "Neither the name"
   clause, ...). Several licence files must all be allowed (a repository with `LICENSE` (MIT)
   and `COPYING` (GPL-3.0) is kept only if GPL-3.0 is allowed too).
2. package metadata, when no licence file says: `PKG-INFO` / `METADATA` (`License-Expression:`,
   `License:`, `Classifier: License :: OSI Approved :: ...`), `package.json` (`"license"`),
   `Cargo.toml`, `pyproject.toml` and `setup.cfg` (`license = ...`).
3. per file: an `SPDX-License-Identifier:` in a file's first lines overrides the repository's
   licence for that file (a GPL-2.0 file inside an MIT repository is that file's licence).

A phrase matcher, not a classifier: it reads the texts of ~15 licences that cover nearly all
of GitHub (MIT, BSD-2/3, Apache-2.0, ISC, 0BSD, Unlicense, CC0, Zlib, BSL-1.0, GPL-2/3,
LGPL-2.1/3, AGPL-3, MPL-2.0, EPL, PSF) and returns None for anything else, which the code
source drops as `license_unknown`. The `license-expression` package was not needed: SPDX
expressions here are split on OR/AND only (`MIT OR Apache-2.0` is allowed when either side is).
"""

from __future__ import annotations

import json
import re

#: licences `corpus ingest code` keeps by default: RedPajama's MIT, BSD and Apache, plus the
#: licences as permissive as MIT (ISC, 0BSD, MIT-0, Zlib, BSL-1.0) and public-domain grants
#: (Unlicense, CC0-1.0). "BSD" is a BSD licence whose clause count no file told.
PERMISSIVE = ("MIT", "MIT-0", "BSD", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "ISC", "0BSD",
              "Unlicense", "CC0-1.0", "Zlib", "BSL-1.0")

#: (SPDX id, phrases that must all appear), first match wins: LGPL and AGPL before GPL (their
#: texts name the GPL), ISC before 0BSD (0BSD is ISC without the notice clause), BSD-3 before BSD-2. Phrases are matched lower-cased with
#: whitespace collapsed.
_TEXT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AGPL-3.0", ("gnu affero general public license",)),
    ("LGPL-3.0", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1", ("gnu lesser general public license", "version 2.1")),
    ("LGPL-2.0", ("gnu library general public license",)),
    ("GPL-3.0", ("gnu general public license", "version 3")),
    ("GPL-2.0", ("gnu general public license", "version 2")),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("EPL-2.0", ("eclipse public license", "2.0")),
    ("EPL-1.0", ("eclipse public license",)),
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("PSF-2.0", ("python software foundation license",)),
    ("BSL-1.0", ("boost software license",)),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("CC0-1.0", ("cc0 1.0 universal",)),
    ("MIT-0", ("permission is hereby granted, free of charge", "without restriction", "without requiring attribution")),
    ("MIT", ("permission is hereby granted, free of charge, to any person obtaining a copy",)),
    ("ISC", ("permission to use, copy, modify, and",
             "distribute this software for any purpose with or without fee is hereby granted",
             "provided that the above copyright notice and this permission notice appear in all copies")),
    ("0BSD", ("permission to use, copy, modify, and/or distribute this software for any purpose with or without fee is hereby granted",
              "the software is provided \"as is\" and the author disclaims all warranties")),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "neither the name")),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "may not be used to endorse or promote")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
    ("Zlib", ("this software is provided 'as-is', without any express or implied warranty", "altered source versions must be plainly marked")),
)

#: short names in package metadata and classifiers -> SPDX id (keys lower-cased, without
#: spaces, dashes, dots, underscores and the words "license"/"licence"/"the")
_ALIASES: dict[str, str] = {
    "mit": "MIT", "expat": "MIT", "mitlicense": "MIT", "mit0": "MIT-0",
    "bsd": "BSD", "bsdlicense": "BSD", "newbsd": "BSD-3-Clause", "modifiedbsd": "BSD-3-Clause", "bsd3": "BSD-3-Clause",
    "bsd3clause": "BSD-3-Clause", "3clausebsd": "BSD-3-Clause", "bsd2": "BSD-2-Clause", "bsd2clause": "BSD-2-Clause",
    "simplifiedbsd": "BSD-2-Clause", "freebsd": "BSD-2-Clause", "2clausebsd": "BSD-2-Clause", "0bsd": "0BSD",
    "apache": "Apache-2.0", "apache2": "Apache-2.0", "apache20": "Apache-2.0", "apachesoftware": "Apache-2.0",
    "apachev2": "Apache-2.0", "apachev20": "Apache-2.0", "asl2": "Apache-2.0", "asl20": "Apache-2.0",
    "isc": "ISC", "iscl": "ISC", "unlicense": "Unlicense", "cc0": "CC0-1.0", "cc010": "CC0-1.0", "cc010universal": "CC0-1.0",
    "publicdomain": "Unlicense", "zlib": "Zlib", "zliblibpng": "Zlib", "bsl10": "BSL-1.0", "boostsoftware": "BSL-1.0", "boost": "BSL-1.0",
    "gpl": "GPL", "gnugpl": "GPL", "gnugeneralpublic": "GPL", "gplv2": "GPL-2.0", "gpl2": "GPL-2.0", "gpl20": "GPL-2.0",
    "gnugpl2": "GPL-2.0", "gnugeneralpublicv2": "GPL-2.0", "gnugeneralpublicv2(gplv2)": "GPL-2.0", "gpl20only": "GPL-2.0",
    "gpl20orlater": "GPL-2.0", "gnugeneralpublicv2orlater(gplv2+)": "GPL-2.0", "gplv2+": "GPL-2.0",
    "gplv3": "GPL-3.0", "gpl3": "GPL-3.0", "gpl30": "GPL-3.0", "gnugpl3": "GPL-3.0", "gnugplv3": "GPL-3.0", "gnugeneralpublicv3": "GPL-3.0",
    "gnugeneralpublicv3(gplv3)": "GPL-3.0", "gpl30only": "GPL-3.0", "gpl30orlater": "GPL-3.0", "gplv3+": "GPL-3.0",
    "gnugeneralpublicv3orlater(gplv3+)": "GPL-3.0",
    "lgpl": "LGPL", "gnulgpl": "LGPL", "gnulessergeneralpublic": "LGPL", "gnulibraryorlessergeneralpublic(lgpl)": "LGPL",
    "lgplv2": "LGPL-2.1", "lgpl21": "LGPL-2.1", "lgplv21": "LGPL-2.1", "lgpl21only": "LGPL-2.1", "lgpl21orlater": "LGPL-2.1",
    "gnulessergeneralpublicv2(lgplv2)": "LGPL-2.1", "gnulessergeneralpublicv2orlater(lgplv2+)": "LGPL-2.1",
    "lgplv3": "LGPL-3.0", "lgpl3": "LGPL-3.0", "lgpl30": "LGPL-3.0", "lgpl30only": "LGPL-3.0", "lgpl30orlater": "LGPL-3.0",
    "gnulessergeneralpublicv3(lgplv3)": "LGPL-3.0", "gnulessergeneralpublicv3orlater(lgplv3+)": "LGPL-3.0",
    "agpl": "AGPL-3.0", "agplv3": "AGPL-3.0", "agpl3": "AGPL-3.0", "agpl30": "AGPL-3.0", "agpl30only": "AGPL-3.0",
    "agpl30orlater": "AGPL-3.0", "gnuafferogeneralpublicv3": "AGPL-3.0",
    "mpl": "MPL-2.0", "mpl2": "MPL-2.0", "mpl20": "MPL-2.0", "mozillapublic20(mpl20)": "MPL-2.0", "mozillapublic20": "MPL-2.0",
    "epl": "EPL-1.0", "epl10": "EPL-1.0", "epl20": "EPL-2.0", "psf": "PSF-2.0", "psf20": "PSF-2.0", "python": "PSF-2.0",
    "pythonsoftwarefoundation": "PSF-2.0",
}

#: file names (lower-cased, before any suffix) that hold a licence text
_LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|unlicense)([-_.].*)?$", re.IGNORECASE)
#: metadata files read for a licence when no licence file says
METADATA_FILES = ("PKG-INFO", "METADATA", "package.json", "Cargo.toml", "pyproject.toml", "setup.cfg")
_SPDX = re.compile(r"SPDX-License-Identifier:\s*([^\n*]+?)\s*(?:\*/|-->|$)", re.MULTILINE)


def is_license_file(name: str) -> bool:
    """`LICENSE`, `LICENCE.md`, `COPYING.LESSER`, `UNLICENSE`, `LICENSE-APACHE`, ... (a base name)."""
    return bool(_LICENSE_FILE.match(name))


def _key(name: str) -> str:
    key = re.sub(r"\b(the|licen[cs]e[sd]?|version|or later|only)\b", "", name.lower())
    key = re.sub(r"[^a-z0-9+]", "", key)
    return re.sub(r"v(?=\d)", "", key).rstrip("+")


_KEYED = {_key(alias): spdx for alias, spdx in _ALIASES.items()}


def normalize(name: str) -> str | None:
    """An SPDX id (or a known short name) -> its SPDX id; None when unknown.

    `normalize("Apache 2.0") -> "Apache-2.0"`, `normalize("GNU GPL 3") -> "GPL-3.0"`,
    `normalize("GPL-2.0-or-later") -> "GPL-2.0"`, `normalize("BSD License") -> "BSD"`.
    """
    name = name.strip().strip("\"'")
    if not name:
        return None
    exact = {spdx.lower(): spdx for spdx, _ in _TEXT_RULES} | {p.lower(): p for p in PERMISSIVE}
    base = re.sub(r"(-only|-or-later|\+)$", "", name.strip(), flags=re.IGNORECASE)
    if base.lower() in exact:
        return exact[base.lower()]
    found = _KEYED.get(_key(name)) or _KEYED.get(_key(base))
    if found is None and "(" in name:  # classifier names: "GNU General Public License v3 (GPLv3)"
        outer, _, inner = name.partition("(")
        found = normalize(inner.rstrip(")")) or normalize(outer)
    return found


def parse_expression(expression: str) -> tuple[str, list[str]] | None:
    """`MIT OR Apache-2.0` -> ("OR", ["MIT", "Apache-2.0"]); a single id -> ("AND", [id]); None
    when any part is unknown. `WITH` exceptions are ignored (`GPL-2.0 WITH Classpath-exception-2.0`
    is GPL-2.0); parentheses are flattened (mixed AND/OR reads as AND: the stricter)."""
    text = re.sub(r"\bWITH\s+\S+", "", expression.replace("(", " ").replace(")", " "), flags=re.IGNORECASE)
    text = re.sub(r"\s+/\s+", " OR ", text)  # "MIT / Apache-2.0", as Cargo used to write it
    has_or = re.search(r"\bOR\b", text, re.IGNORECASE) is not None
    has_and = re.search(r"\bAND\b", text, re.IGNORECASE) is not None
    parts = [p for p in re.split(r"\s+(?:OR|AND)\s+", text.strip(), flags=re.IGNORECASE) if p.strip()]
    ids = [normalize(p) for p in parts]
    if not ids or any(i is None for i in ids):
        return None
    return ("OR" if has_or and not has_and else "AND"), ids  # type: ignore[return-value]


def match_license_text(text: str) -> str | None:
    """The SPDX id of a licence text (a LICENSE file), or None: an SPDX line in it first, then the
    phrases of `_TEXT_RULES`. `match_license_text("Permission is hereby granted, free of charge,
    to any person obtaining a copy ...") -> "MIT"`."""
    spdx = _SPDX.search(text[:4000])
    if spdx:
        parsed = parse_expression(spdx.group(1))
        if parsed:
            return " OR ".join(parsed[1]) if parsed[0] == "OR" else " AND ".join(parsed[1])
    flat = re.sub(r"\s+", " ", text[:20000].lower()).replace("\u201c", '"').replace("\u201d", '"')
    for spdx_id, phrases in _TEXT_RULES:
        if all(p in flat for p in phrases):
            return spdx_id
    return None


def file_spdx(text: str) -> str | None:
    """The `SPDX-License-Identifier:` expression in a source file's first 30 lines, or None."""
    head = "\n".join(text[:4000].splitlines()[:30])
    m = _SPDX.search(head)
    return m.group(1).strip() if m else None


def from_metadata(name: str, text: str) -> str | None:
    """A licence expression from a package metadata file (`METADATA_FILES`), or None."""
    base = name.rsplit("/", 1)[-1]
    if base in ("PKG-INFO", "METADATA"):
        head = text.split("\n\n", 1)[0]  # the headers; the long description follows a blank line
        m = re.search(r"^License-Expression:\s*(.+)$", head, re.MULTILINE)
        if m and parse_expression(m.group(1)):
            return m.group(1).strip()
        classifiers = [normalize(c.strip().rsplit("::", 1)[-1]) for c in
                       re.findall(r"^Classifier:\s*License\s*::\s*(.+)$", head, re.MULTILINE)]
        classifiers = [c for c in classifiers if c]
        if classifiers:
            return " OR ".join(dict.fromkeys(classifiers))
        m = re.search(r"^License:\s*(.+)$", head, re.MULTILINE)
        if m and m.group(1).strip().upper() not in ("UNKNOWN", ""):
            value = m.group(1).strip()
            return value if parse_expression(value) else match_license_text(value)
        return None
    if base == "package.json":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        value = data.get("license") if isinstance(data, dict) else None
        if isinstance(value, dict):
            value = value.get("type")
        return value if isinstance(value, str) and parse_expression(value) else None
    # Cargo.toml, pyproject.toml, setup.cfg: `license = "MIT"` / `license = {text = "MIT"}` / `license = MIT`
    m = re.search(r"^license\s*=\s*(?:\{\s*text\s*=\s*)?[\"']?([^\"'\n}]+)", text, re.MULTILINE)
    if m and parse_expression(m.group(1)):
        return m.group(1).strip()
    return None


def canonical(expression: str | None) -> str | None:
    """An expression with every id in SPDX form (`MIT OR Apache 2.0` -> `MIT OR Apache-2.0`)."""
    if expression is None:
        return None
    parsed = parse_expression(expression)
    if parsed is None:
        return None
    op, ids = parsed
    return f" {op} ".join(dict.fromkeys(ids))


def allowed(expression: str | None, keep: set[str]) -> bool:
    """Whether a licence expression is allowed by `keep` (SPDX ids): OR needs one allowed id,
    AND needs all. A generic family id (`GPL`, `LGPL`, `BSD`) is allowed when it or any of its
    versions is in `keep`."""
    parsed = parse_expression(expression) if expression else None
    if parsed is None:
        return False
    op, ids = parsed

    def ok(spdx_id: str) -> bool:
        return spdx_id in keep or any(k.startswith(spdx_id + "-") for k in keep if spdx_id in ("GPL", "LGPL", "BSD"))

    return any(map(ok, ids)) if op == "OR" else all(map(ok, ids))
