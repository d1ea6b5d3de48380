"""Env-step throughput of the differentiable dflex tasks, against MuJoCo's C engine as the CPU reference.

    python benchmarks/sim_throughput.py                          # hopper, ant, humanoid at their PWM num_envs
    python benchmarks/sim_throughput.py --tasks ant --num-envs 128 --steps 200 --device cpu

Per task it measures (env steps/s = num_envs * control steps / seconds):

* ``fwd``: ``env.step`` with random actions under ``no_grad`` (PWM's data collection; auto-resets included);
* ``fwd+bwd``: a 32-step rollout with ``requires_grad`` and ``backward()`` of the summed reward (SHAC's actor step),
  with the forward and backward times also given separately;
* ``mujoco loop``: the same MJCF in MuJoCo (``mujoco.MjModel.from_xml_path``), ``timestep = (1/60) / substeps``, the
  same ``num_envs`` copies stepped ``substeps`` times per control step from a Python loop with random controls;
* ``mujoco rollout``: the same, all copies and steps in one ``mujoco.rollout`` call (C, one thread).

MuJoCo integrates its own contact model and the MJCF's own masses, so it is a speed reference for the same
robot/timestep, not the same dynamics (for the SNU humanoid, the skeleton alone: its muscles have no MuJoCo
counterpart here). Tasks without an MJCF (torch-only envs) print no MuJoCo columns. Add a task by
adding a ``TaskSpec`` to ``TASKS``.
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class TaskSpec:
    """How to build a task for the benchmark."""

    build: Callable[[int, str, bool], Any]  # (num_envs, device, requires_grad) -> BatchedEnv
    num_envs: int  # PWM's num_envs for the task
    mjcf: Callable[[], str] | None = None  # MJCF path for the MuJoCo reference
    substeps: int = 1
    add_floor: bool = False  # the MJCF has no floor (our envs model the ground themselves)


def _hopper(n: int, device: str, grad: bool) -> Any:
    from pwm.envs.sim.hopper import HopperConfig, HopperEnv

    return HopperEnv(HopperConfig(num_envs=n, device=device), requires_grad=grad)


def _ant(n: int, device: str, grad: bool) -> Any:
    from pwm.envs.sim.ant import AntConfig, AntEnv

    return AntEnv(AntConfig(num_envs=n, device=device), requires_grad=grad)


def _humanoid(n: int, device: str, grad: bool) -> Any:
    from pwm.envs.sim.humanoid import HumanoidConfig, HumanoidEnv

    return HumanoidEnv(HumanoidConfig(num_envs=n, device=device), requires_grad=grad)


def _registered(name: str) -> Callable[[int, str, bool], Any]:
    def build(n: int, device: str, grad: bool) -> Any:
        from pwm.envs.sim.registry import make_dflex_env

        return make_dflex_env(name, {"num_envs": n, "device": device}, requires_grad=grad)

    return build


def _task_xml(name: str) -> Callable[[], str]:
    """The MJCF the registered task ``name`` declares (its robot's ``ASSET``)."""

    def path() -> str:
        from pwm.envs.sim.registry import asset_path

        return asset_path(name)

    return path


TASKS: dict[str, TaskSpec] = {
    "hopper": TaskSpec(_hopper, 64, _task_xml("dflex_hopper"), substeps=16, add_floor=True),
    "ant": TaskSpec(_ant, 128, _task_xml("dflex_ant"), substeps=16),
    "humanoid": TaskSpec(_humanoid, 64, _task_xml("dflex_humanoid"), substeps=48),
    "anymal": TaskSpec(_registered("dflex_anymal"), 64, _task_xml("dflex_anymal"), substeps=16, add_floor=True),
    "snu_humanoid": TaskSpec(
        _registered("dflex_snu_humanoid"), 64, _task_xml("dflex_snu_humanoid"), substeps=48, add_floor=True
    ),
    "cartpole": TaskSpec(_registered("dflex_cartpole"), 1024),
    "doublependulum": TaskSpec(_registered("dflex_doublependulum"), 1024),
}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_forward(env: Any, steps: int, device: str) -> float:
    """Env steps/s of no-grad stepping with random actions."""
    env.set_requires_grad(False)
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.random_actions())
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(env.random_actions())
    _sync(device)
    return env.num_envs * steps / (time.perf_counter() - start)


def bench_grad(env: Any, horizon: int, iters: int, device: str) -> tuple[float, float, float]:
    """(env steps/s, forward s, backward s) of a taped ``horizon``-step rollout plus backward (mean over iters)."""
    env.set_requires_grad(True)
    env.reset(seed=0)
    fwd, bwd = [], []
    for it in range(iters + 1):
        env.detach()
        actions = (torch.rand(horizon, env.num_envs, env.action_dim, device=device) * 2 - 1).requires_grad_(True)
        _sync(device)
        start = time.perf_counter()
        total = torch.zeros((), device=device)
        for t in range(horizon):
            total = total + env.step(actions[t]).reward.sum()
        _sync(device)
        mid = time.perf_counter()
        total.backward()
        _sync(device)
        end = time.perf_counter()
        if not torch.isfinite(actions.grad).all():
            raise RuntimeError(f"{env.name}: non-finite action gradient")
        if it > 0:  # the first iteration is a warm-up
            fwd.append(mid - start)
            bwd.append(end - mid)
    env.set_requires_grad(False)
    f, b = float(np.mean(fwd)), float(np.mean(bwd))
    return env.num_envs * horizon / (f + b), f, b


def _mujoco_model(spec: TaskSpec) -> Any:
    import mujoco

    from pwm.envs.sim.render import bound_massless_bodies

    root = ET.parse(spec.mjcf()).getroot()
    for sensor in root.findall("sensor"):  # nv_humanoid.xml's touch sensors name a missing site; MuJoCo rejects them
        root.remove(sensor)
    bound_massless_bodies(root)
    if spec.add_floor:
        world = root.find("worldbody")
        ET.SubElement(world, "geom", name="floor", type="plane", size="50 50 0.1", pos="0 0 0")
    model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    model.opt.timestep = (1.0 / 60.0) / spec.substeps
    return model


def bench_mujoco_loop(spec: TaskSpec, num_envs: int, steps: int) -> float:
    """Env steps/s of ``num_envs`` MjData copies stepped from Python (random controls held over the substeps)."""
    import mujoco

    model = _mujoco_model(spec)
    datas = [mujoco.MjData(model) for _ in range(num_envs)]
    for d in datas:
        mujoco.mj_forward(model, d)
    rng = np.random.default_rng(0)
    lo, hi = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    start = time.perf_counter()
    for _ in range(steps):
        ctrl = rng.uniform(lo, hi, size=(num_envs, model.nu))
        for d, c in zip(datas, ctrl, strict=True):
            d.ctrl[:] = c
            for _ in range(spec.substeps):
                mujoco.mj_step(model, d)
    return num_envs * steps / (time.perf_counter() - start)


def bench_mujoco_rollout(spec: TaskSpec, num_envs: int, steps: int) -> float | None:
    """Env steps/s of one single-threaded ``mujoco.rollout`` call over all copies and substeps."""
    import mujoco

    try:
        from mujoco import rollout
    except ImportError:
        return None
    model = _mujoco_model(spec)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    full = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(model, full))
    mujoco.mj_getState(model, data, state, full)
    rng = np.random.default_rng(0)
    lo, hi = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    ctrl = np.repeat(rng.uniform(lo, hi, size=(num_envs, steps, model.nu)), spec.substeps, axis=1)
    initial = np.tile(state, (num_envs, 1))
    rollout.rollout(model, data, initial[:1], ctrl[:1, : spec.substeps])  # warm-up
    start = time.perf_counter()
    rollout.rollout(model, data, initial, ctrl)
    return num_envs * steps / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma list of {', '.join(TASKS)}")
    p.add_argument("--num-envs", type=int, default=None, help="override every task's PWM num_envs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=100, help="control steps of the forward measurements")
    p.add_argument("--horizon", type=int, default=32, help="rollout length of the gradient measurement")
    p.add_argument("--grad-iters", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (warp's CPU kernels use one)")
    p.add_argument("--no-grad", action="store_true", help="skip the fwd+bwd measurement")
    p.add_argument("--no-mujoco", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = []
    for name in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        if name not in TASKS:
            raise SystemExit(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
        spec = TASKS[name]
        n = args.num_envs or spec.num_envs
        start = time.perf_counter()
        env = spec.build(n, args.device, True)
        build_s = time.perf_counter() - start
        row = {"task": name, "N": n, "build s": build_s, "fwd": bench_forward(env, args.steps, args.device)}
        if not args.no_grad:
            row["fwd+bwd"], row["grad fwd s"], row["grad bwd s"] = bench_grad(
                env, args.horizon, args.grad_iters, args.device
            )
        if spec.mjcf is not None and not args.no_mujoco:
            row["mujoco loop"] = bench_mujoco_loop(spec, n, max(1, args.steps // 4))
            row["mujoco rollout"] = bench_mujoco_rollout(spec, n, args.steps)
        rows.append(row)
        print(
            f"done {name}: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        )

    cols = ["task", "N", "build s", "fwd", "fwd+bwd", "grad fwd s", "grad bwd s", "mujoco loop", "mujoco rollout"]
    print()
    print(f"device {args.device}, torch threads {args.threads}; env steps/s unless marked s (seconds per rollout)")
    print("| " + " | ".join(cols) + " | fwd / mujoco |")
    print("|" + "---|" * (len(cols) + 1))
    for row in rows:
        cells = []
        for c in cols:
            v = row.get(c)
            if v is None:
                cells.append("-")
            elif isinstance(v, float):
                cells.append(f"{v:.0f}" if v >= 100 else f"{v:.3g}")
            else:
                cells.append(str(v))
        ref = max([row[k] for k in ("mujoco loop", "mujoco rollout") if row.get(k)] or [0.0])
        ratio = f"{row['fwd'] / ref:.2f}" if ref else "-"
        print("| " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
