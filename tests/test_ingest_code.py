"""`corpus ingest code` on real source archives (tests/data/ingest/code, see its NOTICE.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from datatrove.data import Document

from lmforge.cli import main
from lmforge.corpus.ingest import code, licenses
from lmforge.corpus.ingest.base import ExactDedup
from lmforge.documents import find_document_files, iter_documents

DATA = Path(__file__).parent / "data" / "ingest" / "code"
SIX = DATA / "six-1.16.0.tar.gz"


def run(*args: str):
    return CliRunner().invoke(main, ["corpus", "ingest", "code", *args, "--no-progress"], catch_exceptions=True)


def docs_of(out: Path, folder: str = "documents") -> list:
    return [doc for path in find_document_files([out / folder]) for doc in iter_documents(path)]


def tar_member(archive: Path, name: str) -> str:
    with tarfile.open(archive) as tar:
        return tar.extractfile(name).read().decode()


def unpack(archive: Path, dest: Path, keep=lambda name: True) -> Path:
    """The archive's files (those `keep` accepts) under dest/, top folder included; returns it."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and keep(m.name)]
        tar.extractall(dest, members=members, filter="data")
    return dest / members[0].name.split("/")[0]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """Every sample archive through the CLI with default settings (one run, shared)."""
    out = tmp_path_factory.mktemp("code") / "out"
    result = run(str(DATA), "-o", str(out), "--keep-rejected")
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "stats.json").read_text()), docs_of(out)


@pytest.mark.parametrize("name, expected", [
    ("six-1.16.0.tar.gz", "MIT"), ("itsdangerous-2.1.2.tar.gz", "BSD-3-Clause"),
    ("sortedcontainers-2.4.0.tar.gz", "Apache-2.0"), ("iniconfig-2.0.0.tar.gz", "MIT"),
    ("html2text-2020.1.16-cut.tar.gz", "GPL-3.0"), ("mustache-4.2.0.tgz", "MIT"),
])
def test_licence_of_each_real_archive(name, expected):
    found = code.scan_license(code.open_tree(str(DATA / name)))
    assert found.expression == expected
    assert found.source and licenses.is_license_file(found.source)


def test_licence_from_package_metadata_when_no_licence_file(tmp_path):
    # sortedcontainers without its LICENSE: PKG-INFO's "License: Apache 2.0" and its classifier say it
    folder = unpack(DATA / "sortedcontainers-2.4.0.tar.gz", tmp_path, keep=lambda n: not n.endswith("/LICENSE"))
    found = code.scan_license(code.open_tree(str(folder)))
    assert (found.expression, found.source) == ("Apache-2.0", "PKG-INFO")


def test_dual_licence_pointer_file_reads_as_or(tmp_path):
    # packaging-23.2's layout: LICENSE points at LICENSE.APACHE and LICENSE.BSD ("either")
    repo = tmp_path / "dual"
    repo.mkdir()
    (repo / "LICENSE").write_text("This software is made available under the terms of *either* of the licenses\n"
                                  "found in LICENSE.APACHE or LICENSE.BSD. Contributions to this software is made\n"
                                  "under the terms of *both* these licenses.\n")
    (repo / "LICENSE.APACHE").write_text(tar_member(DATA / "sortedcontainers-2.4.0.tar.gz", "sortedcontainers-2.4.0/LICENSE"))
    (repo / "LICENSE.BSD").write_text(tar_member(DATA / "itsdangerous-2.1.2.tar.gz", "itsdangerous-2.1.2/LICENSE.rst"))
    assert code.scan_license(code.open_tree(str(repo))).expression == "Apache-2.0 OR BSD-3-Clause"
    (repo / "LICENSE").write_text("Some terms of our own, written by us.\n")  # an unreadable licence: unknown
    assert code.scan_license(code.open_tree(str(repo))).expression is None


def test_isc_is_not_read_as_0bsd():
    # pexpect-4.8.0's LICENSE grant (ISC); 0BSD is the same grant without the notice clause
    isc = ("Permission to use, copy, modify, and/or distribute this software for any\n    purpose with or without fee is hereby "
           "granted, provided that the above\n    copyright notice and this permission notice appear in all copies.\n\n"
           '    THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES\n')
    assert licenses.match_license_text(isc) == "ISC"
    assert licenses.match_license_text(isc.replace(", provided that the above\n    copyright notice and this permission notice "
                                                   "appear in all copies", "")) == "0BSD"


@pytest.mark.parametrize("text, expected", [
    ("Apache 2.0", "Apache-2.0"), ("GNU GPL 3", "GPL-3.0"), ("GPL-2.0-or-later", "GPL-2.0"),
    ("GNU Lesser General Public License v2 or later (LGPLv2+)", "LGPL-2.1"), ("BSD License", "BSD"),
    ("ISC License (ISCL)", "ISC"), ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"), ("Some Licence", None),
])
def test_licence_names_normalise_to_spdx(text, expected):
    assert licenses.normalize(text) == expected


def test_licence_expressions():
    keep = set(licenses.PERMISSIVE)
    assert licenses.allowed("MIT OR GPL-3.0", keep)
    assert not licenses.allowed("MIT AND GPL-3.0", keep)
    assert not licenses.allowed("GPL-3.0", keep)
    assert not licenses.allowed(None, keep)
    assert code.Config(licenses=["unknown"]).keeps(None)
    assert code.Config(licenses=["any"]).keeps("AGPL-3.0") and not code.Config(licenses=["any"]).keeps(None)


def test_gpl_excluded_by_default_and_counts_add_up(default_run):
    _, stats, docs = default_run
    kept = [d for d in docs if "reason" not in d.metadata]
    repos = {d.metadata["repo"] for d in kept}
    assert repos == {"six-1.16.0", "itsdangerous-2.1.2", "sortedcontainers-2.4.0", "iniconfig-2.0.0", "mustache-4.2.0"}
    s = stats["summary"]
    assert s["dropped"]["license_excluded"] == 5  # html2text's code files (its COPYING and PKG-INFO: license_file, not_code)
    assert s["records"] == s["kept"] + sum(s["dropped"].values()) + sum(s["errors"].values())
    assert s["kept"] == len(kept) and s["files"] == 6
    six_py = next(d for d in kept if d.metadata["path"] == "six.py")
    assert six_py.metadata == {"source": "code", "repo": "six-1.16.0", "path": "six.py", "language": "python", "license": "MIT"}
    assert six_py.id == "six-1.16.0/six.py"


def test_licence_header_removed(default_run):
    _, _, docs = default_run
    original = tar_member(SIX, "six-1.16.0/six.py")
    assert original.startswith("# Copyright (c) 2010-2020 Benjamin Peterson")
    six_py = next(d for d in docs if d.metadata.get("path") == "six.py")
    assert six_py.text.startswith('"""Utilities for writing code that runs on Python 2 and 3"""')
    assert original.endswith(six_py.text)
    assert "Permission is hereby granted" not in six_py.text


def test_minified_generated_and_non_code_files_dropped_with_their_reason(default_run):
    out, stats, docs = default_run
    docs = docs + docs_of(out, "rejected")
    dropped = stats["summary"]["dropped"]
    assert dropped["minified"] == 1  # mustache.min.js
    assert dropped["generated"] == 1  # iniconfig's _version.py, "file generated by setuptools_scm"
    assert dropped["license_file"] >= 5 and dropped["binary"] >= 2 and dropped["data_file"] >= 1
    rejected = {d.metadata["path"]: d.metadata["reason"] for d in docs if "reason" in d.metadata}
    assert rejected["src/iniconfig/_version.py"] == "generated"
    assert not any(d.metadata["path"].endswith(".min.js") for d in docs)
    assert code.classify_name("package/mustache.min.js") == (None, code.MINIFIED)
    assert code.classify_name("yarn.lock") == (None, code.LOCKFILE)
    assert code.classify_name("docs/logo.png") == (None, code.BINARY)
    assert code.classify_name("data/x.json") == (None, code.DATA_FILE)
    assert code.classify_name("LICENSE.rst") == (None, code.LICENSE_FILE)
    assert code.classify_name("src/a.C") == ("c++", None) and code.classify_name("Makefile") == ("makefile", None)


@pytest.mark.parametrize("text, reason", [
    ("x = 1\n" + "y" * 1001 + "\n", code.MAX_LINE_LENGTH),
    ("\n".join(["a = " + "b" * 150] * 5), code.MEAN_LINE_LENGTH),
    ("{[(<>)]};\n" * 10 + "a\n", code.ALNUM_FRACTION),
    ("var a=" + "1," * 3000 + "2;", code.MINIFIED),
    ("// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n", code.GENERATED),
    ("   \n\n", code.EMPTY),
])
def test_each_code_filter_reason_fires(text, reason):
    assert code.CodeFilter().filter(Document(text=text, id="x", metadata={})) == (False, reason)


def test_real_code_passes_the_filters():
    text = tar_member(DATA / "sortedcontainers-2.4.0.tar.gz", "sortedcontainers-2.4.0/sortedcontainers/sortedlist.py")
    assert code.CodeFilter().filter(Document(text=text, id="x", metadata={})) is True
    longest, mean, alnum = code.line_stats(text)
    assert longest <= 1000 and mean <= 100 and alnum >= 0.25


def test_header_stripping_keeps_shebang_and_non_licence_comments():
    header = "#!/usr/bin/env python\n# Copyright 2020 A\n# Licensed under the MIT licence\n\nimport os\n"
    assert code.strip_license_header(header, "python") == "#!/usr/bin/env python\nimport os\n"
    plain = "# a helper for the tests\nimport os\n"
    assert code.strip_license_header(plain, "python") == plain
    c_block = "/*\n * Copyright (c) 2001 B\n * SPDX-License-Identifier: MIT\n */\nint x;\n"
    assert code.strip_license_header(c_block, "c") == "int x;\n"
    assert code.strip_license_header("# Copyright\n\n# Title\n", "markdown") == "# Copyright\n\n# Title\n"


def test_exact_duplicates_dropped(tmp_path):
    folder = unpack(SIX, tmp_path)
    shutil.copy(folder / "six.py", folder / "six_copy.py")
    out = tmp_path / "out"
    result = run(str(folder), "-o", str(out))
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["summary"]["dropped"]["duplicate"] == 1
    texts = [d.text for d in docs_of(out)]
    assert len(texts) == len(set(texts))
    step = ExactDedup()
    assert step.filter(Document(text="a", id="1", metadata={})) is True
    assert step.filter(Document(text="a", id="2", metadata={})) == (False, "duplicate")


def _texts(out: Path) -> dict[str, str]:
    return {d.metadata["path"]: d.text for d in docs_of(out)}


def test_zip_git_and_folder_inputs_give_the_tar_output(tmp_path):
    tar_out, zip_out, git_out, dir_out = (tmp_path / n for n in ("tar", "zip", "git", "dir"))
    assert run(str(SIX), "-o", str(tar_out)).exit_code == 0
    zpath = tmp_path / "six-1.16.0.zip"
    with tarfile.open(SIX) as tar, zipfile.ZipFile(zpath, "w") as z:
        for m in tar.getmembers():
            if m.isfile():
                z.writestr(m.name, tar.extractfile(m).read())
    assert run(str(zpath), "-o", str(zip_out)).exit_code == 0
    folder = unpack(SIX, tmp_path / "plain")
    assert run(str(folder), "-o", str(dir_out)).exit_code == 0
    repo = unpack(SIX, tmp_path / "repo")
    (repo / "untracked.py").write_text((repo / "test_six.py").read_text()[:2000])
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "six.py", "setup.py", "LICENSE", "README.rst"], check=True)
    assert run(str(repo), "-o", str(git_out)).exit_code == 0
    expected = _texts(tar_out)
    assert "six.py" in expected and "test_six.py" in expected
    assert _texts(zip_out) == expected
    assert _texts(dir_out) == expected
    assert _texts(git_out) == {k: v for k, v in expected.items() if k in ("six.py", "setup.py", "README.rst")}
    assert {d.metadata["repo"] for d in docs_of(git_out)} == {"six-1.16.0"}


def test_licenses_flag_keeps_gpl_and_rerun_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(DATA / "html2text-2020.1.16-cut.tar.gz", tmp_path)
    args = ["html2text-2020.1.16-cut.tar.gz", "-o", "out", "--licenses", "MIT,GPL-3.0"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "corpus ingest code" in result.output
    docs = docs_of(tmp_path / "out")
    assert docs and {d.metadata["license"] for d in docs} == {"GPL-3.0"}
    assert {d.metadata["path"] for d in docs} >= {"html2text/__init__.py", "setup.py"}
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "documents").iterdir()}
    again = run(*args)  # finished tasks are skipped
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "documents").iterdir()} == written
    status = CliRunner().invoke(main, ["corpus", "status", "out"])
    assert status.exit_code == 0 and "corpus ingest code" in status.output
    refused = run("html2text-2020.1.16-cut.tar.gz", "-o", "out")  # other settings: refused, not mixed
    assert refused.exit_code == 1 and "licenses" in refused.output and "Traceback" not in refused.output


def test_bad_archives_are_counted_not_fatal(tmp_path):
    data = SIX.read_bytes()
    (tmp_path / "cut-1.0.tar.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk-1.0.zip").write_bytes(b"not a zip at all" * 10)
    shutil.copy(DATA / "iniconfig-2.0.0.tar.gz", tmp_path)
    out = tmp_path / "out"
    result = run(str(tmp_path / "cut-1.0.tar.gz"), str(tmp_path / "junk-1.0.zip"), str(tmp_path / "iniconfig-2.0.0.tar.gz"), "-o", str(out))
    assert result.exit_code == 0, result.output
    errors = json.loads((out / "stats.json").read_text())["summary"]["errors"]
    assert errors == {"unreadable_file": 2}  # the licence scan reads each archive first: a cut one fails there
    assert {d.metadata["repo"] for d in docs_of(out)} == {"iniconfig-2.0.0"}


def test_user_mistakes_are_one_line_errors(tmp_path):
    missing = run(str(tmp_path / "nope"), "-o", str(tmp_path / "out"))
    assert missing.exit_code == 1 and "nothing to read" in missing.output and "Traceback" not in missing.output
    (tmp_path / "notes.txt").write_text("x")
    not_archive = run(str(tmp_path / "notes.txt"), "-o", str(tmp_path / "out"))
    assert not_archive.exit_code == 1 and "not a source archive" in not_archive.output
    bad_licence = run(str(SIX), "-o", str(tmp_path / "out"), "--licenses", "MIT,Foo")
    assert bad_licence.exit_code == 2 and "--licenses Foo" in bad_licence.output
    help_text = CliRunner().invoke(main, ["corpus", "ingest", "code", "--help"]).output
    assert "Example:" in help_text and "--max-line-length" in help_text and "--licenses" in help_text


def _read_all(paths: list[str]) -> list[tuple[str, str]]:
    reader = code.Reader(paths, code.Config(), progress=False)
    return [(d.id, d.text) for d in reader.run(None, 0, 1)]


def test_a_tar_too_big_to_buffer_is_streamed_twice_with_the_same_result(monkeypatch):
    buffered = _read_all([str(SIX), str(DATA / "mustache-4.2.0.tgz")])
    monkeypatch.setattr(code, "BUFFER_BYTES", 1)
    assert _read_all([str(SIX), str(DATA / "mustache-4.2.0.tgz")]) == buffered and buffered
