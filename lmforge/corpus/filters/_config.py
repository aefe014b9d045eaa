"""Small checks shared by the filter configs: each error names the field and the fix."""

from __future__ import annotations


def check_fraction(name: str, value: float | None, default: float, allow_none: bool = True) -> None:
    if value is None:
        if not allow_none:
            raise ValueError(f"{name} must be set; FineWeb uses {default}")
        return
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value} is not a fraction in [0, 1]; FineWeb uses {default} (None disables it)")


def check_positive(name: str, value: float | None, default: float, allow_none: bool = True) -> None:
    if value is None:
        if not allow_none:
            raise ValueError(f"{name} must be set; FineWeb uses {default}")
        return
    if value <= 0:
        raise ValueError(f"{name}={value} must be positive; FineWeb uses {default} (None disables it)")


def check_ngram_pairs(name: str, pairs, default) -> tuple[tuple[int, float], ...]:
    try:
        pairs = tuple((int(n), float(frac)) for n, frac in pairs)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (n, max_fraction) pairs such as {default}, got {pairs!r}") from None
    for n, frac in pairs:
        if n < 1 or not 0.0 <= frac <= 1.0:
            raise ValueError(f"{name}: ({n}, {frac}) needs n >= 1 and a fraction in [0, 1]; FineWeb uses {default}")
    return pairs


def build_config(cls, config, overrides: dict):
    """`config` as given, or `cls(**overrides)`; both at once is an error."""
    if config is not None and overrides:
        raise TypeError(f"pass either a {cls.__name__} or keyword overrides, not both")
    return config if config is not None else cls(**overrides)
