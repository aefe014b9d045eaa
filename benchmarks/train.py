"""Pretraining throughput: lmforge's trainer against nanoGPT's model (CUDA) or transformers' GPT-2 (CPU).

Both models have the same depth, width, heads, context, batch and (padded) vocabulary, and
the same embedding tying; both run on the same device in the same process, on the same
synthetic tokens (uniform random ids, as nanoGPT's `bench.py` uses), so data loading is not
measured. lmforge runs its real step function (`Trainer.step`: micro-batches, global-norm
clipping, the schedule, fused AdamW). Precision is always the same for both models.
`lmforge_warmup_s` / `reference_warmup_s` are the warm-up times, compilation included.

The reference (`--reference`):
- `nanogpt` (the default on CUDA): karpathy/nanoGPT's model (`benchmarks/nanogpt.py`:
  learned positions, LayerNorm, GELU, flash attention through SDPA; without biases, as
  nanoGPT's train.py and bench.py configure it, 123.59M parameters at d12) and one
  iteration of its train.py with gradient accumulation 1: bf16 autocast forward with the
  loss, backward, `clip_grad_norm_(params, 1.0)`, fused AdamW (lr 6e-4, betas 0.9/0.95,
  weight decay 0.1 on the matrices), `zero_grad(set_to_none=True)`. It is compiled exactly
  when lmforge is (`torch.compile(model)`, as train.py does; `--no-compile` turns both off).
  Issue 16 quotes nanoGPT on an H200: 517k tokens/s at 124M (55.5% MFU), 196k at 350M.
- `transformers` (the default on CPU): GPT2LMHeadModel with SDPA attention, `loss =
  model(input_ids=x, labels=x).loss; loss.backward(); opt.step(); opt.zero_grad()` with
  `torch.optim.AdamW`, eager unless `--reference-compile`.
On CUDA both use bf16 autocast and TF32. On a CPU that multiplies bf16 natively
(AVX512-BF16 or AMX) the default measures both float32 and bf16 autocast, one after the
other, and the headline figures are those of the precision `lmforge train` picks there by
itself (bf16; `--precision auto`); `by_precision` holds both.

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

MFU (CUDA only): tokens/s x FLOPs per token / peak FLOP/s, against two peaks: `mfu` and
`reference_mfu` use the GPU's datasheet dense bf16 peak (`peak_bf16_tflops`, 989.4 on an
H100/H200 SXM; `peak_source` says where it came from), `mfu_vs_measured` and
`reference_mfu_vs_measured` an 8192^3 bf16 matrix product measured in the same run
(`measured_bf16_tflops`, ~790 on an H200). FLOPs per token are lmforge's
`flops_per_token(T)` for both: 6N + 12 * layers * context * width (N = matrix-product
parameters, the head included, the input embedding not; the PaLM formula nanoGPT's
`estimate_mfu` uses). The two models have the same matrix-product shapes (q, k, v, the
output projection, a 4x MLP, the tied head), so one count is right for both; nanoGPT's own
count also adds its LayerNorm weights (<0.1%). `lmforge_peak_mem_gib` /
`reference_peak_mem_gib`: `torch.cuda.max_memory_allocated` over each model's build and
warm-up, less what the other model already held. A model that fails (out of memory, a
compile error) is left out with `lmforge_error` / `reference_error` and the exit status is 1.
Defaults on CUDA: d12 at batch 32, d24 at batch 16, vocabulary 50257 (padded to 50304),
10 warm-up steps, 3 blocks of 20 steps.

Usage:
  python benchmarks/train.py                      # CPU, preset small, synthetic tokens, float32 and bf16
  python benchmarks/train.py --tuned-malloc       # the same without glibc's mmap page faults
  python benchmarks/train.py --reference nanogpt  # CPU against nanoGPT's model (the GPU path's code, on CPU)
  python benchmarks/train.py --device cuda --preset d24 --out gpu.jsonl   # also appends the JSON line there
  python benchmarks/train.py --json               # only the JSON line
  benchmarks/gpu.sh                               # the one-shot GPU run: CUDA tests, d12 and d24, into gpu-out/
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

from lmforge.train.model import GPT, PRESETS, preset_config
from lmforge.train.gpu import measured_bf16_flops, peak_bf16_flops
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
    # on CUDA the step `lmforge train` runs there: queued without waiting for the GPU (the loss is read later)
    return trainer, trainer.step_async if args.device == "cuda" else trainer.step


def build_transformers(args, model_cfg):
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


def load_nanogpt():
    """benchmarks/nanogpt.py as a module, wherever this script is run from."""
    path = Path(__file__).resolve().parent / "nanogpt.py"
    spec = importlib.util.spec_from_file_location("bench_nanogpt", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks the module up there
    spec.loader.exec_module(module)
    return module


def build_nanogpt(args, model_cfg):
    """nanoGPT's model and one iteration of its train.py (gradient_accumulation_steps 1, bf16: no grad scaler)."""
    nanogpt = load_nanogpt()
    cfg = nanogpt.GPTConfig(block_size=model_cfg.block_size, vocab_size=model_cfg.padded_vocab_size, n_layer=model_cfg.n_layer,
                            n_head=model_cfg.n_head, n_embd=model_cfg.n_embd, dropout=0.0,
                            bias=False)  # train.py's default (model.py's is True): no biases, as lmforge
    torch.manual_seed(0)
    model = nanogpt.GPT(cfg).to(args.device)
    model.train()
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=6e-4, betas=(0.9, 0.95), device_type=args.device)
    fwd = torch.compile(model) if args.compile else model  # the same setting as lmforge's
    amp = torch.autocast(args.device, dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()

    def step(tokens):
        for group in opt.param_groups:  # train.py sets the scheduled lr each iteration (a float: no device sync)
            group["lr"] = 6e-4
        batch = tokens.to(args.device, non_blocking=True)
        x, y = batch[:, :-1].contiguous(), batch[:, 1:].contiguous()  # nanoGPT's get_batch hands over contiguous x, y
        with amp:
            _, loss = fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    n_params = sum(p.numel() for p in model.parameters())
    fused = bool(opt.defaults.get("fused"))
    extras = (" + bf16 autocast" if args.precision == "bf16" else "") + (" + torch.compile" if args.compile else "")
    return step, f"nanoGPT model.py (benchmarks/nanogpt.py) + {'fused ' if fused else ''}AdamW{extras}", n_params


def build_reference(args, model_cfg):
    return (build_nanogpt if args.reference == "nanogpt" else build_transformers)(args, model_cfg)


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
            "reference_params", "mfu", "reference_mfu", "peak_bf16_tflops", "peak_source", "mfu_vs_measured",
            "reference_mfu_vs_measured", "measured_bf16_tflops", "lmforge_peak_mem_gib", "reference_peak_mem_gib",
            "lmforge_error", "reference_error", "peak_error")


def measure(args, precision: str, log) -> dict:
    """Build, warm up and time lmforge and the reference at one precision, interleaved.

    A model that fails (out of memory, a compile error) is left out with its error in
    `lmforge_error` / `reference_error`, so one failure never costs the other model's figures.
    On CUDA each model's peak memory is `max_memory_allocated` over its build and warm-up, less
    what was allocated before it (the model built first)."""
    args = argparse.Namespace(**{**vars(args), "precision": precision})
    cuda = args.device == "cuda"
    mc = preset_config(args.preset, args.vocab)
    T = mc.block_size
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, args.vocab, (args.batch, T + 1), generator=gen)
    if cuda:
        tokens = tokens.pin_memory()
    log(f"precision {precision}:")
    built = {"trainer": None, "reference": None, "reference_params": None}

    def lmforge():
        built["trainer"], step = build_lmforge(args, args.vocab)
        return step

    def reference():
        step, built["reference"], built["reference_params"] = build_reference(args, mc)
        return step

    runs, warmup_s, peak_mem, errors = {}, {"lmforge": None, "reference": None}, {}, {}
    for name, build in (("lmforge", lmforge), ("reference", reference)):
        if cuda:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        try:
            step = build()
            t = time.perf_counter()
            for _ in range(args.warmup):  # compilation happens here
                step(tokens)
            _sync(args.device)
        except Exception as e:  # noqa: BLE001 - one model's failure must not lose the other's figures
            if isinstance(e, ImportError) and name == "reference" and args.reference == "transformers":
                built["reference"] = "transformers not installed (pip install transformers)"
                continue
            step = None  # let a failed model's memory go
            errors[name] = f"{type(e).__name__}: {e}"[:1000]
            log(f"  {name} failed:")
            traceback.print_exc(file=sys.stderr)
            continue
        warmup_s[name] = round(time.perf_counter() - t, 1)
        runs[name] = step
        if cuda:
            peak_mem[name] = round((torch.cuda.max_memory_allocated() - base) / 2**30, 2)
        log(f"  warm-up {name}: {warmup_s[name]:.1f} s" + (f", peak memory {peak_mem[name]:.1f} GiB" if cuda else ""))
    times = {name: [] for name in runs}
    for r in range(args.repeats):
        for name, step in list(runs.items()):
            try:
                dt = time_block(step, tokens, args.steps, args.device)
            except Exception as e:  # noqa: BLE001
                errors[name] = f"{type(e).__name__}: {e}"[:1000]
                traceback.print_exc(file=sys.stderr)
                del runs[name], times[name]
                continue
            times[name].append(dt)
            log(f"  block {r + 1} {name}: {args.steps * args.batch * T / dt:,.0f} tokens/s")
    tps = {k: args.steps * args.batch * T / statistics.median(v) for k, v in times.items() if v}
    ours, ref = tps.get("lmforge"), tps.get("reference")
    out = {
        "lmforge_tokens_per_s": round(ours, 1) if ours else None,
        "reference_tokens_per_s": round(ref, 1) if ref else None,
        "speedup": round(ours / ref, 3) if ours and ref else None,
        "reference": built["reference"],
        "lmforge_warmup_s": warmup_s["lmforge"],  # the untimed warm-up steps, compilation included
        "reference_warmup_s": warmup_s["reference"],
        "reference_params": built["reference_params"],
        "mfu": None,
        "reference_mfu": None,
    }
    if cuda:
        # one FLOP count for both: the same matrix-product shapes (see the docstring)
        flops = (built["trainer"].raw_model if built["trainer"] else GPT(mc)).flops_per_token(T)
        try:  # after a failed model the device may be unusable: the tokens/s above must still be printed
            peak, source = peak_bf16_flops("cuda")
            measured = measured_bf16_flops("cuda")
        except Exception as e:  # noqa: BLE001
            errors["peak"] = f"{type(e).__name__}: {e}"[:1000]
            traceback.print_exc(file=sys.stderr)
            peak, source, measured = None, None, None
        mfu = lambda tokens_per_s, flop_s: round(tokens_per_s * flops / flop_s, 4) if tokens_per_s and flop_s else None  # noqa: E731
        tflops = lambda flop_s: round(flop_s / 1e12, 1) if flop_s else None  # noqa: E731
        out.update(mfu=mfu(ours, peak), reference_mfu=mfu(ref, peak), peak_bf16_tflops=tflops(peak), peak_source=source,
                   mfu_vs_measured=mfu(ours, measured), reference_mfu_vs_measured=mfu(ref, measured),
                   measured_bf16_tflops=tflops(measured), lmforge_peak_mem_gib=peak_mem.get("lmforge"),
                   reference_peak_mem_gib=peak_mem.get("reference"))
    out.update({f"{name}_error": error for name, error in errors.items()})
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--preset", choices=list(PRESETS), default=None, help="[small on CPU, d12 on CUDA]")
    p.add_argument("--reference", choices=["nanogpt", "transformers"], default=None,
                   help="the model lmforge is measured against [nanogpt on CUDA, transformers on CPU]")
    p.add_argument("--batch", type=int, default=None, help="sequences per step [8 on CPU; on CUDA 32 for d12, 16 for d24]")
    p.add_argument("--vocab", type=int, default=None, help="tokenizer vocabulary [8192 on CPU, 50257 on CUDA]")
    p.add_argument("--steps", type=int, default=None, help="steps per timed block [3 on CPU, 20 on CUDA]")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks per model, interleaved")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per model [2 on CPU, 10 on CUDA]")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="torch.compile lmforge, and the nanoGPT reference with it [on for CUDA]")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--precision", choices=["auto", "both", "bf16", "fp32"], default="auto",
                   help="both models: bf16 autocast, float32, or both one after the other [auto: bf16 on CUDA; "
                        "on CPU both where it multiplies bf16 natively, else fp32]")
    p.add_argument("--reference-compile", action="store_true", help="torch.compile the transformers reference too")
    p.add_argument("--tuned-malloc", action="store_true", help="glibc mallopt: no mmap/trim for big blocks (both models)")
    p.add_argument("--json", action="store_true", help="print only the JSON result line")
    p.add_argument("--out", default=None, help="also append the JSON result line to this file")
    args = p.parse_args(argv)
    gpu = args.device == "cuda"
    args.preset = args.preset or ("d12" if gpu else "small")
    args.reference = args.reference or ("nanogpt" if gpu else "transformers")
    args.batch = args.batch or ({"d12": 32, "d24": 16}.get(args.preset, 32) if gpu else 8)
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
            cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--precision", precision, "--json", "--out", ""]
            log(f"precision {precision} (fresh process) ...")
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
            child = json.loads(done.stdout.strip().splitlines()[-1])
            by_precision[precision] = {k: child[k] for k in MEASURED if k in child}
            log(f"  lmforge {child['lmforge_tokens_per_s'] or 0:,.0f} tokens/s, reference {child['reference_tokens_per_s'] or 0:,.0f}")
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
        **({"torch": torch.__version__, "cuda": torch.version.cuda} if gpu else {}),
        "by_precision": {k: {"lmforge_tokens_per_s": v["lmforge_tokens_per_s"], "reference_tokens_per_s": v["reference_tokens_per_s"],
                             "speedup": v["speedup"]} for k, v in by_precision.items()},
    }
    line = json.dumps(result)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    print(line)
    return result


if __name__ == "__main__":
    sys.exit(1 if any(key.endswith("_error") for key in main()) else 0)
