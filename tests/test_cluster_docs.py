"""docs/cluster.md is followed by newcomers command by command: every `lmforge …` line in its
code blocks names a command that exists and only flags that command takes, and every
`[execution]` key it shows is one a recipe accepts. (Running them takes a cluster: the Slurm
ones were run on the one-node Slurm of its section 6, tests/test_slurm.py.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from lmforge.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "cluster.md"


def doc_commands() -> list[list[str]]:
    """The argument lists after `lmforge` of every command line in the page's code blocks
    (continuation lines joined; after `--no-python` under torchrun too)."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", DOC.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split(" #")[0].strip().removeprefix("$ ")
            match = re.search(r"(?:^|--no-python\s+|&&\s+|; do\s+|until\s+)lmforge (.*)", line)
            if match:
                rest = re.split(r";|\|\||&&|>|\"$", match.group(1))[0]
                commands.append(shlex.split(rest.replace('"', "'"), posix=True))
    return commands


def resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """The click command that `lmforge ARGS` runs, and the arguments left for it."""
    command: click.Command = main
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, f"`lmforge … {args[0]}`: no such command"
        command, args = sub, args[1:]
    return command, args


def test_every_lmforge_command_in_docs_cluster_md_has_the_flags_it_is_given():
    commands = doc_commands()
    assert len(commands) > 20  # the corpus, Ray, S3, shards, pipeline and training examples
    for args in commands:
        command, rest = resolve(list(args))
        known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for token in rest:
            flag = token.split("=")[0]
            if flag.startswith("--") or re.fullmatch(r"-[a-zA-Z]", flag):
                assert flag in known, f"docs/cluster.md: `lmforge {' '.join(args)}`: {flag} is not an option of {command.name}"


def test_every_execution_key_in_docs_cluster_md_is_one_a_recipe_takes(tmp_path):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    from lmforge.pipelines.recipe import _execution_section

    tables = [block for block in re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S) if "[execution]" in block]
    assert tables
    for table in tables:
        config = _execution_section(tomllib.loads(table)["execution"], "[execution]", workers=1)
        assert config.executor in ("local", "ray", "slurm")


@pytest.mark.parametrize("line, expected", [
    ("lmforge corpus status /shared/x     # tasks", ["corpus", "status", "/shared/x"]),
    ('srun torchrun --nnodes 2 --no-python lmforge train -m /shared/mix.json -p d24', ["train", "-m", "/shared/mix.json", "-p", "d24"]),
])
def test_command_lines_are_read_as_a_shell_reads_them(line, expected, monkeypatch, tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"```\n{line}\n```\n")
    monkeypatch.setattr("test_cluster_docs.DOC", page)
    assert doc_commands() == [expected]
