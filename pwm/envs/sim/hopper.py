"""dflex's Hopper on warp/newton (Featherstone): obs 11, act 3, 16 substeps of 1/960 s per 1/60 s control step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from pwm.envs.sim.articulation.assets import configure_joints, load_mjcf
from pwm.envs.sim.articulation.env import WarpArticulationEnv, WarpEnvConfig
from pwm.envs.sim.base import State


@dataclass
class HopperConfig(WarpEnvConfig):
    """dflex Hopper constants (``docs/simulators.md``, "The seven tasks") on our ``assets/hopper.xml`` (gym's 2D
    hopper layout).

    Physics: density 1000 (torso 3.7 kg, thigh 4.1, leg 2.8, foot 5.3), armature 1.0 on all six DoFs (dflex passes
    one armature to every joint, root slides included), damping 2.0 on thigh/leg/foot and 0 on the root joints, plus
    dflex's always-on limit damping 10 on every DoF (dflex applies it to all prismatic/revolute joints, so the root
    slides are damped too), limit stiffness 1e3. Contact: ke 2e4, kd 2e3 (the PWM fork's ke/10), kf 1e3, mu 0.9 —
    dflex's values, stable at 16 substeps with the point-penalty contact.
    """

    LIMITS: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("armature", "joint_damping", "action_strength", "init_noise"), ">= 0"),
        **dict.fromkeys(("termination_height_tolerance", "height_reward_clip", "height_penalty"), ">= 0"),
        "action_penalty": ">= 0",
        "termination_angle": "> 0",
    }

    num_envs: int = 64
    substeps: int = 16
    contact_ke: float = 2.0e4
    contact_kd: float = 2.0e3
    contact_kf: float = 1.0e3
    contact_mu: float = 0.9
    limit_ke: float = 1.0e3
    limit_kd: float = 10.0
    armature: float = 1.0
    joint_damping: float = 2.0
    action_strength: float = 200.0
    init_noise: float = 0.05
    termination_height: float = -0.45
    termination_height_tolerance: float = 0.15
    termination_angle: float = math.pi / 6.0
    height_reward_clip: float = 0.3
    height_penalty: float = 200.0
    angle_weight: float = 1.0
    action_penalty: float = 0.1


class HopperEnv(WarpArticulationEnv):
    """q = [x, z, torso angle, thigh, leg, foot] (z = height displacement, 0 at the start), qd likewise.
    Obs (11): [q[1:6], qd[0:6]]. Reward: xdot + height term + angle term - 0.1 |a|^2 (dflex). Terminates when
    z < -0.45."""

    name = "dflex_hopper"
    ASSET = "hopper.xml"
    obs_dim = 11
    action_dim = 3
    free_base = False
    cfg: HopperConfig

    def __init__(self, cfg: HopperConfig | None = None, requires_grad: bool = False) -> None:
        super().__init__(cfg if cfg is not None else HopperConfig(), requires_grad)

    def _build_robot(self, builder: Any) -> None:
        cfg = self.cfg
        load_mjcf(builder, self.asset_path(), density=cfg.density)
        configure_joints(
            builder,
            slice(0, 3),
            armature=cfg.armature,
            damping=0.0,
            stiffness=0.0,
            limit_ke=cfg.limit_ke,
            limit_kd=cfg.limit_kd,
        )
        configure_joints(
            builder,
            slice(3, 6),
            armature=cfg.armature,
            damping=cfg.joint_damping,
            stiffness=0.0,
            limit_ke=cfg.limit_ke,
            limit_kd=cfg.limit_kd,
        )

    def _joint_forces(self, action: torch.Tensor) -> torch.Tensor:
        root = torch.zeros(action.shape[0], 3, device=action.device, dtype=action.dtype)
        return torch.cat((root, self.cfg.action_strength * action), dim=-1)

    def _initial_state(self, n: int) -> State:
        q = torch.zeros(n, 6, device=self.device)
        qd = torch.zeros(n, 6, device=self.device)
        if self.cfg.stochastic_init:
            q = q + self.uniform(n, 6, self.cfg.init_noise)
            qd = self.uniform(n, 6, self.cfg.init_noise)
        return self.make_state(q, qd)

    def _observe(self, state: State) -> torch.Tensor:
        return torch.cat((state["q"][:, 1:6], state["qd"]), dim=-1)

    def _reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        h = torch.clamp(
            obs[:, 0] - (cfg.termination_height + cfg.termination_height_tolerance), -1.0, cfg.height_reward_clip
        )
        height = torch.where(h < 0.0, -cfg.height_penalty * h**2, h)
        angle = cfg.angle_weight * (1.0 - obs[:, 1] ** 2 / cfg.termination_angle**2)
        return obs[:, 5] + height + angle - cfg.action_penalty * (action**2).sum(-1)

    def _terminated(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, 0] < self.cfg.termination_height
