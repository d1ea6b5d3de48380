"""Time one full TD-MPC2 world-model update (losses, Adam steps, policy prior, target Polyak).

    python benchmarks/world_model_update.py --task mt30 --size 5 --batch 256 --horizon 16 --rho 0.99 --threads 2

Prints seconds per update, updates/s and peak memory. Inputs are random (speed does not depend on values).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from pwm.algorithms.tdmpc2 import TDMPC2
from pwm.config import TDMPC2Config, WorldModelConfig
from pwm.data.batch import SequenceBatch
from pwm.models.world_model import WorldModel
from pwm.utils.perf import tune_cpu_allocator


def random_batch(model: WorldModel, batch: int, horizon: int, device: torch.device) -> SequenceBatch:
    cfg = model.cfg
    task = torch.randint(0, cfg.num_tasks, (batch,), device=device) if cfg.multitask else None
    return SequenceBatch(
        obs=torch.randn(horizon + 1, batch, cfg.obs_dim, device=device),
        action=torch.rand(horizon, batch, cfg.action_dim, device=device) * 2 - 1,
        reward=torch.rand(horizon, batch, device=device),
        task=task,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="mt30")
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--rho", type=float, default=0.99)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()

    tuned = tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = WorldModel(WorldModelConfig(size=args.size, task=args.task)).to(device)
    algo = TDMPC2(model, TDMPC2Config(batch_size=args.batch, horizon=args.horizon, rho=args.rho))
    batch = random_batch(model, args.batch, args.horizon, device)
    for _ in range(args.warmup):
        algo.update(batch)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        algo.update(batch)
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.task} size={args.size}M params={model.num_trainable_params() / 1e6:.2f}M batch={args.batch} "
        f"horizon={args.horizon} rho={args.rho} threads={args.threads} device={device} allocator_tuned={tuned}"
    )
    print(
        f"seconds/update: median {median:.3f}  min {times[0]:.3f}  max {times[-1]:.3f}  -> {1 / median:.2f} updates/s"
    )
    print(f"peak RSS {rss:.0f} MiB", end="")
    if device.type == "cuda":
        print(f"  peak CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB", end="")
    print()


if __name__ == "__main__":
    main()
