"""CartPoleSwingUp and DoublePendulum: dflex's two planar tasks, written directly in torch.

Both are 2-DoF chains whose equations of motion fit in a few lines, so they need no simulator: autograd gives
exact gradients, there is nothing to compile, and they run on any torch device. The physics follows dflex's
conventions (``docs/simulators.md``, "Physics that follows dflex" and "The seven tasks"): masses from box geometry
at density 1000 (cart 0.5x0.5x0.2 m = 50 kg, poles 0.05x0.05x1 m = 2.5 kg), joint armature added to the mass matrix
diagonal, a joint damping term ``-limit_kd * qd`` that dflex applies always (not only at the limit), a spring
``limit_ke`` outside the slider's +-4 m, and a control step of 1/60 s split into ``substeps`` semi-implicit Euler
substeps with the action held.

Angles are measured from upright (theta = 0 is the pole pointing up), so the rewards' targets are the origin.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from pwm.envs.sim.base import BatchedEnv, EnvConfig, State

GRAVITY = 9.81
DENSITY = 1000.0


def _box_mass(x: float, y: float, z: float) -> float:
    return DENSITY * x * y * z


def _rod_inertia(mass: float, length: float, width: float) -> float:
    """Inertia of a box rod about its centre, for rotation about an axis across its length."""
    return mass * (length**2 + width**2) / 12.0


def wrap_angle(theta: torch.Tensor) -> torch.Tensor:
    """Angle wrapped to (-pi, pi], as dflex recovers it: atan2(sin, cos)."""
    return torch.atan2(torch.sin(theta), torch.cos(theta))


def _solve2(m: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Batched 2x2 solve by Cramer's rule ([n, 2, 2], [n, 2] -> [n, 2]); far cheaper than linalg.solve here."""
    a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    det = a * d - b * c
    return torch.stack(((d * rhs[:, 0] - b * rhs[:, 1]) / det, (a * rhs[:, 1] - c * rhs[:, 0]) / det), dim=-1)


@dataclass
class PlanarConfig(EnvConfig):
    """Physics settings shared by the two planar tasks (fork values: armature 0.1, limit_kd 1.0, limit_ke 1e2)."""

    LIMITS: ClassVar[dict[str, str]] = {
        "substeps": ">= 1",
        "dt": "> 0",
        "action_scale": ">= 0",
        "armature": ">= 0",
        "joint_damping": ">= 0",
        "pole_length": "> 0",
        "pole_width": "> 0",
    }

    num_envs: int = 1024
    episode_length: int = 240
    early_termination: bool = False
    substeps: int = 4
    dt: float = 1.0 / 60.0
    action_scale: float = 1000.0
    armature: float = 0.1
    joint_damping: float = 1.0
    pole_length: float = 1.0
    pole_width: float = 0.05


class _FiniteGrad(torch.autograd.Function):
    """Identity whose backward replaces non-finite gradients by 0, as the warp step does for its inputs.

    A planar env whose state runs to inf/NaN is terminated and reset by ``BatchedEnv``; the gradient reaching its
    blown-up step is 0, but 0 times an infinite derivative is NaN. Zeroing it here keeps that NaN out of the actions
    and the earlier states (finite gradients pass unchanged)."""

    @staticmethod
    def forward(ctx, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        return tuple(t.view_as(t) for t in tensors)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        return tuple(None if g is None else torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0) for g in grads)


class _PlanarEnv(BatchedEnv):
    """Shared integrator: state ``{"q": [n, 2], "qd": [n, 2]}``, semi-implicit Euler over the substeps."""

    cfg: PlanarConfig

    @abc.abstractmethod
    def _accel(self, q: torch.Tensor, qd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Joint accelerations ``[n, 2]`` from the equations of motion."""

    def _simulate(self, state: State, action: torch.Tensor) -> State:
        q, qd = state["q"], state["qd"]
        if torch.is_grad_enabled() and (q.requires_grad or qd.requires_grad or action.requires_grad):
            q, qd, action = _FiniteGrad.apply(q, qd, action)
        h = self.cfg.dt / self.cfg.substeps
        for _ in range(self.cfg.substeps):
            qd = qd + h * self._accel(q, qd, action)
            q = q + h * qd
        return {"q": q, "qd": qd}

    def _uniform(self, n: int, dims: int, half_width: float) -> torch.Tensor:
        u = torch.rand(n, dims, generator=self.generator, device=self.device)
        return (u * 2 - 1) * half_width


@dataclass
class CartPoleConfig(PlanarConfig):
    """CartPoleSwingUp. ``start_pose`` is where the two dflex versions differ: NVlabs (the SHAC paper) starts the
    pole ``hanging`` (theta = pi) and randomises around it; PWM's fork starts ``upright`` (theta = 0), which turns
    swing-up into balancing. CartPole is not among PWM's published results; ``hanging`` is the default because it
    is the task the name describes."""

    LIMITS: ClassVar[dict[str, str]] = {"cart_size": "> 0", "slider_limit": "> 0", "limit_ke": ">= 0"}

    start_pose: Literal["hanging", "upright"] = "hanging"
    cart_size: tuple[float, float, float] = (0.5, 0.5, 0.2)
    slider_limit: float = 4.0
    limit_ke: float = 1e2


class CartPoleSwingUpEnv(_PlanarEnv):
    """Obs [x, xdot, sin(theta), cos(theta), thetadot]; action = force 1000*a on the cart; 240 steps (4 s)."""

    name = "dflex_cartpole"
    obs_dim = 5
    action_dim = 1

    def __init__(self, cfg: CartPoleConfig | None = None, requires_grad: bool = False) -> None:
        super().__init__(cfg or CartPoleConfig(), requires_grad)
        cfg = self.cfg
        self.cart_mass = _box_mass(*cfg.cart_size)
        self.pole_mass = _box_mass(cfg.pole_width, cfg.pole_width, cfg.pole_length)
        self.pole_com = cfg.pole_length / 2
        self.pole_inertia = _rod_inertia(self.pole_mass, cfg.pole_length, cfg.pole_width)

    def _accel(self, q: torch.Tensor, qd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        x, theta = q[:, 0], q[:, 1]
        xd, thetad = qd[:, 0], qd[:, 1]
        ml = self.pole_mass * self.pole_com
        sin, cos = torch.sin(theta), torch.cos(theta)
        m11 = torch.full_like(x, self.cart_mass + self.pole_mass + c.armature)
        m22 = torch.full_like(x, ml * self.pole_com + self.pole_inertia + c.armature)
        mass = torch.stack((torch.stack((m11, ml * cos), -1), torch.stack((ml * cos, m22), -1)), -2)
        limit = c.limit_ke * ((-c.slider_limit - x).clamp(min=0) - (x - c.slider_limit).clamp(min=0))
        force_x = c.action_scale * action[:, 0] - c.joint_damping * xd + limit + ml * sin * thetad**2
        torque = -c.joint_damping * thetad + ml * GRAVITY * sin
        return _solve2(mass, torch.stack((force_x, torque), -1))

    def _initial_state(self, n: int) -> State:
        q = torch.zeros(n, 2, device=self.device)
        if self.cfg.start_pose == "hanging":
            q[:, 1] = math.pi
        qd = torch.zeros(n, 2, device=self.device)
        if self.cfg.stochastic_init:
            q = q + self._uniform(n, 2, math.pi / 2)
            qd = qd + self._uniform(n, 2, 0.25)
        return {"q": q, "qd": qd}

    def _observe(self, state: State) -> torch.Tensor:
        q, qd = state["q"], state["qd"]
        return torch.stack((q[:, 0], qd[:, 0], torch.sin(q[:, 1]), torch.cos(q[:, 1]), qd[:, 1]), -1)

    def _reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        theta = torch.atan2(obs[:, 2], obs[:, 3])
        return -(theta**2 + 0.1 * obs[:, 4] ** 2 + 0.05 * obs[:, 0] ** 2 + 0.1 * obs[:, 1] ** 2)


@dataclass
class DoublePendulumConfig(PlanarConfig):
    """DoublePendulum (PWM's fork only): two poles, torque 1000*a on the elbow, the shoulder unactuated.

    ``elbow_offset`` is the distance of the elbow from the shoulder along the upper pole. The fork's URDF puts the
    elbow at the shoulder (offset 0: both poles turn about one point, which looks like an asset bug); the default
    1.0 puts it at the upper pole's tip, a real double pendulum. Set 0.0 to reproduce the fork."""

    LIMITS: ClassVar[dict[str, str]] = {"elbow_offset": ">= 0"}

    elbow_offset: float = 1.0


class DoublePendulumEnv(_PlanarEnv):
    """Obs [cos t1, sin t1, cos t2, sin t2, t1dot, t2dot] (t2 relative to the upper pole); 240 steps."""

    name = "dflex_doublependulum"
    obs_dim = 6
    action_dim = 1

    def __init__(self, cfg: DoublePendulumConfig | None = None, requires_grad: bool = False) -> None:
        super().__init__(cfg or DoublePendulumConfig(), requires_grad)
        c = self.cfg
        self.mass = _box_mass(c.pole_width, c.pole_width, c.pole_length)
        self.com = c.pole_length / 2
        self.inertia = _rod_inertia(self.mass, c.pole_length, c.pole_width)

    def _accel(self, q: torch.Tensor, qd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Lagrange's equations in absolute angles (phi1 = t1, phi2 = t1 + t2), mapped to the joint angles."""
        c, m, r, d = self.cfg, self.mass, self.com, self.cfg.elbow_offset
        phi1, phi2 = q[:, 0], q[:, 0] + q[:, 1]
        w1, w2 = qd[:, 0], qd[:, 0] + qd[:, 1]
        s, k = torch.sin(phi1 - phi2), m * d * r
        m11 = torch.full_like(phi1, m * r * r + self.inertia + m * d * d)
        m22 = torch.full_like(phi1, m * r * r + self.inertia)
        m12 = k * torch.cos(phi1 - phi2)
        rhs1 = (m * r + m * d) * GRAVITY * torch.sin(phi1) - k * s * w2**2
        rhs2 = m * r * GRAVITY * torch.sin(phi2) + k * s * w1**2
        # Joint space: M_q = A^T M A + armature, f_q = A^T f with A = [[1, 0], [1, 1]].
        j11 = m11 + 2 * m12 + m22 + c.armature
        j12 = m12 + m22
        j22 = m22 + c.armature
        mass = torch.stack((torch.stack((j11, j12), -1), torch.stack((j12, j22), -1)), -2)
        tau1 = rhs1 + rhs2 - c.joint_damping * qd[:, 0]
        tau2 = rhs2 - c.joint_damping * qd[:, 1] + c.action_scale * action[:, 0]
        return _solve2(mass, torch.stack((tau1, tau2), -1))

    def _initial_state(self, n: int) -> State:
        q = torch.zeros(n, 2, device=self.device)
        qd = torch.zeros(n, 2, device=self.device)
        if self.cfg.stochastic_init:
            q = q + self._uniform(n, 2, math.pi / 2)
            qd = qd + self._uniform(n, 2, 0.25)
        return {"q": q, "qd": qd}

    def _observe(self, state: State) -> torch.Tensor:
        q, qd = state["q"], state["qd"]
        angles = torch.stack((torch.cos(q[:, 0]), torch.sin(q[:, 0]), torch.cos(q[:, 1]), torch.sin(q[:, 1])), -1)
        return torch.cat((angles, qd), -1)

    def _reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        t1 = torch.atan2(obs[:, 1], obs[:, 0])
        t2 = torch.atan2(obs[:, 3], obs[:, 2])
        return -(t1**2 + t2**2) - 0.1 * (obs[:, 4] ** 2 + obs[:, 5] ** 2)
