"""dflex's SNUHumanoid ("Humanoid MTU" in the SHAC paper) on warp/newton: obs 53, 152 muscle activations.

The lower-body skeleton is our own ``assets/snu_humanoid.xml``, carrying the numbers of SNU's human.xml as dflex's
Skeleton loader reads them (Pelvis free; FemurR/L ball; TibiaR/L hinge; TalusR/L ball; FootThumbR/L and FootPinkyR/L
hinges -> q 29, qd 24; one box per body), and the 152 muscle units are our own ``assets/snu_muscles.json``, carrying
the waypoints and maximum forces of muscle284.xml's lower-body units (see ``muscles.py`` for the force model). The
action is one activation per muscle unit; the muscles are the only actuators.

Coordinates. ``q = [pelvis pos (3, newton Z-up), pelvis quat xyzw (4), then per side R, L: Femur quat (4), Tibia (1),
Talus quat (4), FootThumb (1), FootPinky (1)]``; ``qd = [pelvis COM vel (3), ang vel (3), then per side: Femur (3),
Tibia (1), Talus (3), FootThumb (1), FootPinky (1)]``. Ball-joint quaternions are relative rotations of the child
joint frame in the parent joint frame; every body frame of the asset has the world's orientation in the zero pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import warp as wp

from pwm.envs.sim.articulation.assets import configure_joints, load_mjcf, prepare_mjcf
from pwm.envs.sim.articulation.env import WarpArticulationEnv, WarpEnvConfig
from pwm.envs.sim.articulation.frames import quat_mul, quat_rotate
from pwm.envs.sim.base import State
from pwm.envs.sim.checks import check_config
from pwm.envs.sim.muscles import SNU_MUSCLE_FILE, BallSprings, MuscleModel, load_muscle_table

# The pelvis frame of our asset (x forward, z up) expressed as SNU's (x left, y up, z forward): a 120 degree turn
# about (1, 1, 1). dflex's observed quaternion is (its base rotation) * (pelvis rotation) in SNU's frame.
SNU_LOCAL_QUAT = (0.5, 0.5, 0.5, 0.5)


@dataclass
class SNUHumanoidConfig(WarpEnvConfig):
    """dflex SNUHumanoid constants (``docs/simulators.md``, "The seven tasks").

    Skeleton: dflex's Skeleton gains, scaled per joint by ``s = m / gain_mass_ref`` (m: the joint's child body mass,
    dflex's reference 15 kg; ``None`` = no scaling): stiffness ``joint_stiffness * sqrt(s)`` towards the zero pose
    on every joint (on ball joints it acts on the quaternion's vector part, as dflex's), limit stiffness
    ``limit_ke * s`` and always-on limit damping ``limit_kd * s`` on the hinges, damping ``joint_damping`` (2,
    unscaled) on every joint, armature 0.05. E.g. knee (tibia 3 kg): stiffness 2.24, damping 2 + 2; toes (0.2 kg):
    0.58, 2 + 0.13. Contact: ke 5e3, kd 2e3, kf 1e3, mu 0.5. 48 substeps, mass matrix every 8.

    Muscles: force = activation * ``muscle_strength_scale`` * f0 along each muscle segment; ``muscle_file``: a
    muscle table (``None`` = the packaged ``assets/snu_muscles.json``). ``muscle_activation``:
    ``"signed"`` (the PWM fork) uses the clipped action a in [-1, 1] directly, so negative actions push;
    ``"unit"`` (NVlabs) maps it to (a + 1) / 2 in [0, 1]. The action penalty uses the same activation.
    ``joint_noise``: 0.2 is the fork's stochastic init (added to every joint coordinate, ball quaternions
    renormalised here); NVlabs uses 0.
    """

    LIMITS: ClassVar[dict[str, str]] = dict.fromkeys(
        ("armature", "joint_stiffness", "joint_damping", "muscle_strength_scale", "action_penalty"), ">= 0"
    ) | dict.fromkeys(("pos_noise", "rot_noise", "joint_noise", "qd_noise"), ">= 0")

    num_envs: int = 64
    substeps: int = 48
    mm_interval: int | None = 8
    contact_ke: float = 5.0e3
    contact_kd: float = 2.0e3
    contact_kf: float = 1.0e3
    contact_mu: float = 0.5
    limit_ke: float = 1.0e3
    limit_kd: float = 10.0
    density: float | None = None
    armature: float = 0.05
    joint_stiffness: float = 5.0
    joint_damping: float = 2.0
    gain_mass_ref: float | None = 15.0
    muscle_file: str | None = None
    muscle_activation: Literal["signed", "unit"] = "signed"
    muscle_strength_scale: float = 0.36
    start_height: float = 1.0
    pos_noise: float = 0.1
    rot_noise: float = math.pi / 24
    joint_noise: float = 0.2
    qd_noise: float = 0.25
    target_x: float = 10000.0
    termination_height: float = 0.46
    up_weight: float = 0.1
    heading_weight: float = 1.0
    action_penalty: float = 0.001


class SNUHumanoidEnv(WarpArticulationEnv):
    """Obs (53): [height, quat xyzw (4, dflex's: SNU frame incl. its +pi/2 start turn), COM lin vel (3), ang vel (3),
    joint q (22), 0.1 * joint qd (18), up_y, heading_proj], in dflex's Y-up frame. Action (152): muscle activations.
    Reward: v_x + 0.1 up + heading - 0.001 |activation|_1. Terminates when height < 0.46.
    """

    name = "dflex_snu_humanoid"
    ASSET = "snu_humanoid.xml"
    obs_dim = 53
    action_dim = 152
    cfg: SNUHumanoidConfig

    def __init__(self, cfg: SNUHumanoidConfig | None = None, requires_grad: bool = False) -> None:
        cfg = check_config(cfg if cfg is not None else SNUHumanoidConfig(), self.name)
        muscle_file = SNU_MUSCLE_FILE if cfg.muscle_file is None else cfg.muscle_file
        self.muscle_table = load_muscle_table(muscle_file)
        if self.muscle_table.num_muscles != self.action_dim:
            raise ValueError(f"{muscle_file}: expected {self.action_dim} muscles, got {self.muscle_table.num_muscles}")
        super().__init__(cfg, requires_grad)
        body_names = [label.split("/")[-1] for label in self.robot.body_label]
        self.muscles = MuscleModel(self.muscle_table, body_names, cfg.num_envs, device=self.sim.model.device)
        self.ball_springs = BallSprings(self.sim.model, self.ball_stiffness)
        self.muscle_f0 = torch.as_tensor(self.muscle_table.f0, device=self.device) * cfg.muscle_strength_scale
        self.snu_local_quat = torch.tensor(SNU_LOCAL_QUAT, device=self.device)
        self.default_q = torch.tensor(np.asarray(self.robot.joint_q, dtype=np.float32), device=self.device)
        self.obs_order = torch.as_tensor(self._snu_axes_order(), device=self.device)

    def _build_robot(self, builder: Any) -> None:
        import newton

        cfg = self.cfg
        if cfg.density is None:
            builder.add_mjcf(
                prepare_mjcf(self.asset_path(), density=None),
                parse_visuals=False,
                parse_sites=False,
                enable_self_collisions=False,
            )
        else:
            load_mjcf(builder, self.asset_path(), density=cfg.density)
        if (len(builder.joint_q), len(builder.joint_qd)) != (29, 24):
            raise RuntimeError(
                f"{self.ASSET}: expected q 29 / qd 24, got {len(builder.joint_q)} / {len(builder.joint_qd)}"
            )
        configure_joints(builder, slice(0, 6), armature=0.0, damping=0.0, stiffness=0.0)
        self.ball_coord_starts, self.ball_dof_starts, self.ball_stiffness = [], [], []
        for j, kind in enumerate(builder.joint_type):
            start, scale = builder.joint_qd_start[j], self.gain_scale(builder.body_mass[j])
            stiffness = cfg.joint_stiffness * math.sqrt(scale)
            if int(kind) == int(newton.JointType.BALL):
                # newton's Featherstone applies only joint_damping to ball joints; the stiffness is BallSprings', and
                # dflex's limit terms act on hinges and sliders only
                configure_joints(builder, range(start, start + 3), armature=cfg.armature, damping=cfg.joint_damping)
                self.ball_coord_starts.append(builder.joint_q_start[j])
                self.ball_dof_starts.append(start)
                self.ball_stiffness.append(stiffness)
            elif int(kind) == int(newton.JointType.REVOLUTE):
                configure_joints(
                    builder,
                    [start],
                    armature=cfg.armature,
                    damping=cfg.joint_damping,
                    stiffness=stiffness,
                    limit_ke=cfg.limit_ke * scale,
                    limit_kd=cfg.limit_kd * scale,
                )
        self.exact_inertia = True  # the asset's inertias follow dflex's rule; keep them as they are

    def gain_scale(self, body_mass: float) -> float:
        """dflex's Skeleton gain scale of a joint whose child body weighs ``body_mass`` (1 without scaling)."""
        ref = self.cfg.gain_mass_ref
        return 1.0 if ref is None else body_mass / ref

    # ---- actuation ----------------------------------------------------------------------------------------------
    def activation(self, action: torch.Tensor) -> torch.Tensor:
        """Muscle activations from the clipped action (``muscle_activation``: signed a or (a + 1) / 2)."""
        return action if self.cfg.muscle_activation == "signed" else 0.5 * action + 0.5

    def _joint_forces(self, action: torch.Tensor) -> torch.Tensor:
        return torch.zeros(action.shape[0], self.nqd, device=action.device, dtype=action.dtype)

    def _extra_inputs(self, action: torch.Tensor) -> torch.Tensor:
        return self.activation(action) * self.muscle_f0

    def _extra_forces(self, model: Any, state: Any, extra: Any, substep: int) -> None:
        self.muscles.apply(state.body_q, model.body_com, extra, state.body_f)
        self.ball_springs.apply(state.body_q, state.joint_q, state.body_f)

    # ---- task ---------------------------------------------------------------------------------------------------
    def _initial_state(self, n: int) -> State:
        cfg = self.cfg
        state = self.free_base_initial_state(
            n,
            (0.0, 0.0, cfg.start_height),
            self.default_q[7:],
            cfg.pos_noise,
            cfg.rot_noise,
            cfg.joint_noise,
            cfg.qd_noise,
        )
        q = state["q"].clone()
        for start in self.ball_coord_starts:
            quat = q[:, start : start + 4]
            q[:, start : start + 4] = quat / quat.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        state["q"] = q
        return state

    def _snu_axes_order(self) -> list[int]:
        """Observation index order that writes ball-joint coordinates in SNU's axes, as dflex observes them.

        A ball joint's quaternion vector part and its angular velocity are in the joint frame, whose axes here are
        SNU's relabelled (x, y, z)_ours = (z, x, y)_SNU; dflex's entries (x, y, z)_SNU are ours (y, z, x)."""
        order = list(range(self.obs_dim))
        joint_q, joint_qd = 11, 11 + self.nq - 7  # where q[7:] and 0.1 * qd[6:] start in the observation
        for start in [joint_q + c - 7 for c in self.ball_coord_starts] + [
            joint_qd + d - 6 for d in self.ball_dof_starts
        ]:
            order[start : start + 3] = [start + 1, start + 2, start]
        return order

    def _observe(self, state: State) -> torch.Tensor:
        obs = self.free_base_obs(state, self.cfg.target_x, with_action=False)
        quat = quat_mul(obs[:, 1:5], self.snu_local_quat.expand(obs.shape[0], 4))
        return torch.cat((obs[:, :1], quat, obs[:, 5:]), dim=-1)[:, self.obs_order]

    def _reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        return (
            obs[:, 5]
            + cfg.up_weight * obs[:, 51]
            + cfg.heading_weight * obs[:, 52]
            - cfg.action_penalty * self.activation(action).abs().sum(-1)
        )

    def _terminated(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, 0] < self.cfg.termination_height

    def muscle_wrenches(self, state: State, action: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The muscle wrenches alone (no grad), for checks and plots: per-body ``[N, B, 6]`` (force, torque about the
        COM; world axes) and the bodies' COM positions ``[N, B, 3]``."""
        body_q, _ = self.sim.body_state(state["q"], state["qd"])
        model = self.sim.model
        bq = wp.array(body_q.reshape(-1, 7).cpu().numpy(), dtype=wp.transform, device=model.device)
        bf = wp.zeros(model.body_count, dtype=wp.spatial_vector, device=model.device)
        force = wp.array(
            self._extra_inputs(action).detach().reshape(-1).cpu().numpy(), dtype=float, device=model.device
        )
        self.muscles.apply(bq, model.body_com, force, bf)
        com_local = torch.as_tensor(model.body_com.numpy()).view(self.num_envs, -1, 3)
        com = body_q[..., :3].cpu() + quat_rotate(body_q[..., 3:7].cpu(), com_local)
        return bf.numpy().reshape(self.num_envs, -1, 6), com.numpy()
