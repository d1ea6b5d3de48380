"""Render PNG strips of warp/newton rollouts (Ant, Humanoid, Hopper) with MuJoCo's renderer.

    MUJOCO_GL=egl python scripts/render_rollout.py --tasks ant,humanoid --steps 120 --frames 8 --out /tmp/renders

For each task and each action mode (``zero``: all-zero torques; ``random``: uniform in [-1, 1]) it rolls out one env
(deterministic start, early termination off) and writes ``<out>/<task>_<mode>.png``: ``--frames`` evenly spaced
frames side by side, the first being the start state. Rendering is kinematic only: the newton joint coordinates are
copied into the same MJCF loaded in MuJoCo (``qpos`` = newton ``q`` with the free joint's quaternion reordered from
xyzw to wxyz; both run Z-up in the MJCF's own frame), followed by ``mj_forward``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import torch

from pwm.envs.sim.render import mujoco_model, render_strip


def make_env(task: str):
    if task == "ant":
        from pwm.envs.sim.ant import AntConfig, AntEnv

        env = AntEnv(AntConfig(num_envs=1, stochastic_init=False, early_termination=False))
        return env, env.asset_path()
    if task == "humanoid":
        from pwm.envs.sim.humanoid import HumanoidConfig, HumanoidEnv

        env = HumanoidEnv(HumanoidConfig(num_envs=1, stochastic_init=False, early_termination=False))
        return env, env.asset_path()
    if task == "hopper":
        from pwm.envs.sim.hopper import HopperConfig, HopperEnv

        env = HopperEnv(HopperConfig(num_envs=1, stochastic_init=False, early_termination=False))
        return env, env.asset_path()
    raise SystemExit(f"unknown task {task!r}; valid: ant, humanoid, hopper")


def rollout(env, mode: str, steps: int, seed: int) -> list[np.ndarray]:
    env.set_requires_grad(False)
    env.reset(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    qs = [env.state["q"][0].numpy().copy()]
    for _ in range(steps):
        if mode == "zero":
            action = torch.zeros(1, env.action_dim)
        else:
            action = torch.rand(1, env.action_dim, generator=gen) * 2 - 1
        env.step(action)
        qs.append(env.state["q"][0].numpy().copy())
    return qs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="ant,humanoid")
    p.add_argument("--modes", default="zero,random")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=240)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="/tmp/renders")
    args = p.parse_args()
    torch.set_num_threads(1)
    import imageio.v2 as imageio

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        env, path = make_env(task)
        model = mujoco_model(path)
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            qs = rollout(env, mode, args.steps, args.seed)
            strip, heights = render_strip(model, qs, env.free_base, args.frames, args.size)
            file = out / f"{task}_{mode}.png"
            imageio.imwrite(file, strip)
            print(file, "torso height by step:", ", ".join(f"{s}: {h:.2f}" for s, h in heights))


if __name__ == "__main__":
    main()
