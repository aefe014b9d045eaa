"""benchmarks/nanogpt.py, the GPU benchmark's reference: nanoGPT's model at lmforge's shapes."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def nanogpt():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "nanogpt.py"
    spec = importlib.util.spec_from_file_location("bench_nanogpt", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_tiny_model_trains_one_step_from_a_uniform_start(nanogpt):
    """At init the logits are near zero, so the loss is ~ln(V); one AdamW step lowers it on the same batch."""
    torch.manual_seed(0)
    cfg = nanogpt.GPTConfig(block_size=32, vocab_size=256, n_layer=2, n_head=2, n_embd=32)
    model = nanogpt.GPT(cfg)
    assert model.lm_head.weight is model.transformer.wte.weight  # tied
    idx = torch.randint(0, 256, (4, 33))
    x, y = idx[:, :-1], idx[:, 1:].contiguous()
    logits, loss = model(x, y)
    assert logits.shape == (4, 32, 256)
    assert loss.item() == pytest.approx(math.log(256), rel=0.02)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95), device_type="cpu")
    assert [len(g["params"]) for g in opt.param_groups] == [2 + 2 * 4, 2 * 8 + 2]  # wte, wpe, 4 matrices a block; 4 biases and 2 norms a block, ln_f
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    assert model(x, y)[1].item() < loss.item()
    logits, loss = model(x)  # inference: the last position only
    assert logits.shape == (4, 1, 256) and loss is None


def test_gpt2_small_has_nanogpts_parameter_count(nanogpt):
    """nanoGPT prints 'number of parameters: 123.69M' for GPT-2 small with the 50304 vocabulary."""
    with torch.device("meta"):
        model = nanogpt.GPT(nanogpt.GPTConfig())
    assert model.get_num_params() == 123_689_472
    assert model.get_num_params(non_embedding=False) == 123_689_472 + 1024 * 768
    with torch.device("meta"):  # train.py's bias = False, as the benchmark builds it: "123.59M"
        model = nanogpt.GPT(nanogpt.GPTConfig(bias=False))
    assert model.get_num_params() == 123_587_328


def test_benchmark_cuda_json_on_a_faked_device(monkeypatch, tmp_path):
    """benchmarks/train.py's CUDA-only lines (defaults, MFU, peak memory, --out) on CPU, torch.cuda faked."""
    import argparse

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    on_cpu = lambda build: lambda args, *a: build(argparse.Namespace(**{**vars(args), "device": "cpu"}), *a)  # noqa: E731
    monkeypatch.setattr(bench, "build_lmforge", on_cpu(bench.build_lmforge))
    monkeypatch.setattr(bench, "build_reference", on_cpu(bench.build_reference))
    monkeypatch.setattr(bench, "peak_bf16_flops", lambda device: (989.4e12, "NVIDIA H200 datasheet, dense bf16"))
    monkeypatch.setattr(bench, "measured_bf16_flops", lambda device: 790e12)
    for name, value in [("is_available", lambda: True), ("synchronize", lambda: None), ("reset_peak_memory_stats", lambda: None),
                        ("memory_allocated", lambda: 2**30), ("max_memory_allocated", lambda: 3 * 2**30),
                        ("get_device_name", lambda *a: "NVIDIA H200")]:
        monkeypatch.setattr(torch.cuda, name, value)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self)
    out = tmp_path / "train-gpu.jsonl"
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32  # main() turns TF32 on
    try:
        result = bench.main(["--device", "cuda", "--preset", "tiny", "--batch", "2", "--steps", "1", "--repeats", "1", "--warmup", "1",
                             "--no-compile", "--json", "--out", str(out)])
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    assert result["precision"] == "bf16" and result["device"] == "NVIDIA H200" and "torch" in result
    assert result["reference"].startswith("nanoGPT") and "bf16 autocast" in result["reference"]
    assert not [key for key in result if key.endswith("_error")]
    flops = result["flops_per_token"]
    assert result["mfu"] == round(result["lmforge_tokens_per_s"] * flops / 989.4e12, 4)
    assert result["reference_mfu_vs_measured"] == round(result["reference_tokens_per_s"] * flops / 790e12, 4)
    assert (result["peak_bf16_tflops"], result["measured_bf16_tflops"]) == (989.4, 790.0)
    assert result["lmforge_peak_mem_gib"] == result["reference_peak_mem_gib"] == 2.0
    assert result["lmforge_warmup_s"] is not None and result["reference_warmup_s"] is not None
    assert out.read_text().splitlines() == [json.dumps(result)]


def test_benchmark_keeps_one_models_figures_when_the_other_fails(monkeypatch):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def out_of_memory(*args):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(bench, "build_nanogpt", out_of_memory)
    result = bench.main(["--reference", "nanogpt", "--preset", "tiny", "--batch", "1", "--steps", "1", "--repeats", "1",
                         "--warmup", "1", "--precision", "fp32", "--json"])
    assert result["reference_error"] == "RuntimeError: CUDA out of memory (simulated)"
    assert result["lmforge_tokens_per_s"] > 0 and result["reference_tokens_per_s"] is None and result["speedup"] is None
