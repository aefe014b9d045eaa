"""A built-in alignment data set for `lmforge demo`: small sums with checkable answers.

The demo's alignment stages must run offline, on a model of 1.3M parameters pretrained for
60 steps on Python prose, and still show each stage doing its job. So the task is one such a
model can learn in a few hundred steps and a machine can check: the sums of two one-digit
numbers (10 x 10 = 100 problems), asked in three phrasings, answered in GSM8K's style (the
working, then `#### <number>`, which `lmforge.alignment.rewards.gsm8k_reward` verifies):

    user:      Mia has 4 apples and gets 9 more. How many apples does Mia have now?
    assistant: 4 + 9 = 13
               #### 13

`write_align_data(folder)` writes three files, each in a layout the stages already read
(`lmforge.alignment.data`):

- `sft.jsonl`: `{"messages": [user, assistant]}`, a correct answer (for `align sft`). As in
  real instruction data, not every answer keeps the house style: a third (`PLAIN_SHARE`) give
  the working only (`4 + 9 = 13`, no `####` line), which the verifiable reward cannot read;
  so SFT teaches the sums and a habit that GRPO then has a reason to unlearn;
- `preferences.jsonl`: `{"prompt", "chosen", "rejected"}`: the correct answer against a wrong
  one (for `align rm` and `align dpo`). Wrong answers are the slips a small model makes: half
  an arithmetic slip (`4 + 9 = 14`, then `#### 14`: off by 1, 2 or 10), a quarter a copying
  slip (right working, another number after `####`), a quarter no `####` line at all;
- `prompts.jsonl` and `heldout.jsonl`: `{"question", "answer"}` as GSM8K ships, every problem
  in every phrasing once (300 questions), split by problem: one phrasing of each sum (drawn at
  random) goes to `heldout.jsonl` (100 questions, which score the demo's policies), the other
  two to `prompts.jsonl` (200, for `align rl --method grpo`, rewarded by the exact `####`
  number). No held-out question is ever a GRPO prompt.

The 100 problems are shared by all the files, so the held-out conversations and pairs of
SFT, the reward model and DPO, and the held-out GRPO questions, are unseen items, not unseen
sums: at this size the models learn the sums they see, not addition (a GRPO run that held out
whole sums would measure the sums SFT taught, nothing GRPO did to them). The output is deterministic for a given seed (the same bytes,
so a rerun of the demo can resume its SFT run, which checks its data's sha256).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

NAMES = ["Mia", "Leo", "Ana", "Sam", "Noor", "Kai", "Ivy", "Omar"]
THINGS = ["apples", "books", "shells", "stamps", "coins", "pencils"]
TEMPLATES = [
    "What is {a} + {b}?",
    "Add {a} and {b}.",
    "{name} has {a} {things} and gets {b} more. How many {things} does {name} have now?",
]
SLIPS = ("arithmetic", "arithmetic", "copy", "no final answer")  # drawn uniformly: half arithmetic
PLAIN_SHARE = 1 / 3  # SFT answers without the `####` line


def worked_answer(a: int, b: int, total: int | None = None, final: int | None = None) -> str:
    """`worked_answer(4, 9)` -> '4 + 9 = 13\\n#### 13'; `total` and `final` plant slips."""
    total = a + b if total is None else total
    final = total if final is None else final
    return f"{a} + {b} = {total}\n#### {final}"


def problems(high: int = 9) -> list[tuple[int, int]]:
    """Every (a, b) with 0 <= a, b <= high, in a fixed order."""
    return [(a, b) for a in range(high + 1) for b in range(high + 1)]


def question(a: int, b: int, template: int, rng: random.Random) -> str:
    return TEMPLATES[template].format(a=a, b=b, name=rng.choice(NAMES), things=rng.choice(THINGS))


def plain_answer(a: int, b: int) -> str:
    """The working without GSM8K's final line: right, but no `####` number to verify."""
    return f"{a} + {b} = {a + b}"


def wrong_answer(a: int, b: int, rng: random.Random) -> str:
    """A plausible wrong answer (see the module docstring for the mix of slips)."""
    right = a + b
    wrong = right + rng.choice([d for d in (-10, -2, -1, 1, 2, 10) if right + d >= 0])
    slip = rng.choice(SLIPS)
    if slip == "arithmetic":
        return worked_answer(a, b, total=wrong)
    if slip == "copy":
        return worked_answer(a, b, final=wrong)
    return plain_answer(a, b)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


#: the files `write_align_data` writes, by role
ALIGN_FILES = ("sft", "preferences", "prompts", "heldout")


def write_align_data(folder: str | Path, seed: int = 0, conversations: int = 2000, pairs: int = 800, high: int = 9) -> dict:
    """Write sft.jsonl, preferences.jsonl, prompts.jsonl and heldout.jsonl into `folder`; return
    their paths and counts."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    every = problems(high)

    sft = []
    for _ in range(conversations):
        a, b = rng.choice(every)
        q = question(a, b, rng.randrange(len(TEMPLATES)), rng)
        answer = plain_answer(a, b) if rng.random() < PLAIN_SHARE else worked_answer(a, b)
        sft.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": answer}]})
    prefs = []
    for _ in range(pairs):
        a, b = rng.choice(every)
        q = question(a, b, rng.randrange(len(TEMPLATES)), rng)
        prefs.append({"prompt": q, "chosen": worked_answer(a, b), "rejected": wrong_answer(a, b, rng)})
    prompts = [{"question": question(a, b, t, rng), "answer": worked_answer(a, b), "problem": (a, b), "template": t}
               for t in range(len(TEMPLATES)) for a, b in every]
    rng.shuffle(prompts)
    held_template = {p: rng.randrange(len(TEMPLATES)) for p in every}  # the phrasing of each sum kept from GRPO
    heldout = [{"question": p["question"], "answer": p["answer"]} for p in prompts if held_template[p["problem"]] == p["template"]]
    train = [{"question": p["question"], "answer": p["answer"]} for p in prompts if held_template[p["problem"]] != p["template"]]

    paths = {name: folder / f"{name}.jsonl" for name in ALIGN_FILES}
    _write_jsonl(paths["sft"], sft)
    _write_jsonl(paths["preferences"], prefs)
    _write_jsonl(paths["prompts"], train)
    _write_jsonl(paths["heldout"], heldout)
    return {"paths": {k: str(v) for k, v in paths.items()},
            "counts": {"conversations": len(sft), "preference_pairs": len(prefs), "prompts": len(train), "heldout_prompts": len(heldout),
                       "problems": len(every)}}
