"""dflex's Anymal (ANYmal C; PWM fork only) on warp/newton (Featherstone): obs 49, act 12, 16 substeps per 1/60 s.

The robot is our own ``assets/anymal_c_minimal.xml``: the fork's ``anymal_minimal.urdf`` as dflex builds it (its
collision set: base capsule r 0.1 x 0.75, one knee capsule per thigh, foot spheres; masses from those shapes at
density 1000, 37.25 kg; no joint limits, as the URDF has none; see the file's header). Joint order (newton DoFs
6..17 and ``q[7:19]``): LF, RF, LH, RH legs, each HAA, HFE, KFE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from pwm.envs.sim.articulation.assets import configure_joints, load_mjcf
from pwm.envs.sim.articulation.env import FreeBaseConfig, FreeBaseRobotEnv

LEGS = ("LF", "RF", "LH", "RH")
# IsaacGymEnvs' default pose, which dflex's Anymal starts from: (HAA, HFE, KFE) per leg
DEFAULT_POSE = {"LF": (0.03, 0.4, -0.8), "RF": (-0.03, 0.4, -0.8), "LH": (0.03, -0.4, 0.8), "RH": (-0.03, -0.4, 0.8)}


@dataclass
class AnymalConfig(FreeBaseConfig):
    """dflex Anymal constants (``docs/simulators.md``, "The seven tasks").

    Joints: a PD spring ``stiffness * (0 - q) - damping * qd`` toward q = 0 on every leg joint (dflex's urdf_load
    stiffness 85 / damping 2 with targets never set), plus dflex's always-on limit damping 10 (limit stiffness 1e3
    never acts: the joints have no limits), armature 0.006. Contact: ke 2e3, kd 5e2, kf 1e2, mu 0.75 (dflex's
    values). Masses from the collision shapes at ``density`` (dflex: 1000, 37.25 kg).
    """

    LIMITS: ClassVar[dict[str, str]] = dict.fromkeys(
        ("armature", "joint_stiffness", "joint_damping", "action_strength", "action_penalty"), ">= 0"
    )

    num_envs: int = 64
    substeps: int = 16
    contact_ke: float = 2.0e3
    contact_kd: float = 5.0e2
    contact_kf: float = 1.0e2
    contact_mu: float = 0.75
    limit_ke: float = 1.0e3
    limit_kd: float = 10.0
    armature: float = 0.006
    joint_stiffness: float = 85.0
    joint_damping: float = 2.0
    action_strength: float = 200.0
    start_height: float = 0.55
    start_joint_q: tuple[float, ...] = tuple(x for leg in LEGS for x in DEFAULT_POSE[leg])
    termination_height: float = 0.25
    up_weight: float = 0.1
    heading_weight: float = 1.0
    height_weight: float = 1.0
    height_offset: float = 0.25
    action_penalty: float = 0.005


class AnymalEnv(FreeBaseRobotEnv):
    """Obs (49): [height, quat xyzw (4, with dflex's base rotation), COM lin vel (3), ang vel (3), joint q (12),
    0.1 * joint qd (12), up_y, heading_proj, previous action (12)], in dflex's Y-up frame. Action (12): joint
    torques 200 * a. Reward: v_x + 0.1 up + heading + (height - 0.25) - 0.005 |a|^2. Terminates when height < 0.25.
    """

    name = "dflex_anymal"
    ASSET = "anymal_c_minimal.xml"
    obs_dim = 49
    action_dim = 12
    cfg: AnymalConfig

    def __init__(self, cfg: AnymalConfig | None = None, requires_grad: bool = False) -> None:
        super().__init__(cfg if cfg is not None else AnymalConfig(), requires_grad)

    def _build_robot(self, builder: Any) -> None:
        cfg = self.cfg
        self.torque_scale = cfg.action_strength
        load_mjcf(builder, self.asset_path(), density=cfg.density)
        if builder.joint_dof_count != 18:
            raise RuntimeError(f"{self.ASSET}: expected 18 DoFs (free base + 12 hinges), got {builder.joint_dof_count}")
        configure_joints(builder, slice(0, 6), armature=0.0, damping=0.0, stiffness=0.0)
        configure_joints(
            builder,
            slice(6, None),
            armature=cfg.armature,
            damping=cfg.joint_damping,
            stiffness=cfg.joint_stiffness,
            limit_ke=cfg.limit_ke,
            limit_kd=cfg.limit_kd,
        )

    def _reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        return (
            obs[:, 5]
            + cfg.up_weight * obs[:, 35]
            + cfg.heading_weight * obs[:, 36]
            + cfg.height_weight * (obs[:, 0] - cfg.height_offset)
            - cfg.action_penalty * (action**2).sum(-1)
        )
