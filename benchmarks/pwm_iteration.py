"""Time one PWM iteration (actor step through H imagined steps + critic fitting) and its parts, fp32 vs bf16.

    python benchmarks/pwm_iteration.py --threads 1 2 --precision fp32 bf16
    python benchmarks/pwm_iteration.py --task mt30 --size 5 --batch 512 --horizon 16 --threads 2

For each thread count: a bf16-vs-fp32 GEMM probe, then the precisions' iterations interleaved rep by rep (each
on its own copy of the actor and critic, one shared frozen world model): median wall and CPU seconds per
iteration, the speed-up, and the mean split into imagined rollout, actor backward+step and critic fitting.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

import pwm.algorithms.pwm as pwm_module
from pwm.algorithms.pwm import PWM
from pwm.config import PWMConfig, WorldModelConfig
from pwm.models.world_model import WorldModel
from pwm.utils.benchmark import interleaved, machine_line, print_probe, print_table
from pwm.utils.perf import tune_cpu_allocator


def time_parts(parts: dict[str, float], sync) -> None:
    """Accumulate the wall time of PWM's actor step and critic fit (module globals ``PWM.update`` calls)."""
    for name in ("actor_step", "fit_critic"):
        fn = getattr(pwm_module, name)

        def wrapper(*a, _fn=fn, _name=name):
            sync()
            start = time.perf_counter()
            out = _fn(*a)
            sync()
            parts[_name] += time.perf_counter() - start
            return out

        setattr(pwm_module, name, wrapper)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="mt30")
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=4, help="timed iterations per precision and thread count")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()

    tuned = tune_cpu_allocator()
    torch.manual_seed(0)
    device = torch.device(args.device)
    wm = WorldModel(WorldModelConfig(size=args.size, task=args.task)).to(device)
    cfg = PWMConfig(batch_size=args.batch, horizon=args.horizon)
    algos = {}
    for name in args.precision:
        torch.manual_seed(1)  # the same actor and critic initialisation for every precision
        algos[name] = PWM(wm, cfg, task=10, precision=name)
    obs = torch.randn(args.batch, wm.cfg.obs_dim, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(
        f"{args.task} {args.size}M world model, H={args.horizon}, B={args.batch}, critic "
        f"{cfg.critic_iterations}x{cfg.critic_batches} steps, allocator_tuned={tuned} {machine_line(device)}"
    )
    parts: dict[str, float] = defaultdict(float)
    time_parts(parts, sync)
    for threads in args.threads:
        torch.set_num_threads(threads)
        print_probe(device, threads)
        for algo in algos.values():  # warm-up
            algo.update(obs)
        for name, algo in algos.items():
            algo.update = _tracked(algo.update, name, parts)
        parts.clear()
        timings = interleaved({name: (lambda a=algo: a.update(obs)) for name, algo in algos.items()}, args.steps, sync)
        print_table(threads, timings, "iteration")
        for name, t in timings.items():
            actor, critic = parts[f"{name}/actor_step"] / args.steps, parts[f"{name}/fit_critic"] / args.steps
            rollout = sum(t["wall"]) / args.steps - actor - critic
            print(
                f"  threads={threads} {name} split: imagined rollout {rollout:.3f}  actor backward+step {actor:.3f}  "
                f"critic fitting {critic:.3f}"
            )
        for algo in algos.values():
            algo.update = algo.update.inner


def _tracked(update, name: str, parts: dict[str, float]):
    """``update`` that files the parts timed during it under ``<name>/<part>``."""

    def wrapper(obs):
        before = {k: parts[k] for k in ("actor_step", "fit_critic")}
        out = update(obs)
        for k, v in before.items():
            parts[f"{name}/{k}"] += parts[k] - v
        return out

    wrapper.inner = update
    return wrapper


if __name__ == "__main__":
    main()
