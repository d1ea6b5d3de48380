"""Write a dataset in TD-MPC2's official chunk layout from real DMControl rollouts, so the offline pipeline runs
without downloading the official mt30 / mt80 data.

Each chunk ``chunk_{i}.pt`` is a ``tensordict.TensorDict`` with batch size [N, T] and keys obs float32
[N, T, O_pad] (zero-padded to 24 for mt30, 39 for mt80), action float32 [N, T, 6] (zero-padded), reward float32
[N, T] and task int32 [N, T] (the task's id in the chosen set). Row k >= 1 holds obs_k with the action and reward
of the transition into obs_k; row 0 holds obs_0 with filler: action zeros and reward NaN. mt30 stores one
episode per row (T = episode length + 1 = 501). mt80 stores DMControl episodes as 100-transition pieces (T = 101)
whose consecutive pieces share their boundary observation (piece j row 0 = obs_{100j}); --episodes-per-chunk then
counts pieces.

Example (a few seconds per episode per task on one core):

    python scripts/make_dataset.py --tasks pendulum-swingup cartpole-swingup --episodes-per-task 4 --out data/mini

Open the result with ``pwm.data.dataset.open_dataset(out, "mt30")``; with ``--episode-length L`` other than 500
under mt30, pass ``episode_length=L + 1`` as well.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pwm.data.chunks import MT80_PIECE, episode_rows, write_chunk
from pwm.data.dataset import CACHE_DIRNAME
from pwm.data.tasks import DMC_EPISODE_LENGTH, TaskSet, get_task_set
from pwm.envs.suites.dmcontrol import DMControlEnv


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", nargs="+", required=True, help="task names from the MT30 list, e.g. walker-walk")
    p.add_argument("--task-set", choices=["mt30", "mt80"], default="mt30", help="decides padding, T and task ids")
    p.add_argument("--episodes-per-task", type=int, default=10)
    p.add_argument("--policy", choices=["random"], default="random", help="random: uniform actions in [-1, 1]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output directory (must hold no *.pt files)")
    p.add_argument("--overwrite", action="store_true", help="delete --out's *.pt files and reader cache first")
    p.add_argument("--episodes-per-chunk", type=int, default=1000, help="rows per chunk file (pieces for mt80)")
    p.add_argument(
        "--episode-length",
        type=int,
        default=DMC_EPISODE_LENGTH,
        help="agent steps per episode (500 in the official data; a multiple of 100 for mt80)",
    )
    return p.parse_args(argv)


def check_args(args: argparse.Namespace, task_set: TaskSet) -> list[int]:
    """Task ids of ``args.tasks``; one-line errors for anything the run could not honour."""
    if args.episodes_per_task < 1 or args.episodes_per_chunk < 1 or args.episode_length < 1:
        raise ValueError("--episodes-per-task, --episodes-per-chunk and --episode-length must be >= 1")
    if args.episode_length > DMC_EPISODE_LENGTH:
        raise ValueError(f"--episode-length {args.episode_length} exceeds DMControl's {DMC_EPISODE_LENGTH} agent steps")
    if args.task_set == "mt80" and args.episode_length % MT80_PIECE:
        raise ValueError(f"--episode-length {args.episode_length} must be a multiple of {MT80_PIECE} for mt80")
    if len(set(args.tasks)) != len(args.tasks):
        raise ValueError(f"--tasks lists a task twice: {' '.join(args.tasks)}")
    ids = []
    for name in args.tasks:
        if name.startswith("mw-"):
            raise ValueError(f"task {name!r} is a Meta-World task; this script writes DMControl episodes only")
        ids.append(task_set.index(name))
    if any(args.out.glob("*.pt")) and not args.overwrite:
        raise ValueError(f"{args.out} already holds *.pt files; choose an empty --out directory or pass --overwrite")
    return ids


def rollout(env: DMControlEnv, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One episode with uniform random actions: obs [L+1, O], action [L, A], reward [L]."""
    obs, actions, rewards = [env.reset()], [], []
    while True:
        action = rng.uniform(-1.0, 1.0, env.action_dim).astype(np.float32)
        step = env.step(action)
        obs.append(step.obs)
        actions.append(action)
        rewards.append(step.reward)
        if step.terminated or step.truncated:
            return np.stack(obs), np.stack(actions), np.asarray(rewards, dtype=np.float32)


def generate(args: argparse.Namespace, task_set: TaskSet, ids: list[int]) -> Iterator[dict[str, np.ndarray]]:
    """Rows of every episode of every task, in task order; prints one summary line per task."""
    piece = args.episode_length if args.task_set == "mt30" else MT80_PIECE
    for name, task_id in zip(args.tasks, ids, strict=True):
        seeds = np.random.SeedSequence([args.seed, task_id])
        env_seed, policy_seed = seeds.generate_state(2)
        env = DMControlEnv(name, seed=int(env_seed), episode_length=args.episode_length)
        rng = np.random.default_rng(int(policy_seed))
        returns = []
        for _ in range(args.episodes_per_task):
            obs, action, reward = rollout(env, rng)
            returns.append(float(reward.sum()))
            yield episode_rows(obs, action, reward, piece, task_set, task_id)
        env.close()
        print(f"{name} (id {task_id}): {args.episodes_per_task} episodes, mean return {np.mean(returns):.1f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    task_set = get_task_set(args.task_set)
    try:
        ids = check_args(args, task_set)
    except (KeyError, ValueError) as e:
        print(f"make_dataset: error: {e.args[0]}", file=sys.stderr)
        return 2
    if args.overwrite:
        for old in args.out.glob("*.pt"):
            old.unlink()
        shutil.rmtree(args.out / CACHE_DIRNAME, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    pending: list[dict[str, np.ndarray]] = []
    count = chunk = 0
    for rows in generate(args, task_set, ids):
        for i in range(rows["reward"].shape[0]):  # split so that every chunk holds exactly --episodes-per-chunk
            pending.append({k: v[i : i + 1] for k, v in rows.items()})
            count += 1
            if count == args.episodes_per_chunk:
                write_chunk(pending, args.out / f"chunk_{chunk}.pt")
                pending, count, chunk = [], 0, chunk + 1
    if pending:
        write_chunk(pending, args.out / f"chunk_{chunk}.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
