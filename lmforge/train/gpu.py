"""What the trainer needs to know about a CUDA GPU: its bf16 peak, for MFU.

MFU (model FLOPs utilisation, PaLM appendix B) is the model's FLOPs per second over the
chip's peak. The peak is the vendor's dense bf16 tensor-core figure (no 2:4 sparsity) for the
GPU torch reports, from `DATASHEET_BF16_TFLOPS`; a GPU not in the table is measured instead
(`measured_bf16_flops`: an 8192³ bf16 matrix product, ~790 TFLOP/s on an H200 against its
989 on paper), and the source is said beside the figure, so an MFU is never silently
computed against a different denominator.
"""

from __future__ import annotations

import time

import torch

# Dense bf16 tensor-core TFLOP/s from the vendors' datasheets (the sparse figures are twice these).
# Matched against `torch.cuda.get_device_name()`, most specific first.
DATASHEET_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200 NVL", 835.0),
    ("H200", 989.4),  # SXM; the same chip and clocks as the H100 SXM, more memory
    ("H100 NVL", 835.0),
    ("H100 PCIE", 756.0),
    ("H100", 989.4),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H800", 989.4),
    ("GH200", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),  # SXM and PCIe alike
    ("A800", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("RTX 4090", 165.2),  # bf16 with float32 accumulation, as torch runs it
    ("A10G", 70.0),
)


def datasheet_bf16_flops(name: str) -> float | None:
    """The datasheet dense bf16 FLOP/s of a GPU named `name` (torch's device name), or None."""
    upper = name.upper()
    for key, tflops in DATASHEET_BF16_TFLOPS:
        if key in upper:
            return tflops * 1e12
    return None


def measured_bf16_flops(device: torch.device | str = "cuda", n: int = 8192, iters: int = 20) -> float:
    """bf16 matrix-product FLOP/s measured on `device` (an n³ product, after 3 warm-ups)."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * n**3 * iters / (time.perf_counter() - t)


def peak_bf16_flops(device: torch.device | str = "cuda") -> tuple[float, str]:
    """(peak FLOP/s, where it came from) for MFU: the datasheet's, else measured on the spot."""
    name = torch.cuda.get_device_name(torch.device(device))
    flops = datasheet_bf16_flops(name)
    if flops is not None:
        return flops, f"{name} datasheet, dense bf16"
    return measured_bf16_flops(device), f"{name} not in lmforge's datasheet table: measured 8192^3 bf16 matmul"


def use_fast_float32() -> None:
    """TF32 for the float32 matrix products left outside autocast (cuBLAS and cuDNN)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
