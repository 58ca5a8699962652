"""How close training runs to the hardware: the matmul peak, measured on the machine itself.

MFU = model FLOPs per second / peak FLOPs per second. The peak is not a constant from a table:
a short calibration multiplies square matrices in the training precision on the training device
(every process at once, as training runs them) and keeps the best rate. On GPUs the datasheet's
dense bf16 peak is reported beside it (nanoGPT's convention), since a measured peak there is
itself below the datasheet.
"""

from __future__ import annotations

import time

import torch

# dense bf16 tensor-core peaks (TFLOP/s) by device name; nanoGPT uses the A100's 312
DATASHEET_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0,
                    "V100": 125.0, "T4": 65.0}


def datasheet_peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v * 1e12 for k, v in DATASHEET_TFLOPS.items() if k in name), None)


def measure_peak_flops(device: torch.device, dtype: torch.dtype, seconds: float = 0.5, size: int | None = None) -> float:
    """Best FLOP/s of [n, n] @ [n, n] products over ~`seconds` (n = 4096 on GPU, 512 on CPU)."""
    n = size or (4096 if device.type == "cuda" else 512)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):                                  # warm-up: kernels chosen, caches filled
        a @ b
    sync()
    best, deadline, reps = 0.0, time.perf_counter() + seconds, 4
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - start))
    return best
