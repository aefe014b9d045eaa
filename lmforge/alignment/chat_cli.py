"""`lmforge chat`: talk to a fine-tuned run in the chat format, one-shot or interactively."""

from __future__ import annotations

import sys

import click

from lmforge.cli import Finite, LocalPath


@click.command("chat")
@click.argument("run", type=LocalPath())
@click.option("--prompt", default=None, help="Ask one question, print the answer and exit (else: read turns from stdin).")
@click.option("--system", default=None, help="A system message put first in the conversation.")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(min=1), help="Most tokens per answer.")
@click.option("--temperature", default=0.8, show_default=True, type=Finite(min=0), help="0 for greedy decoding.")
@click.option("--top-k", default=50, show_default=True, type=click.IntRange(min=0), help="Sample among the k likeliest tokens (0: all).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Sampling seed (turn n uses seed + n).")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--tokenizer", "tokenizer_dir", default=None, type=LocalPath(), help="Tokenizer folder [the one the run trained with].")
def chat(run, prompt, system, max_tokens, temperature, top_k, seed, device, tokenizer_dir):
    """Chat with a run's newest checkpoint (KV cache; each answer stops at <|assistant_end|>).

    \b
    Examples:
      lmforge chat runs/sft --prompt "Give three tips for staying healthy." --temperature 0
      lmforge chat runs/sft --system "Answer in one sentence."     # interactive; /reset, /exit or Ctrl-D
    """
    from lmforge.alignment.chat import ChatFormatError, load_chat_model, respond
    from lmforge.tokenize import TokenizerError
    from lmforge.train.trainer import TrainingError

    if max_tokens < 1:
        raise click.BadParameter("must be at least 1", param_hint="--max-tokens")
    try:
        model, tok = load_chat_model(run, device, tokenizer_dir)
    except (TrainingError, TokenizerError) as exc:
        raise click.ClickException(str(exc)) from None
    start = [{"role": "system", "content": system}] if system else []
    conv = list(start)

    def answer(text: str, turn: int) -> str:
        conv.append({"role": "user", "content": text})
        try:
            reply = respond(model, tok, conv, max_tokens=max_tokens, temperature=temperature, top_k=top_k or None, seed=seed + turn)
        except (ChatFormatError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        conv.append({"role": "assistant", "content": reply})
        return reply

    if prompt is not None:
        click.echo(answer(prompt, 0))
        return
    stdin = sys.stdin
    interactive = stdin.isatty()
    turn = 0
    while True:
        if interactive:
            click.echo("you> ", nl=False, err=True)
        line = stdin.readline()
        if not line or line.strip() == "/exit":
            break
        text = line.rstrip("\n")
        if text.strip() == "/reset":
            conv[:] = start
            continue
        if not text.strip():
            continue
        click.echo(answer(text, turn))
        turn += 1
