"""Pretraining throughput: lmforge's trainer vs transformers' GPT2LMHeadModel with a plain AdamW loop.

Both models have the same depth, width, heads, context, batch and (padded) vocabulary, and
the same embedding tying; both run on the same device in the same process, on the same
synthetic tokens (uniform random ids, as nanoGPT's `bench.py` uses), so data loading is not
measured. lmforge runs its real step function (`Trainer.step`: micro-batches, global-norm
clipping, the schedule, fused AdamW); the reference runs `loss = model(input_ids=x,
labels=x).loss; loss.backward(); opt.step(); opt.zero_grad()` with `torch.optim.AdamW` and
SDPA attention. On CUDA both use bf16 autocast; lmforge adds `torch.compile` (`--no-compile`
turns it off), the reference stays a plain eager loop unless `--reference-compile`.
Precision is always the same for both models. On a CPU that multiplies bf16 natively
(AVX512-BF16 or AMX) the default measures both float32 and bf16 autocast, one after the
other, and the headline figures are those of the precision `lmforge train` picks there by
itself (bf16; `--precision auto`); `by_precision` holds both. `lmforge_warmup_s` is the
warm-up time, compilation included.

Timing: `--warmup` untimed steps each (compilation included there), then `--repeats` blocks
of `--steps` steps, interleaved (lmforge, reference, lmforge, ...) so a noisy neighbour on
a shared machine hurts both alike; the figure is the median block. One process, `--threads`
CPU threads (default 1: on a busy 2-core machine two threads are several times slower).

The allocator matters to the reference. glibc hands big blocks out with mmap and gives them
back on free, so each fresh activation tensor is faulted in page by page; transformers'
model allocates many, lmforge's step reuses its buffers. `--tuned-malloc` turns that off
for the whole process (mallopt: no mmap, no trimming; the same as MALLOC_MMAP_THRESHOLD_ /
MALLOC_TRIM_THRESHOLD_ in the environment): the reference gains 13% (float32) to 30%
(bf16), lmforge nothing. Measured here (one AMD EPYC core with AVX512-BF16, `small`,
batch 8, each precision in a fresh process), lmforge / reference tokens/s:
  default glibc   float32 2,049 / 1,687 (1.21x)   bf16 6,136 / 3,592 (1.71x)
  --tuned-malloc  float32 2,137 / 1,892 (1.13x)   bf16 6,986 / 5,051 (1.38x)
(a shared machine: repeated runs move each figure by ~5-10%.)
In float32 both spend ~80% of a step in the same matrix products, already at MKL's sgemm
peak (~105-115 GFLOP/s), so float32 has little left to win; lmforge's margin there is the
attention (blocked causal products instead of SDPA's CPU flash kernel, ~14 against ~21 ms
a layer), the fused loss and the absence of page faults. In bf16 the products run ~4x
faster, the rest decides, and lmforge's blocked bf16 attention (~12 against ~22 ms a
layer) is most of its margin.

MFU (CUDA only): tokens/s x FLOPs per token / a bf16 matrix product's FLOP/s measured in
the same run; FLOPs per token = 6N + 12 * layers * context * width (N = matrix-product
parameters, the head included, the input embedding not; the PaLM formula nanoGPT uses).

Usage:
  python benchmarks/train.py                      # CPU, preset small, synthetic tokens, float32 and bf16
  python benchmarks/train.py --tuned-malloc       # the same without glibc's mmap page faults
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

from lmforge.train.model import GPT, PRESETS, preset_config
from lmforge.train.gpu import measured_bf16_flops
from lmforge.train.trainer import TrainConfig, Trainer, cpu_has_native_bf16, resolve_precision


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


def tune_malloc() -> bool:
    """glibc: keep freed memory in the heap (no mmap for big blocks, no trimming), so a fresh
    tensor reuses pages instead of faulting them in anew. Process-wide, so both models get it."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


MEASURED = ("lmforge_tokens_per_s", "reference_tokens_per_s", "speedup", "reference", "lmforge_warmup_s", "reference_warmup_s",
            "reference_params", "mfu", "reference_mfu", "peak_bf16_tflops")


def measure(args, precision: str, log) -> dict:
    """Warm up and time lmforge and the reference at one precision, interleaved."""
    args = argparse.Namespace(**{**vars(args), "precision": precision})
    trainer, ours = build_lmforge(args, args.vocab)
    mc = trainer.raw_model.config
    try:
        ref, ref_name, ref_params = build_reference(args, mc)
    except ImportError:
        ref, ref_name, ref_params = None, "transformers not installed (pip install transformers)", None
    T = mc.block_size
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab, (args.batch, T + 1), generator=gen)
    if args.device == "cuda":
        tokens = tokens.pin_memory()
    log(f"precision {precision}:")
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
    out = {
        "lmforge_tokens_per_s": round(tps["lmforge"], 1),
        "reference_tokens_per_s": round(tps["reference"], 1) if tps["reference"] else None,
        "speedup": round(tps["lmforge"] / tps["reference"], 3) if tps["reference"] else None,
        "reference": ref_name,
        "lmforge_warmup_s": warmup_s["lmforge"],  # the untimed warm-up steps, compilation included
        "reference_warmup_s": warmup_s["reference"],
        "reference_params": ref_params,
        "mfu": None,
        "reference_mfu": None,
    }
    if args.device == "cuda":
        flops = trainer.raw_model.flops_per_token(T)
        peak = measured_bf16_flops("cuda")
        out.update(peak_bf16_tflops=round(peak / 1e12, 1), mfu=round(tps["lmforge"] * flops / peak, 4),
                   reference_mfu=round(tps["reference"] * flops / peak, 4) if tps["reference"] else None)
    return out


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
    p.add_argument("--precision", choices=["auto", "both", "bf16", "fp32"], default="auto",
                   help="both models: bf16 autocast, float32, or both one after the other [auto: bf16 on CUDA; "
                        "on CPU both where it multiplies bf16 natively, else fp32]")
    p.add_argument("--reference-compile", action="store_true", help="torch.compile the reference too")
    p.add_argument("--tuned-malloc", action="store_true", help="glibc mallopt: no mmap/trim for big blocks (both models)")
    p.add_argument("--json", action="store_true", help="print only the JSON result line")
    args = p.parse_args(argv)
    gpu = args.device == "cuda"
    args.preset = args.preset or ("d12" if gpu else "small")
    args.batch = args.batch or (64 if gpu else 8)
    args.vocab = args.vocab or (50257 if gpu else 8192)
    args.steps = args.steps or (20 if gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (10 if gpu else 2)
    args.compile = gpu if args.compile is None else args.compile
    if args.precision == "auto":
        args.precision = "bf16" if gpu else ("both" if cpu_has_native_bf16() else "fp32")
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    if gpu and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible")
    tuned = tune_malloc() if args.tuned_malloc else False
    torch.set_num_threads(args.threads)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    mc = preset_config(args.preset, args.vocab)
    log(f"preset {args.preset}: {mc.n_layer} layers, width {mc.n_embd}, context {mc.block_size}, batch {args.batch}, "
        f"vocab {mc.padded_vocab_size}, device {args.device}, threads {args.threads}")
    by_precision = {}
    if len(precisions) == 1:
        by_precision[precisions[0]] = measure(args, precisions[0], log)
    else:  # each precision in a fresh process: the first would leave glibc's heap warmed for the second
        import subprocess

        for precision in precisions:
            cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--precision", precision, "--json"]
            log(f"precision {precision} (fresh process) ...")
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
            child = json.loads(done.stdout.strip().splitlines()[-1])
            by_precision[precision] = {k: child[k] for k in MEASURED if k in child}
            log(f"  lmforge {child['lmforge_tokens_per_s']:,.0f} tokens/s, reference {child['reference_tokens_per_s'] or 0:,.0f}")
    model = GPT(mc)  # for the parameter and FLOP counts
    # the headline is the precision `lmforge train` picks by itself on this machine
    default = resolve_precision("auto", args.device)
    head = default if default in by_precision else precisions[0]
    result = {
        "benchmark": "train",
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "preset": args.preset,
        "layers": mc.n_layer,
        "width": mc.n_embd,
        "context": mc.block_size,
        "batch": args.batch,
        "vocab": mc.padded_vocab_size,
        "threads": args.threads,
        "compile": args.compile,
        "tuned_malloc": tuned,
        "precision": head,
        "lmforge_params": model.num_params(),
        **by_precision[head],
        "flops_per_token": model.flops_per_token(mc.block_size),
        "by_precision": {k: {"lmforge_tokens_per_s": v["lmforge_tokens_per_s"], "reference_tokens_per_s": v["reference_tokens_per_s"],
                             "speedup": v["speedup"]} for k, v in by_precision.items()},
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
