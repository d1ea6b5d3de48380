"""Evaluate a trained single-task policy (deterministic) on fresh episodes of its real env.

python scripts/eval_dflex.py <run_dir>                      # best_policy.pt, 12 episodes
python scripts/eval_dflex.py <run_dir> --policy final --episodes 32 --device cpu
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from pwm.checkpoint.run_state import CheckpointDir, RunStateError, read_best_policy, read_run_state
from pwm.config import ConfigError
from pwm.training.dflex import DflexRun
from pwm.training.evaluate import evaluate


def load_policy_run(run_dir: Path, which: str, episodes: int, device: str) -> DflexRun:
    """A ``DflexRun`` rebuilt from the run's saved config, with the chosen policy's weights loaded."""
    if which == "best":
        path = run_dir / "best_policy.pt"
        if not path.is_file():
            raise ConfigError(f"{path} does not exist (was {run_dir} written by train_dflex.py?)")
        payload = read_best_policy(path)
        config, state = payload["config"], payload["algo"]
    else:
        latest = CheckpointDir(run_dir / "checkpoints").latest()
        if latest is None:
            raise ConfigError(f"no run state in {run_dir / 'checkpoints'}")
        payload = read_run_state(latest)
        config, state = payload["config"], payload["components"]["algo"]
    config["general"].update(eval_runs=episodes, device=device, checkpoint=None, pretrain=None)
    config["logger"].update(wandb=False, progress=False)
    run = DflexRun(OmegaConf.create(config), run_dir)
    run.algo.load_state_dict(state)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--policy", choices=["best", "final"], default="best")
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        run = load_policy_run(args.run_dir, args.policy, args.episodes, args.device)
    except (ConfigError, RunStateError, KeyError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 1
    result = evaluate(run.policy, run.eval_env, args.episodes, seed=args.seed)
    print(json.dumps({"env": run.env_name, "alg": run.alg_cfg.name, "policy": args.policy, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
