"""A Llama-family Hugging Face model folder as an lmforge model: what `load_model` reads when
`--base` (align sft, rm, dpo, rl), `train --init-from`, `sample` or `chat` is given such a folder.

The folder is what `save_pretrained` writes: `config.json` and `model.safetensors` (or shards
with `model.safetensors.index.json`). `LlamaForCausalLM` and `ArceeForCausalLM` (what
`lmforge export hf` writes) map onto `GPT` with the fields `mlp` ("swiglu": SiLU-gated
`gate_proj`/`up_proj`, fused into `fc` as [gate; up]; "relu2": Arcee), `intermediate_size` and
`norm_eps` (`rms_norm_eps`). q, k and v stack into `qkv`. RMSNorm gains are folded into the
matrix that reads the normalised input (`W @ (g * n(x)) == (W * g) @ n(x)`): `input_layernorm`
into `qkv`, `post_attention_layernorm` into `fc`, `model.norm` into the head (a tied head whose
final gain is not all ones is untied). Logits match `transformers`' within float rounding
(tests/test_export_hf.py: 1e-5 on a tiny random `LlamaForCausalLM`).

What has no lmforge counterpart is refused by name rather than loaded approximately: grouped
KV heads, biases, RoPE scaling, sliding-window attention, a `head_dim` other than
hidden_size / heads, another activation. The tokenizer must be an lmforge tokenizer (special
tokens at ids 0..15, which the chat format relies on): the folder's own `tokenizer.json` when
it is one (an `lmforge export hf` folder), otherwise `--tokenizer DIR` of the stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

CONFIG_FILE = "config.json"
ACTIVATIONS = {"llama": ("silu", "swiglu"), "arcee": ("relu2", "relu2")}  # model_type -> (hidden_act, GPTConfig.mlp)


def is_hf_folder(path) -> bool:
    """A `save_pretrained` folder (config.json, no lmforge state.json or checkpoints/)."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and not (path / "state.json").is_file() and not (path / "checkpoints").is_dir()


def gpt_config(hf: dict, where) -> "GPTConfig":
    """The `GPTConfig` of a Llama-family config.json dict; unsupported features raise `TrainingError`."""
    from lmforge.train.model import GPTConfig
    from lmforge.train.trainer import TrainingError

    kind = hf.get("model_type")
    if kind not in ACTIVATIONS:
        raise TrainingError(f"{where}: model_type {kind!r} is not one lmforge imports; it reads {', '.join(ACTIVATIONS)} "
                            "(Llama-family) folders")
    heads, width = hf["num_attention_heads"], hf["hidden_size"]
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    problems = {
        "grouped KV heads (num_key_value_heads)": hf.get("num_key_value_heads", heads) not in (None, heads),
        "attention_bias": bool(hf.get("attention_bias")),
        "mlp_bias": bool(hf.get("mlp_bias")),
        f"hidden_act {hf.get('hidden_act')!r}": hf.get("hidden_act", ACTIVATIONS[kind][0]) != ACTIVATIONS[kind][0],
        "RoPE scaling": rope.get("rope_type", rope.get("type", "default")) != "default",
        "sliding-window attention": bool(hf.get("sliding_window")) and bool(hf.get("use_sliding_window", True)),
        "head_dim other than hidden_size / heads": hf.get("head_dim") not in (None, width // heads),
    }
    found = [name for name, present in problems.items() if present]
    if found:
        raise TrainingError(f"{where}: {', '.join(found)}: no lmforge counterpart, so the model cannot be loaded exactly")
    eps, hidden = float(hf.get("rms_norm_eps", 1e-6)), hf["intermediate_size"]
    return GPTConfig(  # an `lmforge export hf` folder comes back as the GPTConfig it was written from
        vocab_size=hf["vocab_size"], n_layer=hf["num_hidden_layers"], n_head=heads, n_embd=width,
        block_size=hf.get("max_position_embeddings", 2048), tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))), mlp=ACTIVATIONS[kind][1],
        mlp_ratio=hidden // width if hidden % width == 0 else 4, intermediate_size=None if hidden % width == 0 else hidden,
        norm_eps=None if eps == torch.finfo(torch.float32).eps else eps,
    )


def gpt_state_dict(hf: dict[str, torch.Tensor], cfg) -> tuple[dict[str, torch.Tensor], bool]:
    """HF tensors (Llama names) -> `GPT` tensors with the norm gains folded in, and whether the
    head stays tied to the embedding."""
    V, C = cfg.padded_vocab_size, cfg.n_embd
    wte = torch.zeros(V, C)
    wte[: cfg.vocab_size] = hf["model.embed_tokens.weight"]
    final = hf.get("model.norm.weight", torch.ones(C))
    tied = cfg.tie_embeddings and "lm_head.weight" not in hf and bool((final == 1).all())
    head = torch.zeros(V, C)
    head[: cfg.vocab_size] = hf.get("lm_head.weight", hf["model.embed_tokens.weight"]) * final  # (V, C) * (C,)
    out = {"wte.weight": wte} if tied else {"wte.weight": wte, "lm_head.weight": head}
    for i in range(cfg.n_layer):
        src, dst = f"model.layers.{i}.", f"blocks.{i}."
        g1 = hf.get(src + "input_layernorm.weight", torch.ones(C))
        g2 = hf.get(src + "post_attention_layernorm.weight", torch.ones(C))
        qkv = torch.cat([hf[src + f"self_attn.{p}_proj.weight"] for p in "qkv"])  # (3C, C)
        fc = torch.cat([hf[src + "mlp.gate_proj.weight"], hf[src + "mlp.up_proj.weight"]]) if cfg.mlp == "swiglu" \
            else hf[src + "mlp.up_proj.weight"]  # (2H or H, C)
        out |= {dst + "attn.qkv.weight": qkv * g1, dst + "attn.proj.weight": hf[src + "self_attn.o_proj.weight"],
                dst + "mlp.fc.weight": fc * g2, dst + "mlp.proj.weight": hf[src + "mlp.down_proj.weight"]}
    return out, tied


def load_hf_model(folder, device="cpu") -> tuple["GPT", dict]:
    """(GPT, state) of a Llama-family HF folder; `state` is what a checkpoint's state.json would
    hold (step 0, model_config, the folder's tokenizer when it is an lmforge one)."""
    from dataclasses import replace

    from safetensors.torch import load_file

    from lmforge.train.model import GPT
    from lmforge.train.trainer import TrainingError

    folder = Path(folder)
    try:
        hf_config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainingError(f"{folder / CONFIG_FILE}: not readable as JSON ({exc})") from None
    cfg = gpt_config(hf_config, folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise TrainingError(f"{folder}: no *.safetensors weights beside config.json (save the model with safe_serialization)")
    tensors: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            tensors |= {k: v.float() for k, v in load_file(str(path)).items()}
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise TrainingError(f"{path}: not a readable safetensors file ({type(exc).__name__}); re-save the model") from None
    try:
        state_dict, tied = gpt_state_dict(tensors, cfg)
    except KeyError as exc:
        raise TrainingError(f"{folder}: weight {exc.args[0]} is missing; not a complete {hf_config['model_type']} checkpoint") from None
    cfg = replace(cfg, tie_embeddings=tied)
    model = GPT(cfg)
    model.load_state_dict(state_dict if not tied else {**state_dict, "lm_head.weight": state_dict["wte.weight"]}, strict=True)
    state = {"step": 0, "model_config": cfg.to_dict(), "source": {"hf_folder": str(folder.resolve()), "model_type": hf_config["model_type"]}}
    if (folder / "tokenizer.json").is_file():
        from lmforge.tokenize import Tokenizer, TokenizerError

        try:
            tok = Tokenizer.load(folder)
            state |= {"tokenizer_dir": str(folder.resolve()), "tokenizer_fingerprint": tok.fingerprint}
        except TokenizerError:
            pass  # not an lmforge tokenizer: the stage asks for --tokenizer
    return model.to(device), state
