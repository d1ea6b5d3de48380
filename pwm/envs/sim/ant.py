"""dflex's Ant on warp/newton (Featherstone): obs 37, act 8, 16 substeps of 1/960 s per 1/60 s control step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from pwm.envs.sim.articulation.assets import configure_joints, load_mjcf
from pwm.envs.sim.articulation.dflex_inertia import apply_dflex_inertia
from pwm.envs.sim.articulation.env import FreeBaseConfig, FreeBaseRobotEnv


@dataclass
class AntConfig(FreeBaseConfig):
    """dflex Ant constants (``docs/simulators.md``, "The seven tasks"), on newton's ``nv_ant.xml`` (gym's Ant geometry).

    Physics: density 1000 for every geom (dflex's rule; the MJCF's density 5 is ignored, so the Ant weighs ~180 kg),
    hinge armature 0.05, joint damping 1.0 plus dflex's always-on limit damping 10, limit stiffness 1e3, no joint
    stiffness. Contact: dflex's fork values ke 4e4, kd 1e4 (depth-scaled), kf 3e3, mu 0.75. They are stable at 16
    substeps here because the contact is dflex's point-penalty model (not newton's collision pipeline, for which
    rewarped needed ~10x lower ke); the test suite checks that the Ant settles and stays at rest.
    """

    LIMITS: ClassVar[dict[str, str]] = dict.fromkeys(
        ("armature", "joint_damping", "action_strength", "action_penalty"), ">= 0"
    )

    num_envs: int = 128
    substeps: int = 16
    contact_ke: float = 4.0e4
    contact_kd: float = 1.0e4
    contact_kf: float = 3.0e3
    contact_mu: float = 0.75
    limit_ke: float = 1.0e3
    limit_kd: float = 10.0
    armature: float = 0.05
    joint_damping: float = 1.0
    action_strength: float = 200.0
    start_joint_q: tuple[float, ...] = (0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0)
    up_weight: float = 0.1
    heading_weight: float = 1.0
    height_offset: float = 0.27
    action_penalty: float = 0.0
    dflex_inertia: bool = True


class AntEnv(FreeBaseRobotEnv):
    """Obs (37): [height, quat xyzw (4, with dflex's base rotation), COM lin vel (3), ang vel (3), joint q (8),
    0.1 * joint qd (8), up_y, heading_proj, previous action (8)], all in dflex's Y-up frame. Reward:
    v_x + 0.1 up + heading + (height - 0.27) - 0 * |a|^2. Terminates when height < 0.27."""

    name = "dflex_ant"
    ASSET = "newton:nv_ant.xml"
    obs_dim = 37
    action_dim = 8
    cfg: AntConfig

    def __init__(self, cfg: AntConfig | None = None, requires_grad: bool = False) -> None:
        super().__init__(cfg if cfg is not None else AntConfig(), requires_grad)

    def _build_robot(self, builder: Any) -> None:
        cfg = self.cfg
        self.torque_scale = cfg.action_strength
        load_mjcf(builder, self.asset_path(), density=cfg.density)
        if cfg.dflex_inertia:
            apply_dflex_inertia(builder, cfg.density)
            self.exact_inertia = True
        configure_joints(builder, slice(0, 6), armature=0.0, damping=0.0, stiffness=0.0)
        configure_joints(
            builder,
            slice(6, None),
            armature=cfg.armature,
            damping=cfg.joint_damping,
            stiffness=0.0,
            limit_ke=cfg.limit_ke,
            limit_kd=cfg.limit_kd,
        )

    def _reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        return (
            obs[:, 5]
            + cfg.up_weight * obs[:, 27]
            + cfg.heading_weight * obs[:, 28]
            + (obs[:, 0] - cfg.height_offset)
            - cfg.action_penalty * (action**2).sum(-1)
        )
