"""Fingerprint differentiable tasks: observations, rewards and action gradients of one fixed 24-step rollout.

Run it on two checkouts and compare, to show that a change leaves a task's behaviour bit-identical:

    PYTHONPATH=<old checkout> python benchmarks/sim_fingerprint.py --out /tmp/before.pt
    PYTHONPATH=<new checkout> python benchmarks/sim_fingerprint.py --out /tmp/after.pt
    python benchmarks/sim_fingerprint.py --compare /tmp/before.pt /tmp/after.pt
"""

from __future__ import annotations

import argparse

import torch

DEFAULT_TASKS = ("dflex_hopper", "dflex_humanoid", "dflex_cartpole")


def fingerprint(task: str, steps: int = 24, num_envs: int = 4, seed: int = 3) -> dict[str, torch.Tensor]:
    """Start obs, per-step obs and rewards, and d(sum of rewards)/d(actions) under a fixed smooth action sequence."""
    from pwm.envs.sim.registry import make_dflex_env

    env = make_dflex_env(task, {"num_envs": num_envs, "seed": seed}, requires_grad=True)
    start = env.reset(seed=seed)
    t = torch.arange(steps, dtype=torch.float32)[:, None]
    j = torch.arange(env.action_dim, dtype=torch.float32)[None, :]
    actions = (0.7 * torch.sin(0.25 * t + j)).unsqueeze(1).expand(steps, num_envs, -1).clone().requires_grad_(True)
    obs, rewards = [], []
    for k in range(steps):
        out = env.step(actions[k])
        obs.append(out.obs.detach().clone())
        rewards.append(out.reward)
    torch.stack(rewards).sum().backward()
    return {"obs0": start, "obs": torch.stack(obs), "reward": torch.stack(rewards).detach(), "grad": actions.grad}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--out", help="write the fingerprints here (torch.save)")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two fingerprint files")
    args = parser.parse_args()
    if args.compare:
        before, after = (torch.load(path) for path in args.compare)
        for task in before:
            same = {key: torch.equal(before[task][key], after[task][key]) for key in before[task]}
            print(f"{task}: {'bit-identical' if all(same.values()) else 'DIFFERENT'} {same}")
        return
    if not args.out:
        parser.error("give --out or --compare")
    torch.save({task: fingerprint(task) for task in args.tasks}, args.out)


if __name__ == "__main__":
    main()
