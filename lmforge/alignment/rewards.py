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


def number_reward(completion: str, reference: str) -> float:
    """1.0 when the completion's answer is the reference's number, `####` or not: the number
    after the last `####`, or else the last number in the text. Paired with `gsm8k`
    (`gsm8k,number`) it ranks right-and-formatted > right-unformatted > wrong, so GRPO never
    pushes down a right sum for lacking the marker (a `gsm8k`-only reward scores "7 + 5 = 12"
    0, like a wrong sum, and every token of it, the right digits too, gets the negative advantage).

    >>> number_reward("7 + 5 = 12", "#### 12"), number_reward("7 + 5 = 12\\n#### 13", "#### 12")
    (1.0, 0.0)
    """
    want = reference_answer(reference)
    if want is None:
        raise ValueError(f"reference answer has no number to compare with: {reference[-80:]!r}")
    if ANSWER_MARKER in completion:
        got = extract_answer(completion)
    else:
        numbers = _NUMBER.findall(completion)
        got = _canonical(numbers[-1]) if numbers else None
    return 1.0 if got is not None and got == want else 0.0


#: the registry: name -> reward(completion, reference) -> float
REWARD_FUNCTIONS = {"gsm8k": gsm8k_reward, "format": format_reward, "number": number_reward}
#: `rm:RUN` in a spec: the score of a reward-model run (`RewardModelScore`)
RM_PREFIX = "rm:"
#: reward name -> whether a completion has the form the reward can score (GSM8K: a number
#: after `####`): `lmforge eval policy` reports this compliance apart from accuracy
FORMAT_CHECKS = {"gsm8k": lambda completion: extract_answer(completion) is not None}
#: reward name -> the check a prompt's reference answer must pass to be usable
REFERENCE_CHECKS = {"gsm8k": lambda reference: reference_answer(reference) is not None,
                    "number": lambda reference: reference_answer(reference) is not None}


class RewardSpecError(UserError):
    """A --reward-fn / --reward spec that names no reward, or a plugin that cannot be imported."""


class RewardModelScore:
    """`rm:RUN`: the scalar a reward-model run (`lmforge align rm`) gives the conversation the
    completion closes (prompt + completion rendered as the reward model was trained on it,
    `reward.encode_response`). Loaded once by `bind`, on the policy's device, after checking it
    is a reward model and shares the policy's tokenizer; scored `batch` sequences at a time by
    `score_batch` (it needs the prompt, so it has no per-record form)."""

    def __init__(self, run: str, batch: int = 32):
        from pathlib import Path

        if not Path(run).exists():
            raise RewardSpecError(f"rm:{run}: no such run; train a reward model with `lmforge align rm` and pass its folder")
        self.run, self.batch = run, batch
        self.model = self.tok = None
        self.max_len = 0

    def bind(self, tok, device) -> None:
        """Load the reward model onto `device` (once); refuse a run that is not a reward model,
        or one trained with another tokenizer than `tok` (the policy's)."""
        from lmforge.alignment.reward import AlignmentError, context_limit, load_reward_model

        if self.model is not None:
            return
        try:
            model, state = load_reward_model(self.run, device)
        except AlignmentError as exc:
            raise RewardSpecError(f"rm:{exc}") from None
        if state.get("tokenizer_fingerprint") and state["tokenizer_fingerprint"] != tok.fingerprint:
            raise RewardSpecError(f"rm:{self.run}: the reward model was trained with another tokenizer than the policy's; "
                                  "train it (`lmforge align rm --base`) from a run with the policy's tokenizer")
        self.model, self.tok, self.max_len = model.eval().requires_grad_(False), tok, context_limit(model.gpt)

    def score_batch(self, prompts: list[list[dict]], completions: list[str]) -> list[float | Exception]:
        """One score per (prompt conversation, completion); a record that cannot be rendered
        gets its exception in its place (the caller scores it 0 and counts it)."""
        from lmforge.alignment.reward import encode_response, score

        if self.model is None:
            raise RuntimeError(f"rm:{self.run} was not loaded: call Reward.bind(tokenizer, device) first")
        out: list[float | Exception] = []
        seqs, where = [], []
        for prompt, completion in zip(prompts, completions):
            try:
                seqs.append(encode_response(prompt, completion or " ", self.tok, self.max_len).ids)
                where.append(len(out))
                out.append(0.0)
            except Exception as exc:  # a conversation the chat format refuses: this record only
                out.append(exc)
        for i, value in zip(where, score(self.model, seqs, self.tok.pad_id, self.batch).tolist()):
            out[i] = value
        return out

    def __call__(self, completion: str, reference: str) -> float:
        raise TypeError(f"rm:{self.run} scores a completion with its prompt: use Reward.score_batch")


class Reward:
    """A weighted sum of rewards, built from a spec by `resolve_reward`: `reward(completion,
    reference) -> float`. A part that raises (or returns a non-finite number) on a record scores
    0 for it; the failures are counted by part and exception in `errors` and warned about once
    each, so one odd record never stops a run."""

    def __init__(self, spec: str, parts: list[tuple[str, Callable[[str, str], float], float]]):
        self.spec, self.parts = spec, parts
        self.errors: Counter = Counter()

    def _checked(self, name: str, value) -> float:
        """`value` as a finite float; a failure (an exception, or not a finite number) is
        counted and warned about once per part and kind, and scores 0."""
        try:
            if isinstance(value, Exception):
                raise value
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"returned {value}")
            return value
        except Exception as exc:  # a plugin's failure on one record: scored 0, counted
            key = f"{name}: {type(exc).__name__}"
            if not self.errors[key]:
                log.warning("reward %s failed on a record (%s: %s); such records score 0 and are counted", name, type(exc).__name__, exc)
            self.errors[key] += 1
            return 0.0

    def __call__(self, completion: str, reference: str) -> float:
        if self.needs_prompt:
            raise TypeError(f"reward {self.spec!r} scores completions with their prompts: use score_batch")
        total = 0.0
        for name, fn, weight in self.parts:
            try:
                value = fn(completion, reference)
            except Exception as exc:
                value = exc
            total += weight * self._checked(name, value)
        return total

    @property
    def needs_prompt(self) -> bool:
        """Whether a part scores the whole conversation (`rm:RUN`), so only `score_batch` works."""
        return any(hasattr(fn, "score_batch") for _, fn, _ in self.parts)

    def bind(self, tokenizer, device) -> "Reward":
        """Load what the parts need to score (a reward model: once, on `device`, checked against
        the policy's `tokenizer`); a no-op for text rewards. Returns self."""
        for _, fn, _ in self.parts:
            if hasattr(fn, "bind"):
                fn.bind(tokenizer, device)
        return self

    def score_batch(self, prompts: list[list[dict]], completions: list[str], references: list[str]) -> list[float]:
        """The reward of every (prompt, completion, reference) record: text rewards record by
        record, a reward model in batches. Failures score 0 and are counted, as in `__call__`."""
        totals = [0.0] * len(completions)
        for name, fn, weight in self.parts:
            if hasattr(fn, "score_batch"):
                values = fn.score_batch(prompts, completions)
            else:
                values = []
                for completion, reference in zip(completions, references):
                    try:
                        values.append(fn(completion, reference))
                    except Exception as exc:
                        values.append(exc)
            for i, value in enumerate(values):
                totals[i] += weight * self._checked(name, value)
        return totals

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
    """A `Reward` from a spec: comma-separated parts, each a registry name (`gsm8k`, `format`),
    a reward-model run `rm:RUN` (loaded by `Reward.bind`), or a plugin `package.module:function` (a function(completion, reference) -> float, which may
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
        if name.startswith(RM_PREFIX):
            if not name[len(RM_PREFIX):]:
                raise RewardSpecError(f"{name!r}: name the reward-model run after rm:, e.g. rm:runs/rm")
            parts.append((name, RewardModelScore(name[len(RM_PREFIX):]), w))
            continue
        module, _, attr = name.partition(":")
        if not attr:
            raise RewardSpecError(f"{name!r}: choose one of {', '.join(REWARD_FUNCTIONS)}, rm:RUN (a reward model), or name a plugin "
                                  "as package.module:function")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise RewardSpecError(f"{name!r}: cannot load it ({type(exc).__name__}: {exc}); the module must be importable "
                                  f"(on PYTHONPATH) and define {attr}(completion, reference) -> float") from None
        if not callable(fn):
            raise RewardSpecError(f"{name!r}: {attr} is not a function")
        parts.append((name, fn, w))
    if not parts:
        raise RewardSpecError(f"{spec!r}: name at least one reward ({', '.join(REWARD_FUNCTIONS)}, rm:RUN)")
    return Reward(spec, parts)
