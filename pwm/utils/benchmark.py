"""For the speed benchmarks in ``benchmarks/``: fp32 vs bf16 measured interleaved in one process, per thread count.

Interleaving (rep 1 fp32, rep 1 bf16, rep 2 fp32, ...) makes the ratio robust to load from other processes that
comes and goes; absolute times on a shared machine are not.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch

from pwm.utils.perf import gemm_probe


def machine_line(device: torch.device) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return f"device={device} torch={torch.__version__} cpus={os.cpu_count()} load average={load[0]:.2f} {load[1]:.2f}"


def print_probe(device: torch.device, threads: int) -> None:
    probe = gemm_probe(device)
    print(
        f"  GEMM probe ({threads} thread(s), [4096x512]·[512x512]): fp32 {probe['fp32_gflops']:.0f} GFLOP/s, "
        f"bf16 {probe['bf16_gflops']:.0f} GFLOP/s ({probe['speedup']:.2f}x) -> {probe['verdict']} ({probe['isa']})"
    )


def interleaved(
    steps: dict[str, Callable[[], None]], reps: int, sync: Callable[[], None]
) -> dict[str, dict[str, list[float]]]:
    """Time ``reps`` calls of each step, alternating between them; wall and process CPU seconds per call."""
    out = {name: {"wall": [], "cpu": []} for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            sync()
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            sync()
            out[name]["wall"].append(time.perf_counter() - wall)
            out[name]["cpu"].append(time.process_time() - cpu)
    return out


def print_table(threads: int, timings: dict[str, dict[str, list[float]]], unit: str) -> None:
    """Median wall and CPU seconds per call of each precision and the fp32/bf16 ratio of the medians."""
    med = {name: statistics.median(t["wall"]) for name, t in timings.items()}
    for name, t in timings.items():
        cpu = statistics.median(t["cpu"])
        print(
            f"  threads={threads} {name}: wall {med[name]:.3f} s/{unit} (min {min(t['wall']):.3f}, max "
            f"{max(t['wall']):.3f}), CPU {cpu:.3f} s/{unit} (CPU/wall {cpu / med[name]:.2f})"
        )
    if "fp32" in med and "bf16" in med:
        print(f"  threads={threads} speed-up bf16 vs fp32 (median wall): {med['fp32'] / med['bf16']:.2f}x")
