"""dflex's 21-DoF Humanoid on warp/newton (Featherstone): obs 76, act 21, 48 substeps per 1/60 s control step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from pwm.envs.sim.articulation.assets import configure_joints, load_mjcf, mjcf_dof_names
from pwm.envs.sim.articulation.env import FreeBaseConfig, FreeBaseRobotEnv
from pwm.utils.errors import ConfigError

# dflex's motor strengths by joint name (its MJCF tree order is the order below; nv_humanoid.xml has the same tree)
HUMANOID_STRENGTHS: dict[str, float] = {
    "abdomen_z": 200.0,
    "abdomen_y": 200.0,
    "abdomen_x": 200.0,
    "right_hip_x": 200.0,
    "right_hip_z": 200.0,
    "right_hip_y": 600.0,
    "right_knee": 400.0,
    "right_ankle_y": 100.0,
    "right_ankle_x": 100.0,
    "left_hip_x": 200.0,
    "left_hip_z": 200.0,
    "left_hip_y": 600.0,
    "left_knee": 400.0,
    "left_ankle_y": 100.0,
    "left_ankle_x": 100.0,
    "right_shoulder1": 100.0,
    "right_shoulder2": 100.0,
    "right_elbow": 200.0,
    "left_shoulder1": 100.0,
    "left_shoulder2": 100.0,
    "left_elbow": 200.0,
}


@dataclass
class HumanoidConfig(FreeBaseConfig):
    """dflex Humanoid constants (``docs/simulators.md``, "The seven tasks") on newton's ``nv_humanoid.xml`` (the same
    capsule body).

    Physics: density 1000 (~41 kg), per-joint MJCF stiffness (a spring to q = 0), damping and armature as dflex read
    them (the knees fall back to the class defaults 5 / 0.1 / 0.007, which equal dflex's fallbacks), plus dflex's
    always-on limit damping 10, limit stiffness 1e3. Contact: ke 2e4, kd 2e3 (the PWM fork's ke/10), kf 1e3,
    mu 0.75, stable at 48 substeps with the point-penalty contact. Torques: a * 0.35 * strength (by joint name).
    """

    LIMITS: ClassVar[dict[str, str]] = dict.fromkeys(
        ("action_scale", "strengths", "termination_height_tolerance", "height_reward_clip", "height_penalty"), ">= 0"
    ) | {"action_penalty": ">= 0"}

    num_envs: int = 64
    substeps: int = 48
    contact_ke: float = 2.0e4
    contact_kd: float = 2.0e3
    contact_kf: float = 1.0e3
    contact_mu: float = 0.75
    limit_ke: float = 1.0e3
    limit_kd: float = 10.0
    action_scale: float = 0.35
    strengths: dict[str, float] = field(default_factory=lambda: dict(HUMANOID_STRENGTHS))
    start_height: float = 1.35
    target_x: float = 200.0
    termination_height: float = 0.74
    termination_height_tolerance: float = 0.1
    height_reward_clip: float = 0.1
    height_penalty: float = 200.0
    height_reward_scale: float = 10.0
    up_weight: float = 0.1
    heading_weight: float = 1.0
    action_penalty: float = 0.002


class HumanoidEnv(FreeBaseRobotEnv):
    """Obs (76): [height, quat xyzw (4, with dflex's base rotation), COM lin vel (3), ang vel (3), joint q (21),
    0.1 * joint qd (21), up_y, heading_proj, previous action (21)] in dflex's Y-up frame. Reward:
    v_x + 0.1 up + heading + height term - 0.002 |a|^2 with h = clip(height - 0.84, -1, 0.1), term -200 h^2 if h < 0
    else 10 h. Terminates when height < 0.74."""

    name = "dflex_humanoid"
    ASSET = "newton:nv_humanoid.xml"
    obs_dim = 76
    action_dim = 21
    cfg: HumanoidConfig

    def __init__(self, cfg: HumanoidConfig | None = None, requires_grad: bool = False) -> None:
        super().__init__(cfg if cfg is not None else HumanoidConfig(), requires_grad)

    def _build_robot(self, builder: Any) -> None:
        cfg = self.cfg
        path = self.asset_path()
        load_mjcf(builder, path, density=cfg.density)
        names = mjcf_dof_names(path)
        if len(names) != len(builder.joint_qd) - 6:
            raise RuntimeError(f"nv_humanoid.xml: {len(names)} joint names for {len(builder.joint_qd) - 6} DoFs")
        missing = sorted(set(names) - set(cfg.strengths))
        if missing:
            raise ConfigError(
                f"env {self.name}: strengths lacks {missing}; it needs a strength for every actuated joint"
            )
        self.dof_names = names
        strength = torch.tensor([cfg.strengths[n] for n in names], dtype=torch.float32)
        self.torque_scale = (cfg.action_scale * strength).to(self.device)
        configure_joints(builder, slice(0, 6), armature=0.0, damping=0.0, stiffness=0.0)
        configure_joints(builder, slice(6, None), limit_ke=cfg.limit_ke, limit_kd=cfg.limit_kd)

    def _reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        h = torch.clamp(
            obs[:, 0] - (cfg.termination_height + cfg.termination_height_tolerance), -1.0, cfg.height_reward_clip
        )
        height = torch.where(h < 0.0, -cfg.height_penalty * h**2, cfg.height_reward_scale * h)
        return (
            obs[:, 5]
            + cfg.up_weight * obs[:, 53]
            + cfg.heading_weight * obs[:, 54]
            + height
            - cfg.action_penalty * (action**2).sum(-1)
        )
