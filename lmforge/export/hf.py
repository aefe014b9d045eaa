"""A run as a Hugging Face model folder: `transformers` loads it with no custom code.

lmforge's GPT (`lmforge.train.model`) is, layer for layer, `transformers`' Arcee architecture
(a Llama with a ReLU² MLP): pre-norm blocks, RoPE over the two halves of each head (Llama's
`rotate_half`), causal attention without biases, `up_proj -> relu² -> down_proj`. The export
is a renaming, with four adjustments:

- the fused `attn.qkv` (3C, C) splits into `q_proj`, `k_proj`, `v_proj` (C, C each, in that
  order; heads lie in consecutive rows in both layouts, so nothing is permuted);
- lmforge's RMSNorm has no weight: every `*_layernorm` and `model.norm` weight is 1, and
  `rms_norm_eps` is float32's machine epsilon (`F.rms_norm`'s default for float32 inputs);
- the embedding rows past the tokenizer's vocabulary (padding to a multiple of 64, never a
  target) are dropped, so `vocab_size` is the tokenizer's and no generation can pick one
  (lmforge's `generate` cuts the logits the same way);
- a tied head is written once (`tie_word_embeddings`), as `save_weights` does.

Measured on a tiny random model (tests/test_export_hf.py): logits within 1e-5 of lmforge's,
greedy generation token for token the same (`lmforge.train.sample.generate` against
`model.generate(do_sample=False)`).

A reward model (`lmforge align rm`) becomes `ArceeForSequenceClassification` with one label:
`score.weight` is lmforge's `reward_head.weight`, and HF reads it at the rightmost token that
is not `pad_token_id` (<|pad|>), which is lmforge's "last real token" because lmforge's
encoder never emits <|pad|> inside a sequence. HF's head has no bias, and no stock class puts
one there. lmforge's bias starts at 0 and the Bradley-Terry loss depends on score differences
only, so its true gradient is 0; yet float rounding leaves a ~1e-9 gradient that Adam
normalises into real steps (0.0025 after 4 steps at lr 3e-3 in the tests). It is left out and
recorded (`lmforge_reward_bias` in config.json, a row of the summary): HF's scores are
lmforge's minus that constant, so every margin, pairwise accuracy and ranking is the same.

A run started from an imported Llama (`lmforge.train.hf_import`: `mlp="swiglu"`) goes back out
as `LlamaForCausalLM`, its `norm_eps` as `rms_norm_eps` (its norm gains stay folded: all ones).

Anything in a run's `model_config` this mapping does not know (a feature added to the model
later: logit soft-capping, QK-norm, value embeddings, ...) is refused by name rather than
exported approximately.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.errors import UserError

ARCHITECTURE = "ArceeForCausalLM"
REWARD_ARCHITECTURE = "ArceeForSequenceClassification"
WEIGHTS_FILE = "model.safetensors"
BIAS_KEY = "lmforge_reward_bias"  # config.json: the reward head's bias, which HF's head lacks

# GPTConfig fields and what they become; a field outside this set is a feature with no mapping.
MAPPED_FIELDS = {
    "vocab_size": "vocab_size",
    "n_layer": "num_hidden_layers",
    "n_head": "num_attention_heads (= num_key_value_heads)",
    "n_embd": "hidden_size",
    "block_size": "max_position_embeddings",
    "tie_embeddings": "tie_word_embeddings",
    "mlp_ratio": "intermediate_size / hidden_size",
    "rope_theta": "rope_parameters.rope_theta",
    "mlp": "hidden_act (relu2: Arcee; swiglu: LlamaForCausalLM's gated silu)",
    "intermediate_size": "intermediate_size",
    "norm_eps": "rms_norm_eps",
}
LLAMA_ARCHITECTURE = "LlamaForCausalLM"  # runs started from an imported Llama (GPTConfig.mlp == "swiglu")
DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


class ExportError(UserError):
    """A run that cannot be exported exactly; the message names the run and the reason."""


@dataclass
class ExportSummary:
    out_dir: Path
    run: Path
    checkpoint: Path
    step: int | None
    kind: str  # "language model" (pretrained), "chat model" (sft, dpo, rl) or "reward model"
    architecture: str
    parameters: int
    vocab_size: int
    padded_vocab_size: int
    dtype: str
    eos: str
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes
    reward_bias: float | None = None  # a reward model's head bias, left out: lmforge's score = HF's + this


def architecture(cfg, reward: bool = False) -> str:
    llama = cfg.mlp == "swiglu"
    return ("LlamaForSequenceClassification" if llama else REWARD_ARCHITECTURE) if reward else LLAMA_ARCHITECTURE if llama else ARCHITECTURE


def hf_config(cfg, *, eos_id: int, reward: bool = False, dtype: str = "float32"):
    """The `transformers.ArceeConfig` (`LlamaConfig` for a SwiGLU model) of a `GPTConfig`."""
    import torch
    from transformers import ArceeConfig, LlamaConfig

    from lmforge.tokenize.tokenizer import BOS_ID, PAD_ID

    extra = {"num_labels": 1, "id2label": {0: "reward"}, "label2id": {"reward": 0}} if reward else {}
    llama = cfg.mlp == "swiglu"
    return (LlamaConfig if llama else ArceeConfig)(
        architectures=[architecture(cfg, reward)],
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.n_embd,
        intermediate_size=cfg.intermediate_size or cfg.mlp_ratio * cfg.n_embd,
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.n_head,
        head_dim=cfg.head_dim,
        hidden_act="silu" if llama else "relu2",
        max_position_embeddings=cfg.block_size,
        rms_norm_eps=cfg.norm_eps if cfg.norm_eps is not None else torch.finfo(torch.float32).eps,
        tie_word_embeddings=cfg.tie_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=BOS_ID,
        eos_token_id=eos_id,
        pad_token_id=PAD_ID,
        dtype=dtype,
        **extra,
    )


def hf_state_dict(gpt_state: dict, cfg) -> dict:
    """lmforge GPT tensors (`GPT.state_dict()` names, the head present or tied) -> Arcee names.

    >>> sorted(hf_state_dict(GPT(cfg).state_dict(), cfg))[:3]
    ['lm_head.weight', 'model.embed_tokens.weight', 'model.layers.0.input_layernorm.weight']
    """
    import torch

    V, C = cfg.vocab_size, cfg.n_embd
    ones = lambda: torch.ones(C, dtype=gpt_state["wte.weight"].dtype)  # noqa: E731 (one tensor per name)
    out = {"model.embed_tokens.weight": gpt_state["wte.weight"][:V], "model.norm.weight": ones()}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = gpt_state["lm_head.weight"][:V]
    for i in range(cfg.n_layer):
        src, dst = f"blocks.{i}.", f"model.layers.{i}."
        q, k, v = gpt_state[src + "attn.qkv.weight"].split(C, dim=0)  # (3C, C) -> 3 x (C, C)
        out |= {
            dst + "self_attn.q_proj.weight": q,
            dst + "self_attn.k_proj.weight": k,
            dst + "self_attn.v_proj.weight": v,
            dst + "self_attn.o_proj.weight": gpt_state[src + "attn.proj.weight"],
            dst + "mlp.down_proj.weight": gpt_state[src + "mlp.proj.weight"],
            dst + "input_layernorm.weight": ones(),
            dst + "post_attention_layernorm.weight": ones(),
        }
        fc = gpt_state[src + "mlp.fc.weight"]
        if cfg.mlp == "swiglu":  # fc = [gate; up]
            out[dst + "mlp.gate_proj.weight"], out[dst + "mlp.up_proj.weight"] = fc.chunk(2, dim=0)
        else:
            out[dst + "mlp.up_proj.weight"] = fc
    return out


def _checkpoint_of(run: Path) -> Path:
    from lmforge.train.trainer import CHECKPOINTS, STATE_FILE, checkpoint_of

    found = checkpoint_of(run)
    if found is None:
        raise ExportError(f"{run}: no checkpoint here (looked for {run / CHECKPOINTS}/step_*/{STATE_FILE}); "
                          "pass a run folder of `lmforge train` or `lmforge align ...`")
    return found


def _refuse_unmapped(run: Path, model_config: dict) -> None:
    unknown = sorted(set(model_config) - set(MAPPED_FIELDS))
    if unknown:
        raise ExportError(f"{run}: the model has feature(s) {', '.join(unknown)} with no counterpart in "
                          f"transformers' {ARCHITECTURE}; an export would not give the same logits, so none is written")


def export_hf(run, out_dir, *, tokenizer_dir: str | None = None, dtype: str = "float32", overwrite: bool = False) -> ExportSummary:
    """Write `out_dir`: config.json, model.safetensors, generation_config.json and the complete
    tokenizer (tokenizer.json adding <|bos|>, tokenizer_config.json with the chat template).

    Every file is written into `out_dir/.tmp-export-PID/` first and renamed into place only
    when all are written. An existing non-empty `out_dir` is refused unless `overwrite`.
    """
    import torch
    from safetensors.torch import save_file

    from lmforge.alignment.reward import AlignmentError, load_reward_model, load_tokenizer
    from lmforge.locks import LOCK_NAME
    from lmforge.tokenize.hf import ASSISTANT_END, BOS, with_bos_processor, write_hf_tokenizer_config
    from lmforge.tokenize.tokenizer import META_FILE, SPECIAL_TOKENS, TOKENIZER_FILE
    from lmforge.train.trainer import REWARD_MODEL_KIND, TrainingError, load_model, read_state

    try:
        from transformers import GenerationConfig
    except ImportError:
        raise ExportError("`lmforge export hf` needs transformers: pip install 'lmforge[hf]'") from None
    if dtype not in DTYPES:
        raise ExportError(f"--dtype {dtype}: choose one of {', '.join(DTYPES)}")
    run, out_dir = Path(run), Path(out_dir)
    if not run.exists():
        raise ExportError(f"{run}: no such run; pass a run folder of `lmforge train` or `lmforge align ...`")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir}: a file, not a folder; choose another -o folder")
    earlier = [p for p in out_dir.iterdir() if p.name != LOCK_NAME and not p.name.startswith(".tmp-")] if out_dir.is_dir() else []
    if earlier and not overwrite:
        raise ExportError(f"{out_dir}: not empty; choose another -o folder, or pass --overwrite to replace it")
    if out_dir.resolve() == run.resolve() or run.resolve() in out_dir.resolve().parents:
        raise ExportError(f"{out_dir}: inside the run {run}; choose a folder outside it")

    ckpt = _checkpoint_of(run)
    state = read_state(ckpt)
    _refuse_unmapped(run, state.get("model_config") or {})
    reward = state.get("kind") == REWARD_MODEL_KIND
    try:
        if reward:
            model, state = load_reward_model(run)
            if model.pool != "last":
                raise ExportError(f"{run}: a reward model with --pool {model.pool}; Hugging Face's SequenceClassification "
                                  "reads the last token, so only --pool last exports")
            cfg = model.config
            bias = float(model.reward_head.bias.detach().float().item())
            tensors = hf_state_dict(model.gpt.state_dict(), cfg)
            tensors.pop("lm_head.weight", None)  # the backbone's unused LM head
            tensors["score.weight"] = model.reward_head.weight.detach()
        else:
            bias = None
            model, state = load_model(run, purpose="export hf")
            cfg = model.config
            tensors = hf_state_dict(model.state_dict(), cfg)
        tok = load_tokenizer(state, run, tokenizer_dir)
    except (TrainingError, AlignmentError) as exc:
        raise ExportError(str(exc)) from None
    if tok.vocab_size != cfg.vocab_size:
        raise ExportError(f"{tok.path}: {tok.vocab_size} token ids, but the model of {run} has {cfg.vocab_size}; "
                          "pass the tokenizer the run was trained with (--tokenizer)")
    chat = state.get("stage") == "sft" or state.get("kind") == "policy"
    eos = ASSISTANT_END if chat or reward else BOS  # where `lmforge chat` / `lmforge sample` stop
    kind = "reward model" if reward else "chat model" if chat else "language model"

    tmp = out_dir / f".tmp-export-{os.getpid()}"  # inside the locked folder: a killed export's is removed by the next
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        torch_dtype = getattr(torch, DTYPES[dtype])
        # a copy of each: the q/k/v views share qkv's memory, which safetensors refuses to write
        tensors = {k: v.detach().to("cpu", torch_dtype).contiguous().clone() for k, v in tensors.items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        hf_config(cfg, eos_id=SPECIAL_TOKENS[eos], reward=reward, dtype=dtype).save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text())  # transformers < 5 (and vLLM with it) read
        config["rope_theta"] = float(cfg.rope_theta)               # the RoPE base from the top level
        if reward:
            config[BIAS_KEY] = bias  # HF's head has none: lmforge's score = HF's score + this
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if not reward:
            from lmforge.tokenize.tokenizer import PAD_ID

            GenerationConfig(bos_token_id=SPECIAL_TOKENS[BOS], eos_token_id=SPECIAL_TOKENS[eos], pad_token_id=PAD_ID,
                             do_sample=True, temperature=0.8, top_k=50).save_pretrained(tmp)  # `lmforge chat`'s defaults
        source = (Path(tok.path) / TOKENIZER_FILE).read_bytes()
        data = with_bos_processor(source)
        (tmp / TOKENIZER_FILE).write_bytes(data)
        if data == source and (Path(tok.path) / META_FILE).is_file():  # still an lmforge tokenizer folder too
            shutil.copyfile(Path(tok.path) / META_FILE, tmp / META_FILE)
        write_hf_tokenizer_config(tmp, eos=eos, model_max_length=cfg.block_size)
        (tmp / "lmforge-export.json").write_text(json.dumps({
            "run": str(run.resolve()), "checkpoint": str(ckpt.resolve()), "step": state.get("step"),
            "kind": kind, "tokenizer_fingerprint": tok.fingerprint, "model_config": cfg.to_dict(),
            **({BIAS_KEY: bias} if reward else {}),
        }, indent=1) + "\n")
        for path in earlier:  # --overwrite
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        for path in tmp.iterdir():  # each rename is atomic; the files were all written first
            os.replace(path, out_dir / path.name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    files = {p.name: p.stat().st_size for p in sorted(out_dir.iterdir()) if p.name != LOCK_NAME}
    params = sum(t.numel() for t in tensors.values())  # a tied head counted once, as HF counts it
    return ExportSummary(out_dir, run, ckpt, state.get("step"), kind, architecture(cfg, reward),
                         params, cfg.vocab_size, cfg.padded_vocab_size, dtype, eos, files, bias)
