"""Process-level performance settings for CPU training, applied by scripts and benchmarks (never on import), and a
GEMM probe that says whether bf16 matmuls are fast on this machine."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time

import torch

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4


def tune_cpu_allocator() -> bool:
    """Keep freed tensor memory in glibc's heap instead of returning it to the OS.

    glibc serves allocations above 32 MiB with fresh ``mmap`` pages and unmaps them on free, so every large
    activation of a world-model update pays page faults and zeroing: a 40 MB elementwise add took 20 ms instead
    of 3.5 ms on the 2-core CI machine. Returns False where glibc is not the allocator (nothing changes).
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        return bool(ok and libc.mallopt(_M_TOP_PAD, 1 << 28))
    except (OSError, AttributeError):
        return False


def gemm_probe(device: torch.device | str = "cpu", m: int = 4096, k: int = 512, n: int = 512, reps: int = 10) -> dict:
    """GFLOP/s of one [m, k]·[k, n] matmul in fp32 and in bf16 on ``device``, and which path that implies.

    A CPU without native bf16 (AVX512-BF16 / AMX) runs bf16 matmuls through conversions, slower than fp32, so
    ``bf16`` would be silently slow there; benchmarks print this next to their timings.
    """
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        sync()
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        rates[name] = 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9
    speedup = rates["bf16"] / rates["fp32"]
    native = speedup > 1.2
    if device.type == "cpu":
        onednn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: "unknown")()
        isa = f"{torch.backends.cpu.get_cpu_capability()}, oneDNN bf16 support: {onednn}"
    else:
        isa = torch.cuda.get_device_name(device)
    verdict = "native bf16 GEMM" if native else "NO fast bf16 GEMM on this machine: bf16 will not pay"
    return {"fp32_gflops": rates["fp32"], "bf16_gflops": rates["bf16"], "speedup": speedup, "native_bf16": native,
            "isa": isa, "verdict": verdict}  # fmt: skip
