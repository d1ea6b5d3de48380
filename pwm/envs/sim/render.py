"""Picture strips of single-task rollouts: MuJoCo's renderer for the articulated robots, matplotlib for the planar
tasks. Rendering is kinematic: recorded joint coordinates are drawn, nothing is simulated again.

For the robots, the newton joint coordinates go into the same MJCF loaded in MuJoCo (``qpos`` = newton ``q`` with the
free joint's quaternion reordered from xyzw to wxyz; both run Z-up in the MJCF's own frame), then ``mj_forward``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import torch

# robot tasks drawn with MuJoCo from the MJCF each robot declares (its ``ASSET``)
ROBOTS = ("dflex_ant", "dflex_humanoid", "dflex_hopper", "dflex_anymal")


def robot_mjcf(name: str) -> str:
    """The MJCF a robot task is built from (its MuJoCo twin for rendering)."""
    from pwm.envs.sim.registry import asset_path

    if name not in ROBOTS:
        raise ValueError(f"no picture renderer for {name}; renderable: {', '.join([*ROBOTS, *PLANAR])}")
    return asset_path(name)


def bound_massless_bodies(root: ET.Element) -> None:
    """Let MuJoCo load a robot with shapeless moving bodies (dflex's ANYmal hips): it rejects zero mass unless the
    compiler bounds it. Only the MuJoCo twin gets the bound; the simulators keep the asset's masses."""
    compiler = root.find("compiler")
    if compiler is None:
        compiler = ET.SubElement(root, "compiler")
    compiler.set("boundmass", compiler.get("boundmass", "1e-6"))
    compiler.set("boundinertia", compiler.get("boundinertia", "1e-9"))


def mujoco_model(path: str):
    import mujoco

    root = ET.parse(path).getroot()
    for sensor in root.findall("sensor"):  # nv_humanoid.xml's touch sensors name a missing site
        root.remove(sensor)
    bound_massless_bodies(root)
    world = root.find("worldbody")
    for geom in world.findall("geom"):  # a plain light floor, so that ground contact is visible
        if geom.get("type") == "plane":
            world.remove(geom)
    ET.SubElement(world, "geom", name="floor", type="plane", size="50 50 0.1", rgba="0.75 0.78 0.8 1")
    ET.SubElement(world, "light", pos="0 -2 6", dir="0 0.3 -1", directional="true", diffuse="0.6 0.6 0.6")
    return mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))


def to_qpos(q: np.ndarray, free_base: bool) -> np.ndarray:
    if not free_base:
        return q.astype(np.float64)
    return np.concatenate((q[:3], q[6:7], q[3:6], q[7:])).astype(np.float64)


def render_strip(model, qs: list[np.ndarray], free_base: bool, frames: int, size: int) -> tuple[np.ndarray, list]:
    import mujoco

    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, height=size, width=size)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance, camera.elevation, camera.azimuth = 3.5, -12.0, 90.0
    picks = np.linspace(0, len(qs) - 1, frames).round().astype(int)
    images, heights = [], []
    for i in picks:
        data.qpos[:] = to_qpos(qs[i], free_base)
        mujoco.mj_forward(model, data)
        root = data.xpos[1]  # the first body (torso) in world coordinates
        camera.lookat[:] = (root[0], root[1], 0.5)
        renderer.update_scene(data, camera=camera)
        images.append(renderer.render())
        heights.append((int(i), float(root[2])))
    renderer.close()
    return np.concatenate(images, axis=1), heights


def _planar_frame(ax, name: str, q: np.ndarray) -> None:
    """Cart-pole: cart box and pole; double pendulum: two poles (elbow at the upper pole's tip)."""
    from matplotlib.patches import Rectangle

    if name == "dflex_cartpole":
        x, theta = q
        ax.add_patch(Rectangle((x - 0.25, -0.1), 0.5, 0.2))
        ax.plot([x, x + np.sin(theta)], [0, np.cos(theta)], lw=3, color="tab:orange")
        ax.set_xlim(x - 1.5, x + 1.5)
    else:
        t1, t2 = q
        elbow = np.array([np.sin(t1), np.cos(t1)])
        tip = elbow + np.array([np.sin(t1 + t2), np.cos(t1 + t2)])
        ax.plot([0, elbow[0], tip[0]], [0, elbow[1], tip[1]], lw=3, color="tab:orange", marker="o")
        ax.set_xlim(-2.2, 2.2)
    ax.set_ylim(-2.2, 2.2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


PLANAR = ("dflex_cartpole", "dflex_doublependulum")


def planar_strip(name: str, qs: list[np.ndarray], frames: int, path: Path) -> None:
    from matplotlib.figure import Figure

    picks = np.linspace(0, len(qs) - 1, frames).round().astype(int)
    fig = Figure(figsize=(2 * frames, 2.2), layout="constrained")
    for ax, i in zip(fig.subplots(1, frames), picks, strict=True):
        _planar_frame(ax, name, qs[i])
        ax.set_title(f"step {i}", fontsize=8)
    fig.savefig(path, dpi=80)


@torch.no_grad()
def policy_rollout(env, policy: Callable[[torch.Tensor], torch.Tensor], seed: int) -> list[np.ndarray]:
    """Joint coordinates of env 0 over one episode of ``policy`` (deterministic evaluation)."""
    obs = env.reset(seed=seed)
    qs = [env.state["q"][0].cpu().numpy().copy()]
    while True:
        out = env.step(policy(obs))
        if bool(out.terminated[0] | out.truncated[0]):
            return qs
        qs.append(env.state["q"][0].cpu().numpy().copy())
        obs = out.obs


def write_policy_strip(env, policy, path: str | Path, seed: int = 0, frames: int = 8, size: int = 240) -> Path:
    """A PNG strip of ``frames`` evenly spaced moments of one episode of ``policy`` on ``env`` (env 0)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if env.name in PLANAR:
        planar_strip(env.name, policy_rollout(env, policy, seed), frames, path)
        return path
    model = mujoco_model(robot_mjcf(env.name))
    strip, _ = render_strip(model, policy_rollout(env, policy, seed), env.free_base, frames, size)
    import imageio.v2 as imageio

    imageio.imwrite(path, strip)
    return path
