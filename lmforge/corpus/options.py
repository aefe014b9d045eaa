"""Click options generated from config dataclasses, so every threshold is a flag.

`dataclass_options(FilterConfig)` adds one option per field of each nested config
(`--gopher-quality-min-doc-words 50`), with the field's default and its docstring comment as
help; `build_dataclass(FilterConfig, kwargs)` turns the parsed values back into the config.
A nested config that is off by default (`c4_badwords: C4BadWordsConfig | None = None`) also
gets a switch (`--c4-badwords`) that turns it on; its own options need the switch.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import typing
from typing import Any

import click

from lmforge.cli import Finite


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


def _dataclass_of(hint):
    """The dataclass a field holds (`X` or `X | None`), else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _off_sections(cls, path: tuple[str, ...] = ()):
    """(path, field) of every nested config whose default is None: off unless switched on."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        nested = _dataclass_of(hints.get(f.name, f.type))
        if nested is None:
            continue
        if f.default is None:
            yield path + (f.name,), f
        yield from _off_sections(nested, path + (f.name,))


def _leaves(cls, path: tuple[str, ...] = ()):
    """(path of attribute names, field, type, owner class) for every scalar field."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = _dataclass_of(hints.get(f.name, f.type)) or hints.get(f.name, f.type)
        if dataclasses.is_dataclass(hint):
            yield from _leaves(hint, path + (f.name,))
        else:
            yield path + (f.name,), f, hint, cls


class OptionalNumber(click.ParamType):
    """An int or float, or `none`/`off` to disable a threshold that may be None."""

    def __init__(self, kind):
        self.kind = kind
        self.name = f"{kind.__name__}|none"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.strip().lower() in ("none", "off", "null"):
            return _DISABLED
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a {self.kind.__name__} (or 'none' to disable)", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number (or 'none' to disable)", param, ctx)
        return number


class Pairs(click.ParamType):
    """`n:fraction,n:fraction` for thresholds given per n-gram size."""

    name = "N:FRAC,..."

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            pairs = tuple((int(n), float(f)) for n, f in (item.split(":") for item in value.split(",") if item.strip()))
        except ValueError:
            self.fail(f"{value!r}: write pairs as n:fraction, e.g. 2:0.2,3:0.18", param, ctx)
        if not all(math.isfinite(f) for _, f in pairs):
            self.fail(f"{value!r}: every fraction must be a finite number", param, ctx)
        return pairs


#: marker for a threshold switched off on the command line (becomes None in the config)
_DISABLED = "__disabled__"


def _is_optional(hint) -> bool:
    return type(None) in typing.get_args(hint)


def _scalar_type(hint):
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        hint = args[0]
        origin = typing.get_origin(hint)
    if hint in (int, float, bool, str):
        return hint
    if origin is tuple and typing.get_args(hint) and typing.get_origin(typing.get_args(hint)[0]) is tuple:
        return "pairs"
    if origin in (list, tuple) or hint in (list, tuple):
        return "list"
    return None


def dataclass_options(cls, exclude: tuple[str, ...] = ()):
    """Decorator adding a click option for every scalar field of `cls` (recursively)."""

    def decorate(func):
        for path, f, hint, owner in reversed(list(_leaves(cls))):
            name = "-".join(path).replace("_", "-")
            if name in exclude or any(name.startswith(prefix + "-") for prefix in exclude):
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
            elif kind == "pairs":
                shown = ",".join(f"{n}:{v}" for n, v in (default or ()))
                opt = click.option(f"--{name}", param, type=Pairs(), default=None,
                                   help=f"{help_text} [default: {shown}]")
            elif kind == "list":
                shown = ",".join(map(str, default or []))
                opt = click.option(f"--{name}", param, default=None, metavar="A,B,...",
                                   help=f"{help_text} [default: {shown or 'none'}]")
            else:
                ptype = OptionalNumber(kind) if _is_optional(hint) and kind in (int, float) else Finite() if kind is float else kind
                opt = click.option(f"--{name}", param, type=ptype, default=None,
                                   help=f"{help_text} [default: {default}]")
            func = opt(func)
        for path, f in _off_sections(cls):
            name = "-".join(path).replace("_", "-")
            if name in exclude or any(name.startswith(prefix + "-") for prefix in exclude):
                continue
            help_text = f.metadata.get("help") or _field_docs(cls).get(f.name, "")
            func = click.option(f"--{name}/--no-{name}", "cfg__" + "__".join(path), default=None,
                                help=f"{help_text} [default: off]")(func)
        return func

    return decorate


def build_dataclass(cls, values: dict[str, Any]):
    """Build `cls` from the `cfg__*` values click parsed; unset options keep defaults."""
    def build(klass, prefix):
        kwargs = {}
        klass_hints = typing.get_type_hints(klass)
        for f in dataclasses.fields(klass):
            hint = klass_hints.get(f.name, f.type)
            if _dataclass_of(hint):
                hint = _dataclass_of(hint)
                if f.default is None and not values.get(f"cfg__{prefix}{f.name}"):  # a section that is off
                    given = sorted(k for k, v in values.items() if k.startswith(f"cfg__{prefix}{f.name}__") and v is not None)
                    if given:
                        flag = "--" + f"{prefix}{f.name}".replace("__", "-").replace("_", "-")
                        shown = ", ".join("--" + k[5:].replace("__", "-").replace("_", "-") for k in given)
                        raise ValueError(f"{shown} needs {flag} (that filter is off unless {flag} is given)")
                    kwargs[f.name] = None
                    continue
                kwargs[f.name] = build(hint, f"{prefix}{f.name}__")
                continue
            key = f"cfg__{prefix}{f.name}"
            if values.get(key) is None:
                continue
            value = values[key]
            if value == _DISABLED:
                value = None
            elif _scalar_type(hint) == "list" and isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            kwargs[f.name] = value
        return klass(**kwargs)

    return build(cls, "")
