"""Verifiable rewards: a number after GSM8K's `#### ` marker, compared exactly.

GSM8K's reference answers all end in `#### <number>`; in the 7,473 training answers the number
is an integer in 7,473 cases (32 + 26 + 16 + 3 + 1 + 1 use thousands commas, 3 are
negative). A completion earns reward 1.0 when it states the same number after its own last
`####`, else 0.0: no partial credit, so a model cannot be paid for a nearby guess.

Extraction is lenient about how a number is written (`1,000`, `$18`, `18.`, `18.00`, `-3`,
`3/4`), strict about which number counts (only the one right after the last `####`):

>>> extract_answer("Half of 48 is 24.\\n#### 72")
'72'
>>> extract_answer("#### $1,250.00 dollars")
'1250'
>>> gsm8k_reward("so #### 72", "... #### 72"), gsm8k_reward("72", "#### 72")
(1.0, 0.0)
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from fractions import Fraction
from typing import Callable

from lmforge.errors import UserError

log = logging.getLogger(__name__)

ANSWER_MARKER = "####"
_NUMBER = re.compile(r"[-+]?\$?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?")


def _canonical(text: str) -> str | None:
    """'1,250.00' -> '1250', '3/6' -> '1/2', '-0.50' -> '-1/2'; None if not a number."""
    s = text.replace("$", "").replace(",", "").replace(" ", "")
    try:
        value = Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return str(value)


def extract_answer(text: str) -> str | None:
    """The canonical number after the last `####` in `text`, or None if there is none."""
    if ANSWER_MARKER not in text:
        return None
    tail = text.rsplit(ANSWER_MARKER, 1)[1]
    m = _NUMBER.search(tail[:64])
    if m is None or tail[: m.start()].strip(" :=$*"):  # something other than the number came first
        return None
    return _canonical(m.group())


def gsm8k_reward(completion: str, reference: str) -> float:
    """1.0 if the completion's `#### n` equals the reference's, else 0.0.

    `reference` may be a full GSM8K answer (with its `#### n`) or the bare number.
    """
    want = reference_answer(reference)
    if want is None:
        raise ValueError(f"reference answer has no number to compare with: {reference[-80:]!r}")
    got = extract_answer(completion)
    return 1.0 if got is not None and got == want else 0.0


def reference_answer(reference: str) -> str | None:
    """The number a reference answer asks for (after its last `####`, or the bare number), or
    None when it has none: such a prompt can never be rewarded and is skipped at load time."""
    return extract_answer(reference) if ANSWER_MARKER in reference else _canonical(reference.strip())


def format_reward(completion: str, reference: str) -> float:
    """1.0 when the completion ends in the answer form GSM8K asks for (`#### <number>`), right or
    wrong: a shaping term to add to `gsm8k` with a small weight, never a reward on its own."""
    return 1.0 if extract_answer(completion) is not None else 0.0


#: the registry: name -> reward(completion, reference) -> float
REWARD_FUNCTIONS = {"gsm8k": gsm8k_reward, "format": format_reward}
#: reward name -> whether a completion has the form the reward can score (GSM8K: a number
#: after `####`): `lmforge eval policy` reports this compliance apart from accuracy
FORMAT_CHECKS = {"gsm8k": lambda completion: extract_answer(completion) is not None}
#: reward name -> the check a prompt's reference answer must pass to be usable
REFERENCE_CHECKS = {"gsm8k": lambda reference: reference_answer(reference) is not None}


class RewardSpecError(UserError):
    """A --reward-fn / --reward spec that names no reward, or a plugin that cannot be imported."""


class Reward:
    """A weighted sum of rewards, built from a spec by `resolve_reward`: `reward(completion,
    reference) -> float`. A part that raises (or returns a non-finite number) on a record scores
    0 for it; the failures are counted by part and exception in `errors` and warned about once
    each, so one odd record never stops a run."""

    def __init__(self, spec: str, parts: list[tuple[str, Callable[[str, str], float], float]]):
        self.spec, self.parts = spec, parts
        self.errors: Counter = Counter()

    def __call__(self, completion: str, reference: str) -> float:
        total = 0.0
        for name, fn, weight in self.parts:
            try:
                value = float(fn(completion, reference))
                if not math.isfinite(value):
                    raise ValueError(f"returned {value}")
            except Exception as exc:  # a plugin's failure on one record: scored 0, counted
                key = f"{name}: {type(exc).__name__}"
                if not self.errors[key]:
                    log.warning("reward %s failed on a record (%s: %s); such records score 0 and are counted", name, type(exc).__name__, exc)
                self.errors[key] += 1
                value = 0.0
            total += weight * value
        return total

    def reference_ok(self, reference: str) -> bool:
        """Whether every part can score completions against this reference (checked up front)."""
        for name, fn, _ in self.parts:
            check = REFERENCE_CHECKS.get(name) or getattr(fn, "check_reference", None)
            if check is not None and not check(reference):
                return False
        return True

    def formatted(self, completion: str) -> bool:
        """Whether the completion has the form the reward's parts score (GSM8K: `#### n`)."""
        checks = [FORMAT_CHECKS[name] for name, _, _ in self.parts if name in FORMAT_CHECKS]
        return all(check(completion) for check in checks)


def resolve_reward(spec: str) -> Reward:
    """A `Reward` from a spec: comma-separated parts, each a registry name (`gsm8k`, `format`)
    or a plugin `package.module:function` (a function(completion, reference) -> float, which may
    carry a `check_reference(reference) -> bool` attribute), with an optional `@weight`:

    >>> resolve_reward("gsm8k,format@0.1")("so #### 7", "#### 7")
    1.1
    """
    import importlib

    parts = []
    for item in (p.strip() for p in spec.split(",")):
        if not item:
            continue
        name, _, weight = item.partition("@")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise RewardSpecError(f"{item!r}: the weight after @ must be a number, e.g. format@0.1") from None
        if name in REWARD_FUNCTIONS:
            parts.append((name, REWARD_FUNCTIONS[name], w))
            continue
        module, _, attr = name.partition(":")
        if not attr:
            raise RewardSpecError(f"{name!r}: choose one of {', '.join(REWARD_FUNCTIONS)}, or name a plugin as package.module:function")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise RewardSpecError(f"{name!r}: cannot load it ({type(exc).__name__}: {exc}); the module must be importable "
                                  f"(on PYTHONPATH) and define {attr}(completion, reference) -> float") from None
        if not callable(fn):
            raise RewardSpecError(f"{name!r}: {attr} is not a function")
        parts.append((name, fn, w))
    if not parts:
        raise RewardSpecError(f"{spec!r}: name at least one reward ({', '.join(REWARD_FUNCTIONS)})")
    return Reward(spec, parts)
