"""SB3 PPO speed: the batched ``VecEnv`` against the single-env Gymnasium adapter, in env steps per second.

Both runs train the same PPO (same rollout size, minibatches and epochs; ``pwm.training.sb3_run.make_model``) for
the same number of env steps after a short warm-up, and the script prints both rates and their ratio:

    nice -n 10 python benchmarks/sb3_vec_speed.py --env dflex_hopper --num-envs 64 --steps 16384
"""

from __future__ import annotations

import argparse
import time

import torch

from pwm.training.sb3_run import Sb3Settings, make_model, make_training_env


def steps_per_second(settings: Sb3Settings, steps: int, warmup: int) -> float:
    """Env steps per second of ``model.learn`` over ``steps`` env steps, after ``warmup`` untimed ones."""
    model = make_model(settings, make_training_env(settings))
    model.learn(total_timesteps=warmup)
    start_steps, start = model.num_timesteps, time.perf_counter()
    model.learn(total_timesteps=steps, reset_num_timesteps=False)
    return (model.num_timesteps - start_steps) / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="dflex_hopper")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--n-steps", type=int, default=32, help="PPO rollout steps per batched env")
    p.add_argument("--steps", type=int, default=16384, help="timed env steps per run (a multiple of the rollout)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rollout = args.n_steps * args.num_envs
    batched = Sb3Settings(args.env, "ppo", out="", num_envs=args.num_envs, n_steps=args.n_steps)
    adapter = Sb3Settings(args.env, "ppo", out="", num_envs=0, n_steps=rollout)
    fast = steps_per_second(batched, args.steps, warmup=rollout)
    slow = steps_per_second(adapter, args.steps, warmup=rollout)
    print(f"SB3 PPO on {args.env}, rollout {rollout} env steps, {args.steps} timed env steps per run")
    print(f"  batched VecEnv ({args.num_envs} envs): {fast:10.0f} env steps/s")
    print(f"  Gymnasium adapter (1 env):  {slow:10.0f} env steps/s")
    print(f"  ratio: {fast / slow:.1f}x")


if __name__ == "__main__":
    main()
