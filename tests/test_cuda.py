"""The trainer's CUDA path: skipped without a GPU (CI has none); benchmarks/gpu.sh runs it on one.

What a GPU user expects of a step, each checked here: bf16 autocast, torch.compile of the
whole model with the loss, fused AdamW, SDPA's flash kernel, no wait for the GPU inside a
step (`torch.cuda.set_sync_debug_mode("error")` raises on any copy to the host), the same
numbers as the CPU kernels, MFU in metrics.jsonl, and resume.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from test_train_data import make_mix

from lmforge.train.model import GPT, GPTConfig, preset_config
from lmforge.train.trainer import TrainConfig, Trainer, checkpoint_dirs, read_steps, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu.sh runs these on one)")


def tiny_trainer(tmp_path, **kw) -> Trainer:
    cfg = TrainConfig(manifest="unused", out_dir=str(tmp_path), batch_tokens=1024, micro_batch=4, device="cuda", steps=50, **kw)
    return Trainer(cfg, preset_config("tiny", 300))


@pytest.mark.parametrize("compile_", [False, True])
def test_a_step_never_waits_for_the_gpu(tmp_path, compile_):
    tr = tiny_trainer(tmp_path, compile=compile_)
    assert tr.precision == "bf16" and tr.optimizer.defaults.get("fused")
    tokens = torch.randint(0, 300, (8, 129)).pin_memory()
    pending = [tr.step_async(tokens)]  # the first step compiles
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            pending.append(tr.step_async(tokens))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    results = read_steps(pending)
    assert [r.step for r in results] == [1, 2, 3, 4]
    assert all(math.isfinite(r.loss) and math.isfinite(r.grad_norm) for r in results)
    assert results[-1].loss < results[0].loss


def test_cuda_plain_model_equals_the_cpu_kernels():
    """The readable model on CUDA (float32, TF32 off) and the CPU kernels: same loss and gradients."""
    torch.manual_seed(0)
    cpu = GPT(GPTConfig(vocab_size=500, n_layer=2, n_head=4, n_embd=64, block_size=64))
    gpu = GPT(cpu.config).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x, y = torch.randint(0, 500, (3, 64)), torch.randint(0, 500, (3, 64))
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        _, loss_c = cpu(x, y)
        _, loss_g = gpu(x.cuda(), y.cuda())
        g_c = torch.autograd.grad(loss_c, list(cpu.parameters()))
        g_g = torch.autograd.grad(loss_g, list(gpu.parameters()))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.testing.assert_close(loss_g.cpu(), loss_c, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_g, g_c):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-5)


def test_compiled_bf16_model_equals_eager():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=500, n_layer=2, n_head=4, n_embd=64, block_size=128)).cuda()
    compiled = torch.compile(m)
    x, y = torch.randint(0, 500, (4, 128), device="cuda"), torch.randint(0, 500, (4, 128), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, eager = m(x, y)
        _, fused = compiled(x, y)
    g_e = torch.autograd.grad(eager, list(m.parameters()))
    g_f = torch.autograd.grad(fused, list(m.parameters()))
    torch.testing.assert_close(fused, eager, rtol=2e-2, atol=0)
    for a, b in zip(g_f, g_e):
        assert ((a - b).norm() / b.norm()) < 5e-2


def test_sdpa_takes_the_flash_kernel_in_bf16():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(2, 4, 256, 64, device="cuda", dtype=torch.bfloat16)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # raises if flash cannot take these inputs
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)


def test_train_on_cuda_writes_mfu_and_resumes_exactly(tmp_path):
    mix = make_mix(tmp_path / "mix")
    run = tmp_path / "run"
    cfg = TrainConfig(manifest=str(mix), out_dir=str(run), preset="tiny", batch_tokens=1024, micro_batch=4, device="cuda", steps=8,
                      eval_every=4, eval_tokens=256, checkpoint_every=4, log_every=3,
                      compile=False)  # compiled steps are tested above; this one is about the loop
    first = train(cfg)
    assert first.steps == 8 and first.mfu is not None and "TFLOP/s" in first.mfu_peak
    rows = (run / "metrics.jsonl").read_text().splitlines()
    parsed = [json.loads(x) for x in rows]
    assert [r["step"] for r in parsed] == list(range(1, 9))
    assert all(0 < r["mfu"] < 1 for r in parsed) and "val_loss/a" in parsed[3] and "val_loss/a" in parsed[7]
    last = checkpoint_dirs(run)[-1]
    shutil.rmtree(last)  # as if killed after step 4's checkpoint
    again = train(cfg)
    assert again.resumed_from == 4 and again.steps == 8
    again_rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in again_rows] == list(range(1, 9))
    for a, b in zip(again_rows, parsed):  # eager CUDA kernels are deterministic here: the same losses
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
