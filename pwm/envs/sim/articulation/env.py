"""The env base classes of the articulation backend: ``WarpArticulationEnv`` (a ``BatchedEnv`` whose physics is a
``WarpSim``) and ``FreeBaseRobotEnv`` (a torque-driven robot on a free joint), with their configs and dflex's
observation helpers expressed in dflex's frame (see the package docstring, "Frames").
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from pwm.envs.sim.articulation.assets import asset_file
from pwm.envs.sim.articulation.frames import (
    DFLEX_BASE_QUAT,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    to_dflex_frame,
)
from pwm.envs.sim.articulation.kernels import import_newton
from pwm.envs.sim.articulation.simulator import ContactParams, WarpSim
from pwm.envs.sim.base import BatchedEnv, EnvConfig, State
from pwm.utils.errors import ConfigError


@dataclass
class WarpEnvConfig(EnvConfig):
    """Physics settings every warp task shares (tasks set dflex's values as their defaults).

    ``mm_interval``: recompute the mass matrix every this many substeps (dflex's ``MM_caching_frequency``; ``None`` =
    once per control step). ``contact_*``: see ``ground_contact_kernel``. ``limit_ke``/``limit_kd``: dflex's joint
    limit stiffness and its always-on damping. ``density``: the mass-from-shapes density.
    """

    LIMITS: ClassVar[dict[str, str]] = {
        "substeps": ">= 1",
        "dt": "> 0",
        "mm_interval": ">= 1",
        "contact_ke": ">= 0",
        "contact_kd": ">= 0",
        "contact_kf": ">= 0",
        "contact_mu": ">= 0",
        "limit_ke": ">= 0",
        "limit_kd": ">= 0",
        "density": "> 0",
    }

    substeps: int = 16
    dt: float = 1.0 / 60.0
    mm_interval: int | None = None
    contact_ke: float = 4.0e4
    contact_kd: float = 1.0e4
    contact_kf: float = 3.0e3
    contact_mu: float = 0.75
    limit_ke: float = 1.0e3
    limit_kd: float = 10.0
    density: float = 1000.0


class WarpArticulationEnv(BatchedEnv):
    """``BatchedEnv`` whose physics is a ``WarpSim`` (see the ``pwm.envs.sim.articulation`` package docstring).

    A task implements:

    * ``_build_robot(builder)``: add ONE robot to a Z-up ``newton.ModelBuilder`` (``load_mjcf`` helps) and set its
      per-DoF constants (``configure_joints``); it is replicated ``num_envs`` times.
    * ``_joint_forces(action) -> [N, nqd]``: generalized forces from the clipped action (differentiable torch).
    * ``_initial_state(n)``, ``_observe(state)``, ``_reward(obs, action)``, ``_terminated(obs)`` as in ``BatchedEnv``;
      the state is ``{"q", "qd", "act"}``, and ``make_state`` builds one.
    * optionally ``_extra_inputs(action)`` and ``_extra_forces(model, state, extra, substep)`` (muscles etc.).
    """

    cfg: WarpEnvConfig
    free_base: bool = True  # q starts with a free joint (pos 3, quat 4), qd with (v_com 3, omega 3)
    ASSET: str  # the robot's MJCF: a file in ``assets/``, or ``newton:<name>`` for one shipped with newton
    DEVICE_TYPES = ("cpu", "cuda")  # warp runs on these
    exact_inertia: bool = False  # a robot may set it in ``_build_robot`` to skip newton's inertia correction

    @classmethod
    def asset_path(cls) -> str:
        """Path of the MJCF this robot is built from (also its MuJoCo twin for rendering)."""
        return asset_file(cls.ASSET)

    def __init__(self, cfg: WarpEnvConfig, requires_grad: bool = False) -> None:
        super().__init__(cfg, requires_grad)
        cfg = self.cfg
        if cfg.mm_interval is not None and cfg.mm_interval > cfg.substeps:
            raise ConfigError(f"env {self.name}: mm_interval={cfg.mm_interval} must be <= substeps={cfg.substeps}")
        newton = import_newton()
        robot = newton.ModelBuilder(up_axis=newton.Axis.Z)
        self._build_robot(robot)
        self.robot = robot
        overrides_extra = type(self)._extra_forces is not WarpArticulationEnv._extra_forces
        self.sim = WarpSim(
            robot,
            cfg.num_envs,
            device=self.device,
            substeps=cfg.substeps,
            dt=cfg.dt,
            contact=ContactParams(cfg.contact_ke, cfg.contact_kd, cfg.contact_kf, cfg.contact_mu),
            mm_interval=cfg.mm_interval,
            contact_bodies=self._contact_bodies(robot),
            extra_forces=self._extra_forces if overrides_extra else None,
            exact_inertia=self.exact_inertia,
        )
        self.nq, self.nqd = self.sim.nq, self.sim.nqd
        # world-frame COM offset of the root body in its own frame (for dflex's origin velocity)
        self.root_com = torch.tensor(np.array(robot.body_com[0], dtype=np.float32), device=self.device)

    # ---- hooks ------------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _build_robot(self, builder: Any) -> None:
        """Add one robot to ``builder`` (replicated ``num_envs`` times) and set its per-DoF constants."""

    @abc.abstractmethod
    def _joint_forces(self, action: torch.Tensor) -> torch.Tensor:
        """``[N, nqd]`` generalized forces from the clipped action (differentiable)."""

    def _contact_bodies(self, builder: Any) -> Sequence[int] | None:
        """Bodies whose shapes touch the ground (``None`` = all)."""
        return None

    def _extra_inputs(self, action: torch.Tensor) -> torch.Tensor | None:
        """A ``[N, K]`` tensor handed (flattened) to ``_extra_forces`` each substep; its grad flows back."""
        return None

    def _extra_forces(self, model: Any, state: Any, extra: Any, substep: int) -> None:
        """Add body wrenches for one substep with a warp kernel (default: none); see the package docstring, "Extra
        forces".

        Args:
            model: the ``newton.Model`` (all worlds; world ``w``'s bodies are ``w * B .. (w + 1) * B - 1``).
            state: a ``newton.State`` view whose ``body_q``/``body_qd``/``joint_q`` are read-only and whose ``body_f``
                receives wrenches via ``wp.atomic_add`` (see the package docstring; ``joint_qd`` is not provided).
            extra: the flat ``wp.array`` of ``_extra_inputs(action)`` (or ``None``).
            substep: 0 .. substeps-1 within the control step.
        """

    # ---- BatchedEnv -------------------------------------------------------------------------------------------------
    def _simulate(self, state: State, action: torch.Tensor) -> State:
        q, qd = self.sim.step(state["q"], state["qd"], self._joint_forces(action), self._extra_inputs(action))
        return {"q": q, "qd": qd, "act": action}

    def make_state(self, q: torch.Tensor, qd: torch.Tensor, act: torch.Tensor | None = None) -> State:
        """A state dict (the quaternion of a free base is normalised)."""
        if self.free_base:
            q = torch.cat((q[:, :3], q[:, 3:7] / q[:, 3:7].norm(dim=-1, keepdim=True), q[:, 7:]), dim=-1)
        if act is None:
            act = torch.zeros(q.shape[0], self.action_dim, device=self.device)
        return {"q": q.float(), "qd": qd.float(), "act": act.float()}

    def uniform(self, n: int, dim: int, scale: float) -> torch.Tensor:
        """U(-scale, scale) of shape ``[n, dim]`` from the env's generator."""
        return (torch.rand(n, dim, generator=self.generator, device=self.device) * 2.0 - 1.0) * scale

    def free_base_initial_state(
        self,
        n: int,
        start_pos: Sequence[float],
        joint_q: Sequence[float] | torch.Tensor,
        pos_noise: float = 0.1,
        rot_noise: float = math.pi / 24,
        joint_noise: float = 0.2,
        qd_noise: float = 0.25,
    ) -> State:
        """dflex's Ant/Humanoid start: base at ``start_pos`` (newton Z-up), upright, joints at ``joint_q``; with
        ``stochastic_init``: pos += U(±pos_noise), orientation *= random axis-angle U(±rot_noise), joints +=
        U(±joint_noise), qd = U(±qd_noise)."""
        q = torch.zeros(n, self.nq, device=self.device)
        q[:, :3] = torch.tensor(start_pos, device=self.device, dtype=torch.float32)
        q[:, 6] = 1.0
        q[:, 7:] = torch.as_tensor(joint_q, device=self.device, dtype=torch.float32)
        qd = torch.zeros(n, self.nqd, device=self.device)
        if self.cfg.stochastic_init:
            q[:, :3] += self.uniform(n, 3, pos_noise)
            angle = self.uniform(n, 1, rot_noise).squeeze(-1)
            axis = torch.nn.functional.normalize(self.uniform(n, 3, 0.5), dim=-1)
            q[:, 3:7] = quat_mul(q[:, 3:7], quat_from_axis_angle(axis, angle))
            q[:, 7:] += self.uniform(n, self.nq - 7, joint_noise)
            qd = self.uniform(n, self.nqd, qd_noise)
        return self.make_state(q, qd)

    # ---- observation helpers (free base; dflex frame) ---------------------------------------------------------------
    @staticmethod
    def height(q: torch.Tensor) -> torch.Tensor:
        """Root height (dflex's y, newton's z), ``[N]``."""
        return q[:, 2]

    @staticmethod
    def dflex_quat(q: torch.Tensor) -> torch.Tensor:
        """The root orientation as dflex stored it (including its -pi/2 base rotation), xyzw ``[N, 4]``."""
        base = torch.tensor(DFLEX_BASE_QUAT, device=q.device, dtype=q.dtype).expand(q.shape[0], 4)
        return quat_mul(base, q[:, 3:7])

    def origin_velocity(self, q: torch.Tensor, qd: torch.Tensor) -> torch.Tensor:
        """World velocity of the root body's origin (dflex's ``v_twist - p x w``), newton axes ``[N, 3]``."""
        com_world = quat_rotate(q[:, 3:7], self.root_com.expand(q.shape[0], 3))
        return qd[:, 0:3] - torch.cross(qd[:, 3:6], com_world, dim=-1)

    def up_and_heading(self, q: torch.Tensor, target_x: float) -> tuple[torch.Tensor, torch.Tensor]:
        """dflex's ``up_vec[1]`` and ``heading_vec . target_dir`` (target at (target_x, 0) on the ground), ``[N]``."""
        rot = q[:, 3:7]
        n = q.shape[0]
        ez = torch.tensor([0.0, 0.0, 1.0], device=q.device).expand(n, 3)
        ex = torch.tensor([1.0, 0.0, 0.0], device=q.device).expand(n, 3)
        up = quat_rotate(rot, ez)[:, 2]
        heading = quat_rotate(rot, ex)
        to_target = torch.stack((target_x - q[:, 0], -q[:, 1], torch.zeros_like(q[:, 0])), dim=-1)
        direction = torch.nn.functional.normalize(to_target, dim=-1)
        return up, (heading * direction).sum(-1)

    def free_base_obs(self, state: State, target_x: float, with_action: bool = True) -> torch.Tensor:
        """dflex's Ant/Humanoid/Anymal observation: [height, quat (4), COM lin vel (3), ang vel (3), joint q,
        0.1 * joint qd, up_y, heading_proj, previous action] in dflex's frame."""
        q, qd = state["q"], state["qd"]
        up, heading = self.up_and_heading(q, target_x)
        parts = [
            self.height(q).unsqueeze(-1),
            self.dflex_quat(q),
            to_dflex_frame(self.origin_velocity(q, qd)),
            to_dflex_frame(qd[:, 3:6]),
            q[:, 7:],
            0.1 * qd[:, 6:],
            up.unsqueeze(-1),
            heading.unsqueeze(-1),
        ]
        if with_action:
            parts.append(state["act"])
        return torch.cat(parts, dim=-1)


@dataclass
class FreeBaseConfig(WarpEnvConfig):
    """Settings of the free-floating robots (Ant, Anymal, Humanoid): start pose, dflex's reset noise, the heading
    target and the termination height. An empty ``start_joint_q`` starts every joint at 0."""

    LIMITS: ClassVar[dict[str, str]] = {
        "pos_noise": ">= 0",
        "rot_noise": ">= 0",
        "joint_noise": ">= 0",
        "qd_noise": ">= 0",
    }

    start_height: float = 0.75
    start_joint_q: tuple[float, ...] = ()
    pos_noise: float = 0.1
    rot_noise: float = math.pi / 24
    joint_noise: float = 0.2
    qd_noise: float = 0.25
    target_x: float = 10000.0
    termination_height: float = 0.27


class FreeBaseRobotEnv(WarpArticulationEnv):
    """A robot on a free joint with torque-driven joints: dflex's start state, observation layout (``free_base_obs``)
    and height termination. ``_build_robot`` must set ``self.torque_scale`` (scalar or per joint): the joint torque
    is ``torque_scale * action`` and the free joint gets no generalized force."""

    cfg: FreeBaseConfig
    torque_scale: torch.Tensor | float

    def __init__(self, cfg: FreeBaseConfig, requires_grad: bool = False) -> None:
        super().__init__(cfg, requires_grad)
        joints = self.nq - 7
        if self.cfg.start_joint_q and len(self.cfg.start_joint_q) != joints:
            n = len(self.cfg.start_joint_q)
            raise ConfigError(f"env {self.name}: start_joint_q has {n} values; it must have {joints} (or none)")

    def _joint_forces(self, action: torch.Tensor) -> torch.Tensor:
        root = torch.zeros(action.shape[0], 6, device=action.device, dtype=action.dtype)
        return torch.cat((root, action * self.torque_scale), dim=-1)

    def _initial_state(self, n: int) -> State:
        cfg = self.cfg
        joint_q = cfg.start_joint_q or torch.zeros(self.nq - 7)
        return self.free_base_initial_state(
            n, (0.0, 0.0, cfg.start_height), joint_q, cfg.pos_noise, cfg.rot_noise, cfg.joint_noise, cfg.qd_noise
        )

    def _observe(self, state: State) -> torch.Tensor:
        return self.free_base_obs(state, self.cfg.target_x)

    def _terminated(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, 0] < self.cfg.termination_height
