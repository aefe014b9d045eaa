"""Click options generated from config dataclasses, so every threshold is a flag.

`dataclass_options(FilterConfig)` adds one option per field of each nested config
(`--gopher-quality-min-doc-words 50`), with the field's default and its docstring comment as
help; `build_dataclass(FilterConfig, kwargs)` turns the parsed values back into the config.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any

import click


def _field_docs(cls) -> dict[str, str]:
    """Field comments written as `#: text` above a field, the style used in lmforge configs."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    docs, pending = {}, []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        m = re.match(r"(\w+)\s*:", stripped)
        if m and pending:
            docs[m.group(1)] = " ".join(pending)
        if not stripped.startswith("#"):
            pending = []
    return docs


def _leaves(cls, path: tuple[str, ...] = ()):
    """(path of attribute names, field, type, owner class) for every scalar field."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name, f.type)
        if dataclasses.is_dataclass(hint):
            yield from _leaves(hint, path + (f.name,))
        else:
            yield path + (f.name,), f, hint, cls


def _scalar_type(hint):
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        hint = args[0]
        origin = typing.get_origin(hint)
    if hint in (int, float, bool, str):
        return hint
    if origin in (list, tuple) or hint in (list, tuple):
        return "list"
    return None


def dataclass_options(cls, exclude: tuple[str, ...] = ()):
    """Decorator adding a click option for every scalar field of `cls` (recursively)."""

    def decorate(func):
        for path, f, hint, owner in reversed(list(_leaves(cls))):
            name = "-".join(path).replace("_", "-")
            if name in exclude:
                continue
            kind = _scalar_type(hint)
            if kind is None:
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            )
            help_text = f.metadata.get("help") or _field_docs(owner).get(f.name, "")
            param = "cfg__" + "__".join(path)
            if kind is bool:
                opt = click.option(f"--{name}/--no-{name}", param, default=None, show_default=False,
                                   help=f"{help_text} [default: {'on' if default else 'off'}]")
            elif kind == "list":
                shown = ",".join(map(str, default or []))
                opt = click.option(f"--{name}", param, default=None, metavar="A,B,...",
                                   help=f"{help_text} [default: {shown or 'none'}]")
            else:
                opt = click.option(f"--{name}", param, type=kind, default=None,
                                   help=f"{help_text} [default: {default}]")
            func = opt(func)
        return func

    return decorate


def build_dataclass(cls, values: dict[str, Any]):
    """Build `cls` from the `cfg__*` values click parsed; unset options keep defaults."""
    def build(klass, prefix):
        kwargs = {}
        klass_hints = typing.get_type_hints(klass)
        for f in dataclasses.fields(klass):
            hint = klass_hints.get(f.name, f.type)
            if dataclasses.is_dataclass(hint):
                kwargs[f.name] = build(hint, f"{prefix}{f.name}__")
                continue
            value = values.get(f"cfg__{prefix}{f.name}")
            if value is None:
                continue
            if _scalar_type(hint) == "list" and isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            kwargs[f.name] = value
        return klass(**kwargs)

    return build(cls, "")
