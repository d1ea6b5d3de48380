"""Time one full TD-MPC2 world-model update (losses, Adam steps, policy prior, target Polyak), fp32 vs bf16.

    python benchmarks/world_model_update.py --threads 1 2 --precision fp32 bf16
    python benchmarks/world_model_update.py --task mt30 --size 5 --batch 256 --horizon 16 --rho 0.99 --threads 2

For each thread count: a bf16-vs-fp32 GEMM probe (so a machine without fast bf16 says so), then the precisions'
updates interleaved rep by rep, each on its own copy of one model: median wall and CPU seconds per update and the
speed-up. Inputs are random (speed does not depend on values).
"""

from __future__ import annotations

import argparse
import copy
import resource

import torch

from pwm.algorithms.tdmpc2 import TDMPC2
from pwm.config import TDMPC2Config, WorldModelConfig
from pwm.data.batch import SequenceBatch
from pwm.models.world_model import WorldModel
from pwm.utils.benchmark import interleaved, machine_line, print_probe, print_table
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
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=5, help="timed updates per precision and thread count")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()

    tuned = tune_cpu_allocator()
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = WorldModel(WorldModelConfig(size=args.size, task=args.task)).to(device)
    cfg = TDMPC2Config(batch_size=args.batch, horizon=args.horizon, rho=args.rho)
    algos = {name: TDMPC2(copy.deepcopy(model), cfg, name) for name in args.precision}
    batch = random_batch(model, args.batch, args.horizon, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(
        f"{args.task} size={args.size}M params={model.num_trainable_params() / 1e6:.2f}M batch={args.batch} "
        f"horizon={args.horizon} rho={args.rho} allocator_tuned={tuned} {machine_line(device)}"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        print_probe(device, threads)
        steps = {name: (lambda a=algo: a.update(batch)) for name, algo in algos.items()}
        interleaved(steps, args.warmup, sync)
        print_table(threads, interleaved(steps, args.steps, sync), "update")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB", end="")
    if device.type == "cuda":
        print(f"  peak CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB", end="")
    print()


if __name__ == "__main__":
    main()
