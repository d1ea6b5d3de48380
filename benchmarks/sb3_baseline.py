"""External baseline: Stable-Baselines3 SAC or PPO on one of our single-task envs, through the Gymnasium adapter.

Writes ``run_info.json`` and ``metrics.csv`` (env_steps, eval/return) in the same layout as train_dflex.py, so
``scripts/plot_dflex.py`` puts its curve next to PWM's and SHAC's:

    python benchmarks/sb3_baseline.py --env dflex_cartpole --algo sac --steps 200000 --out runs/sb3/sac_s1 --seed 1
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

from pwm.envs.sim.gym_adapter import make_gym_env
from pwm.envs.sim.registry import make_dflex_env


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="dflex_cartpole")
    p.add_argument("--algo", choices=["sac", "ppo"], default="sac")
    p.add_argument("--steps", type=int, default=100_000, help="env steps")
    p.add_argument("--eval-every", type=int, default=10_000, help="env steps between evaluations")
    p.add_argument("--eval-runs", type=int, default=12)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True, help="run directory")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.callbacks import BaseCallback

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run_info.json").write_text(json.dumps({"env": args.env, "alg": f"sb3-{args.algo}", "seed": args.seed}))
    env = make_gym_env(args.env, seed=args.seed)
    eval_env = make_dflex_env(args.env, {"num_envs": args.eval_runs, "seed": args.seed + 1})
    model = (SAC if args.algo == "sac" else PPO)("MlpPolicy", env, seed=args.seed, verbose=0)
    rows: list[dict] = []
    start = time.perf_counter()

    def evaluate(steps: int) -> None:
        def policy(obs: torch.Tensor) -> torch.Tensor:
            action, _ = model.predict(obs.cpu().numpy(), deterministic=True)
            return torch.as_tensor(action, dtype=torch.float32)

        result = evaluate(policy, eval_env, eval_env.num_envs, seed=args.seed * 100_003 + steps)
        rows.append({"step": steps, "env_steps": steps, "time": round(time.perf_counter() - start, 1),
                     "eval/return": result["return"], "eval/length": result["length"]})  # fmt: skip
        with open(out / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"{args.algo} {args.env} steps {steps:>8d} time {rows[-1]['time']:>7.1f}s eval {result['return']:.1f}",
              flush=True)  # fmt: skip

    class EvalEvery(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % args.eval_every == 0:
                evaluate(self.num_timesteps)
            return True

    evaluate(0)
    model.learn(total_timesteps=args.steps, callback=EvalEvery())


if __name__ == "__main__":
    main()
