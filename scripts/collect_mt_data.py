"""Collect a multi-task dataset the way the official one was made: an agent learns each task (SB3 SAC on real
DMControl) and its whole replay buffer, in training order, is written in TD-MPC2's chunk layout with MT30 task ids.

    nice -n 10 python scripts/collect_mt_data.py --out data/mini_mt                    # the default mini-MT set
    python scripts/collect_mt_data.py --out data/mt --tasks walker-walk cheetah-run --steps 100000

Rerunning the same command resumes: finished tasks (in ``<out>/manifest.json``) are skipped and an interrupted one
continues from its last run state. The data open with ``pwm.data.dataset.open_dataset(out, "mt30")`` (with
``--episode-length L`` other than 500, pass ``episode_length=L + 1``) and train with ``scripts/train_world_model.py
task=mt30 general.data_dir=<out>``. Details: ``pwm.training.collect``.
"""

from __future__ import annotations

import argparse
import sys

from pwm.training.collect import MINI_MT, CollectSettings, collect
from pwm.utils.errors import ConfigError
from pwm.utils.run_lock import RunDirBusyError


def parse_args(argv: list[str] | None = None) -> CollectSettings:
    d = CollectSettings(out="")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="dataset directory (chunks, manifest.json, agents/)")
    p.add_argument("--tasks", nargs="+", default=list(MINI_MT), help=f"MT30 task names (default: {' '.join(MINI_MT)})")
    p.add_argument("--task-set", choices=["mt30", "mt80"], default=d.task_set, help="decides padding, T and task ids")
    p.add_argument("--steps", type=int, default=d.steps, help="agent steps per task (a multiple of --episode-length)")
    p.add_argument("--random-steps", type=int, default=d.random_steps, help="uniform-random steps before learning")
    p.add_argument("--episode-length", type=int, default=d.episode_length, help="agent steps per episode (500)")
    p.add_argument("--save-every", type=int, default=d.save_every, help="agent steps between run states")
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes, help="episodes per return in the manifest")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="SAC minibatch")
    p.add_argument("--gradient-steps", type=int, default=d.gradient_steps, help="SAC updates per agent step")
    a = p.parse_args(argv)
    return CollectSettings(
        out=a.out, tasks=a.tasks, task_set=a.task_set, steps=a.steps, random_steps=a.random_steps,
        episode_length=a.episode_length, save_every=a.save_every, eval_episodes=a.eval_episodes, seed=a.seed,
        batch_size=a.batch_size, gradient_steps=a.gradient_steps,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    try:
        manifest = collect(settings)
    except (ConfigError, RunDirBusyError) as err:
        print(f"collect_mt_data: error: {err}", file=sys.stderr)
        return 2
    for task, e in manifest["tasks"].items():
        print(f"{task}: {e['episodes']} episodes, random {e['random_return']:.1f} -> agent {e['final_return']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
