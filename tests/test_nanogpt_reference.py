"""benchmarks/nanogpt.py, the GPU benchmark's reference: nanoGPT's model at lmforge's shapes."""

from __future__ import annotations

import importlib.util
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
