"""`lmforge align ...`: each alignment stage is its own module, imported only when used."""

from __future__ import annotations

import importlib
import importlib.util

import click

STAGES = {
    "sft": "lmforge.alignment.sft_cli:sft",
    "rm": "lmforge.alignment.reward_cli:rm",
    "dpo": "lmforge.alignment.dpo_cli:dpo",
    "rl": "lmforge.alignment.rl_cli:rl",
}


class _LazyStages(click.Group):
    def list_commands(self, ctx):
        return sorted(n for n, t in STAGES.items() if importlib.util.find_spec(t.split(":")[0]))

    def get_command(self, ctx, name):
        target = STAGES.get(name)
        if target and importlib.util.find_spec(target.split(":")[0]):
            module, attr = target.split(":")
            return getattr(importlib.import_module(module), attr)
        return None


@click.group(cls=_LazyStages)
def align() -> None:
    """Alignment: supervised fine-tuning, reward model, RL against it, DPO.

    \b
    lmforge align sft  --base runs/tiny --data alpaca.json -o runs/sft
    lmforge align rm   --base runs/sft --data preferences.jsonl -o runs/rm
    lmforge align rl   --policy runs/sft --reward runs/rm --prompts prompts.jsonl -o runs/ppo
    lmforge align dpo  --policy runs/sft --data preferences.jsonl -o runs/dpo
    """
