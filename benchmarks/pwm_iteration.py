"""Time one PWM iteration (actor step through H imagined steps + critic fitting) and its parts.

    python benchmarks/pwm_iteration.py --task mt30 --size 5 --batch 512 --horizon 16 --threads 2

Prints seconds per iteration and the share of the actor step and of critic fitting.
"""

from __future__ import annotations

import argparse
import time

import torch

from pwm.algorithms.pwm import PWM
from pwm.config import PWMConfig, WorldModelConfig
from pwm.models.world_model import WorldModel
from pwm.utils.perf import tune_cpu_allocator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="mt30")
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()

    tuned = tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    wm = WorldModel(WorldModelConfig(size=args.size, task=args.task)).to(device)
    algo = PWM(wm, PWMConfig(batch_size=args.batch, horizon=args.horizon), task=10)
    obs = torch.randn(args.batch, wm.cfg.obs_dim, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    parts = {"actor": 0.0, "critic": 0.0}
    fit, step = algo._fit_critic, algo._actor_step

    def timed(name, fn):
        def wrapper(*a):
            sync()
            t = time.perf_counter()
            out = fn(*a)
            sync()
            parts[name] += time.perf_counter() - t
            return out

        return wrapper

    algo.update(obs)  # warm-up
    algo._fit_critic, algo._actor_step = timed("critic", fit), timed("actor_backward", step)
    parts = {"actor_backward": 0.0, "critic": 0.0}
    times = []
    for _ in range(args.steps):
        sync()
        t = time.perf_counter()
        algo.update(obs)
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    median, n = times[len(times) // 2], args.steps
    rollout = sum(times) / n - (parts["actor_backward"] + parts["critic"]) / n
    print(
        f"{args.task} {args.size}M world model, H={args.horizon}, B={args.batch}, threads={args.threads}, "
        f"device={device}, allocator_tuned={tuned}"
    )
    print(f"seconds/iteration: median {median:.3f}  min {times[0]:.3f}  max {times[-1]:.3f}")
    print(
        f"  imagined rollout {rollout:.3f}  actor backward+step {parts['actor_backward'] / n:.3f}  "
        f"critic fitting {parts['critic'] / n:.3f} (8x4 steps)"
    )


if __name__ == "__main__":
    main()
