"""Sampling speed and memory of the memory-mapped offline dataset, including a dataset larger than a RAM budget.

Builds (or reuses) a synthetic dataset in TD-MPC2's chunk layout, converts it into the memmap cache, then samples
B=256 windows of H=16 and prints windows/s and memory in three regimes:

- warm: every page already in the page cache (the best case);
- cold: page cache dropped first (``/proc/sys/vm/drop_caches`` as root, else ``posix_fadvise(DONTNEED)`` on the
  cache files), so pages come from disk as they are touched;
- budget: the process may keep at most ``--ram-budget-gb`` of dataset pages resident. There is no cgroup here, so
  the budget is enforced by hand: whenever the resident file-backed memory (RssFile) exceeds it, the mapped pages
  are dropped (``madvise(MADV_DONTNEED)`` on the mappings, then ``posix_fadvise(DONTNEED)`` on the files). With a
  dataset several times the budget this is the larger-than-RAM case: most windows fault in from disk.

Peak RSS (``getrusage``) counts resident file pages too; RssAnon (private memory) is what a dataset larger than RAM
must keep small. Default run: ~1 GB mt80-shaped data, about a minute on 2 cores (first run; later runs reuse it).

    python benchmarks/data_loading.py                       # default
    python benchmarks/data_loading.py --dataset-gb 8 --ram-budget-gb 1 --seconds 20
"""

from __future__ import annotations

import argparse
import mmap
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDict

from pwm.data.buffer import DatasetSampler
from pwm.data.dataset import OfflineDataset, open_dataset
from pwm.data.tasks import get_task_set

CHUNK_BYTES = 256 * 2**20


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/pwm_bench_data"), help="dataset directory (reused)")
    p.add_argument("--dataset-gb", type=float, default=1.0, help="size of obs+action+reward+task in GB")
    p.add_argument("--task-set", choices=["mt30", "mt80"], default="mt80")
    p.add_argument("--ram-budget-gb", type=float, default=0.25, help="resident dataset pages allowed in 'budget'")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--seconds", type=float, default=5.0, help="sampling time per regime")
    p.add_argument("--access", nargs="+", choices=["auto", "normal", "random"], default=["normal", "random"])
    p.add_argument("--threads", type=int, default=1, help="torch threads (sampling itself is numpy)")
    return p.parse_args()


def build(out: Path, gb: float, task_set_name: str) -> None:
    """Random episodes in the official layout, ~256 MB per chunk; skipped when the directory already has data."""
    if any(out.glob("*.pt")):
        return
    ts = get_task_set(task_set_name)
    rows = ts.dataset_episode_length
    episode_bytes = rows * 4 * (ts.obs_dim + ts.action_dim + 2)
    total = int(gb * 1e9 // episode_bytes)
    per_chunk = max(1, CHUNK_BYTES // episode_bytes)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for i, lo in enumerate(range(0, total, per_chunk)):
        n = min(per_chunk, total - lo)
        task = torch.randint(len(ts), (n, 1), generator=g, dtype=torch.int32).expand(n, rows).clone()
        td = TensorDict(
            {
                "obs": torch.rand(n, rows, ts.obs_dim, generator=g),
                "action": torch.rand(n, rows, ts.action_dim, generator=g),
                "reward": torch.rand(n, rows, generator=g),
                "task": task,
            },
            batch_size=[n, rows],
        )
        torch.save(td, out / f"chunk_{i}.pt")


def mapped(ds: OfflineDataset) -> list[np.ndarray]:
    return [a for c in ds.chunks for a in (c.obs, c.action, c.reward)]


def files(ds: OfflineDataset) -> list[Path]:
    return [c.cache / f"{k}.npy" for c in ds.chunks for k in ("obs", "action", "reward")]


def evict(ds: OfflineDataset, drop_caches: bool = False) -> str:
    """Drop the dataset's pages: unmap them from this process, then evict them from the page cache."""
    for arr in mapped(ds):
        arr.base.madvise(mmap.MADV_DONTNEED)
    if drop_caches:
        try:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("1\n")
            return "drop_caches"
        except OSError:
            pass
    for path in files(ds):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "posix_fadvise"


def warm(ds: OfflineDataset) -> None:
    """Read every file once so all pages sit in the page cache."""
    for path in files(ds):
        with open(path, "rb") as f:
            while f.read(16 * 2**20):
                pass


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(sampler: DatasetSampler, seconds: float, budget_kb: int | None = None) -> tuple[float, int]:
    """Windows per second over ``seconds``; with a budget, pages are evicted whenever RssFile exceeds it."""
    windows = evictions = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            sampler.sample()
        windows += 10 * sampler.batch_size
        if budget_kb is not None and status_kb("RssFile") > budget_kb:
            evict(sampler.dataset)
            evictions += 1
    return windows / (time.perf_counter() - start), evictions


def run_regimes(ds: OfflineDataset, args: argparse.Namespace, access: str) -> None:
    sampler = DatasetSampler(ds, args.batch_size, args.horizon, seed=0)
    how = evict(ds, drop_caches=True)
    rate, _ = measure(sampler, args.seconds)
    print(f"[{access}] cold   ({how}, first {args.seconds:g} s): {rate:9.0f} windows/s")
    warm(ds)
    rate, _ = measure(sampler, args.seconds)
    print(f"[{access}] warm   (all pages cached): {rate:9.0f} windows/s   RssFile {status_kb('RssFile') / 1e6:.2f} GB")
    evict(ds, drop_caches=True)
    rate, evictions = measure(sampler, args.seconds, int(args.ram_budget_gb * 1e6))
    print(f"[{access}] budget ({args.ram_budget_gb:g} GB resident): {rate:9.0f} windows/s   ({evictions} evictions)")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    build(args.out, args.dataset_gb, args.task_set)
    t1 = time.perf_counter()
    ds = open_dataset(args.out, args.task_set)
    t2 = time.perf_counter()
    size = sum(a.nbytes for a in mapped(ds)) / 1e9
    print(
        f"dataset: {ds.num_episodes} episodes x {ds.episode_length} rows, obs {ds.obs_dim}, {len(ds.chunks)} files,"
        f" {size:.2f} GB memmapped (build {t1 - t0:.1f} s, open/convert {t2 - t1:.1f} s)"
    )
    print(
        f"B={args.batch_size} H={args.horizon}; RAM budget {args.ram_budget_gb:g} GB ({size / args.ram_budget_gb:.1f}x"
        " smaller than the dataset)"
    )
    for access in args.access:
        run_regimes(open_dataset(args.out, args.task_set, access=access), args, access)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"peak RSS {peak:.2f} GB (includes resident file pages); RssAnon now {status_kb('RssAnon') / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
