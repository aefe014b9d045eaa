"""Pretraining throughput: lmforge's trainer vs transformers' GPT2LMHeadModel with a plain AdamW loop.

Both models have the same depth, width, heads, context, batch and (padded) vocabulary, and
the same embedding tying; both run on the same device in the same process, on the same
synthetic tokens (uniform random ids, as nanoGPT's `bench.py` uses), so data loading is not
measured. lmforge runs its real step function (`Trainer.step`: micro-batches, global-norm
clipping, the schedule, fused AdamW); the reference runs `loss = model(input_ids=x,
labels=x).loss; loss.backward(); opt.step(); opt.zero_grad()` with `torch.optim.AdamW` and
SDPA attention. On CUDA both use bf16 autocast; lmforge adds `torch.compile` (`--no-compile`
turns it off), the reference stays a plain eager loop unless `--reference-compile`.
`--precision bf16` puts both under bf16 autocast on CPU too (the CPU default is float32 for
both); `lmforge_warmup_s` is the warm-up time, compilation included.

Timing: `--warmup` untimed steps each (compilation included there), then `--repeats` blocks
of `--steps` steps, interleaved (lmforge, reference, lmforge, ...) so a noisy neighbour on
a shared machine hurts both alike; the figure is the median block. One process, `--threads`
CPU threads (default 1: on a busy 2-core machine two threads are several times slower).

Measured here (one AMD EPYC core with AVX512-BF16, `small`, batch 8): float32 matrix
products run at MKL's sgemm peak, ~100 GFLOP/s, in both models; in lmforge they and SDPA's
CPU flash kernel (~40% of that peak at context 256) are ~96% of a step, so float32 caps the
ratio near 1.25x at `small` (1.20x measured); `tiny` (1.45x) has more non-product work to
remove. Under `--precision bf16` the products run ~4.6x faster and the rest decides: 1.44x.

MFU (CUDA only): tokens/s x FLOPs per token / a bf16 matrix product's FLOP/s measured in
the same run; FLOPs per token = 6N + 12 * layers * context * width (N = matrix-product
parameters, the head included, the input embedding not; the PaLM formula nanoGPT uses).

Usage:
  python benchmarks/train.py                      # CPU, preset small, synthetic tokens
  python benchmarks/train.py --device cuda --preset d12 --batch 64
  python benchmarks/train.py --json               # only the JSON line
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time

import torch

from lmforge.train.model import PRESETS, preset_config
from lmforge.train.trainer import TrainConfig, Trainer, peak_bf16_flops


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def build_lmforge(args, vocab: int):
    cfg = TrainConfig(
        manifest="synthetic", out_dir="unused", preset=args.preset, steps=10**9, batch_tokens=args.batch * PRESETS[args.preset]["block_size"],
        micro_batch=args.batch, warmup=1, device=args.device, compile=args.compile, precision=args.precision,
    )
    trainer = Trainer(cfg, preset_config(args.preset, vocab))
    return trainer, trainer.step


def build_reference(args, model_cfg):
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    hc = GPT2Config(
        vocab_size=model_cfg.padded_vocab_size, n_positions=model_cfg.block_size, n_embd=model_cfg.n_embd, n_layer=model_cfg.n_layer,
        n_head=model_cfg.n_head, tie_word_embeddings=model_cfg.tie_embeddings, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=0, eos_token_id=0,
    )
    hc._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(hc).to(args.device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    fwd = torch.compile(model) if args.reference_compile else model
    amp = torch.autocast(args.device, dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()

    def step(tokens):
        x = tokens[:, :-1].to(args.device, non_blocking=True)
        with amp:
            loss = fwd(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    n_params = sum(p.numel() for p in model.parameters())
    extras = (" + bf16 autocast" if args.precision == "bf16" else "") + (" + torch.compile" if args.reference_compile else "")
    return step, f"transformers {transformers.__version__} GPT2LMHeadModel (sdpa) + torch.optim.AdamW{extras}", n_params


def time_block(step, tokens, n: int, device: str) -> float:
    _sync(device)
    t = time.perf_counter()
    for _ in range(n):
        step(tokens)
    _sync(device)
    return time.perf_counter() - t


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--preset", choices=list(PRESETS), default=None, help="[small on CPU, d12 on CUDA]")
    p.add_argument("--batch", type=int, default=None, help="sequences per step [8 on CPU, 64 on CUDA]")
    p.add_argument("--vocab", type=int, default=None, help="tokenizer vocabulary [8192 on CPU, 50257 on CUDA]")
    p.add_argument("--steps", type=int, default=None, help="steps per timed block [3 on CPU, 20 on CUDA]")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks per model, interleaved")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per model [2 on CPU, 10 on CUDA]")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--compile", dest="compile", action="store_true", default=None, help="torch.compile lmforge [on for CUDA]")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="both models: bf16 autocast or float32 [auto: bf16 on CUDA, fp32 on CPU]")
    p.add_argument("--reference-compile", action="store_true", help="torch.compile the reference too")
    p.add_argument("--json", action="store_true", help="print only the JSON result line")
    args = p.parse_args(argv)
    gpu = args.device == "cuda"
    args.preset = args.preset or ("d12" if gpu else "small")
    args.batch = args.batch or (64 if gpu else 8)
    args.vocab = args.vocab or (50257 if gpu else 8192)
    args.steps = args.steps or (20 if gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (10 if gpu else 2)
    args.compile = gpu if args.compile is None else args.compile
    args.precision = ("bf16" if gpu else "fp32") if args.precision == "auto" else args.precision
    if gpu and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible")
    torch.set_num_threads(args.threads)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    trainer, ours = build_lmforge(args, args.vocab)
    mc = trainer.raw_model.config
    try:
        ref, ref_name, ref_params = build_reference(args, mc)
    except ImportError:
        ref, ref_name, ref_params = None, "transformers not installed (pip install transformers)", None
    T = mc.block_size
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab, (args.batch, T + 1), generator=gen)
    if gpu:
        tokens = tokens.pin_memory()
    log(f"preset {args.preset}: {mc.n_layer} layers, width {mc.n_embd}, context {T}, batch {args.batch}, vocab {mc.padded_vocab_size}, "
        f"device {args.device}, threads {args.threads}")
    runs = [("lmforge", ours)] + ([("reference", ref)] if ref is not None else [])
    warmup_s = {"reference": None}
    for name, step in runs:
        t = time.perf_counter()
        for _ in range(args.warmup):
            step(tokens)
        _sync(args.device)
        warmup_s[name] = round(time.perf_counter() - t, 1)
        log(f"  warm-up {name}: {warmup_s[name]:.1f} s")
    times = {name: [] for name, _ in runs}
    for r in range(args.repeats):
        for name, step in runs:
            dt = time_block(step, tokens, args.steps, args.device)
            times[name].append(dt)
            log(f"  block {r + 1} {name}: {args.steps * args.batch * T / dt:,.0f} tokens/s")
    tps = {k: args.steps * args.batch * T / statistics.median(v) for k, v in times.items()}
    tps.setdefault("reference", None)
    flops = trainer.raw_model.flops_per_token(T)
    result = {
        "benchmark": "train",
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "preset": args.preset,
        "layers": mc.n_layer,
        "width": mc.n_embd,
        "context": T,
        "batch": args.batch,
        "vocab": mc.padded_vocab_size,
        "threads": args.threads,
        "compile": args.compile,
        "precision": args.precision,
        "lmforge_params": trainer.raw_model.num_params(),
        "reference_params": ref_params,
        "lmforge_tokens_per_s": round(tps["lmforge"], 1),
        "reference_tokens_per_s": round(tps["reference"], 1) if tps["reference"] else None,
        "speedup": round(tps["lmforge"] / tps["reference"], 3) if tps["reference"] else None,
        "reference": ref_name,
        "lmforge_warmup_s": warmup_s["lmforge"],  # the untimed warm-up steps, compilation included
        "reference_warmup_s": warmup_s["reference"],
        "flops_per_token": flops,
        "mfu": None,
        "reference_mfu": None,
    }
    if gpu:
        peak = peak_bf16_flops(torch.device("cuda"))
        result.update(peak_bf16_tflops=round(peak / 1e12, 1), mfu=round(tps["lmforge"] * flops / peak, 4),
                      reference_mfu=round(tps["reference"] * flops / peak, 4) if tps["reference"] else None)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
