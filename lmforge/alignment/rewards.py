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

import re
from fractions import Fraction

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


REWARD_FUNCTIONS = {"gsm8k": gsm8k_reward}
#: reward function -> whether a completion has the form the reward can score (GSM8K: a number
#: after `####`): `lmforge eval policy` reports this compliance apart from accuracy
FORMAT_CHECKS = {"gsm8k": lambda completion: extract_answer(completion) is not None}
#: reward function -> the check a prompt's reference answer must pass to be usable
REFERENCE_CHECKS = {"gsm8k": lambda reference: reference_answer(reference) is not None}
