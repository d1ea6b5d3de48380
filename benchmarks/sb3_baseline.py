"""External baseline: Stable-Baselines3 PPO or SAC on one of our single-task envs (``pwm.training.sb3_run``).

Trains on one batched env through SB3's ``VecEnv`` interface (``--num-envs``, default: the task's own count from
``cfg/env/<env>.yaml``; ``--num-envs 0`` uses the single-env Gymnasium adapter). Writes ``run_info.json`` and
``metrics.csv`` (env_steps, eval/return ...) as train_dflex.py does, so ``scripts/plot_dflex.py`` reads all runs
alike; rerunning with the same ``--out`` resumes, and a finished run does nothing:

    python benchmarks/sb3_baseline.py --env dflex_hopper --algo ppo --steps 1000000 --out runs/ppo/1 --seed 1
    python benchmarks/sb3_baseline.py --env gym_hopper --algo sac --steps 100000 --out runs/sac/1 --eval-runs 10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

from pwm.training.sb3_run import Sb3Run, Sb3Settings

ROOT = Path(__file__).resolve().parents[1]


def task_num_envs(env: str) -> int:
    """The number of envs task ``env`` states in its config (``cfg/env/<env>.yaml``); 0 (one env) for a Gymnasium
    MuJoCo task (``gym_hopper`` ...)."""
    if env.startswith("gym_"):
        return 0
    return int(OmegaConf.load(ROOT / "cfg" / "env" / f"{env}.yaml").config.num_envs)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="dflex_cartpole")
    p.add_argument("--algo", choices=["sac", "ppo"], default="ppo")
    p.add_argument("--steps", type=int, default=100_000, help="env steps")
    p.add_argument("--eval-every", type=int, default=10_000, help="env steps between evaluations")
    p.add_argument("--eval-runs", type=int, default=12, help="evaluation episodes (general.eval_runs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--num-envs", type=int, default=None, help="batched envs (default: the task's; 0: adapter)")
    p.add_argument("--n-steps", type=int, default=32, help="PPO: rollout steps per env")
    p.add_argument("--minibatches", type=int, default=4, help="PPO: minibatches per epoch")
    p.add_argument("--epochs", type=int, default=5, help="PPO: epochs per rollout")
    p.add_argument("--episode-length", type=int, default=None, help="override the task's episode length")
    p.add_argument("--device", default="cpu", help="the simulator's device (SB3's networks stay on the CPU)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True, help="run directory")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = Sb3Settings(
        env=args.env, algo=args.algo, out=args.out, steps=args.steps, eval_every=args.eval_every,
        eval_runs=args.eval_runs, seed=args.seed,
        num_envs=task_num_envs(args.env) if args.num_envs is None else args.num_envs, n_steps=args.n_steps,
        minibatches=args.minibatches, epochs=args.epochs, device=args.device, episode_length=args.episode_length,
    )  # fmt: skip
    row = Sb3Run(settings).run()
    summary = f"eval/return={float(row['eval/return']):.4g}" if row else "already finished"
    print(f"done: {args.env} {args.algo} seed {args.seed} in {args.out}: {summary}")


if __name__ == "__main__":
    main()
