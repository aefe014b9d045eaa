"""`lmforge align ...`: each alignment stage is its own module, imported only when used."""

from __future__ import annotations

import click

from lmforge.cli import LazyGroup

STAGES = {
    "sft": "lmforge.alignment.sft_cli:sft",
    "rm": "lmforge.alignment.reward_cli:rm",
    "dpo": "lmforge.alignment.dpo_cli:dpo",
    "rl": "lmforge.alignment.rl_cli:rl",
}


@click.group(cls=LazyGroup, lazy=STAGES)
def align() -> None:
    """Alignment: supervised fine-tuning, reward model, RL against it, DPO.

    \b
    lmforge align sft  --base runs/tiny --data alpaca.json -o runs/sft
    lmforge align rm   --base runs/sft --data preferences.jsonl -o runs/rm
    lmforge align rl   --method ppo --policy runs/sft --reward runs/rm --prompts prompts.jsonl -o runs/ppo
    lmforge align dpo  --policy runs/sft --data preferences.jsonl -o runs/dpo
    """
