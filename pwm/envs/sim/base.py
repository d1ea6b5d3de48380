"""Batched, optionally differentiable environments: the contract SHAC and PWM's single-task loop are written against.

A ``BatchedEnv`` holds ``num_envs`` copies of one task as torch tensors on one device. ``step`` validates and clips
the actions, advances the physics, computes rewards, terminations and truncations, and resets finished envs in
place, handing back the observation they had before the reset in ``info["obs_before_reset"]``.

Gradients: with ``requires_grad=True`` the step is differentiable, so a loss on the returns of a rollout reaches
the actions and the states it started from (SHAC). ``detach()`` cuts that graph at a rollout start and keeps the
state's values. With ``requires_grad=False`` (PWM's data collection) the step runs under ``torch.no_grad``.

A task implements five small hooks on a state dict of tensors (``_initial_state``, ``_simulate``,
``_observe``, ``_reward``, ``_terminated``); the base class owns everything else, so every task gets the same
validation, timing convention and auto-reset.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import torch

from pwm.envs.sim.checks import as_seed, check_config, check_device

State = dict[str, torch.Tensor]
RewardTiming = Literal["pre", "post"]


class NonFiniteActionError(ValueError, FloatingPointError):
    """NaN/inf actions: bad input to the env (a ValueError) and, from a training step, a diverged policy (a
    FloatingPointError, which the training loop turns into a one-line stop that keeps the last run state)."""


class EnvStep(NamedTuple):
    """What ``BatchedEnv.step`` returns; every tensor has leading dim ``num_envs``."""

    obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    info: dict[str, torch.Tensor]


@dataclass
class EnvConfig:
    """Settings every batched task shares; tasks extend it with their physics constants.

    ``reward_timing`` picks between the two dflex versions: ``pre`` computes r(s_t, a_t) from the observation
    before the step (imgeorgiev/DiffRL, which PWM's published results used); ``post`` computes it from the
    observation after the step (NVlabs/DiffRL, the SHAC paper).

    ``LIMITS``: the allowed range of numeric fields, checked at construction (``pwm.envs.sim.checks``).
    """

    LIMITS: ClassVar[dict[str, str]] = {"num_envs": ">= 1", "episode_length": ">= 1"}

    num_envs: int = 64
    episode_length: int = 1000
    device: str = "cpu"
    seed: int = 0
    stochastic_init: bool = True
    early_termination: bool = True
    reward_timing: RewardTiming = "pre"


class BatchedEnv(abc.ABC):
    """Base class of the single-task differentiable environments (see the module docstring).

    Subclasses set ``obs_dim``, ``action_dim`` and ``name`` and implement the hooks. Observations, rewards and
    flags are float32/bool tensors on ``self.device``; actions must be ``[num_envs, action_dim]`` and are clipped
    to [-1, 1] before use.
    """

    name: str
    obs_dim: int
    action_dim: int
    DEVICE_TYPES: ClassVar[tuple[str, ...] | None] = None  # device types the physics runs on (None: any)

    def __init__(self, cfg: EnvConfig, requires_grad: bool = False) -> None:
        cfg = check_config(cfg, self.name)
        self.cfg = cfg
        self.num_envs = cfg.num_envs
        self.episode_length = cfg.episode_length
        self.device = check_device(cfg.device, f"env {self.name}", self.DEVICE_TYPES)
        self.requires_grad = requires_grad
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)
        self.state: State = {}
        self.obs = torch.zeros(self.num_envs, 0)
        self.progress = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    # ---- hooks a task implements -------------------------------------------------------------------------------
    @abc.abstractmethod
    def _initial_state(self, n: int) -> State:
        """Start states for ``n`` envs, randomised with ``self.generator`` when ``cfg.stochastic_init``."""

    @abc.abstractmethod
    def _simulate(self, state: State, action: torch.Tensor) -> State:
        """Advance one control step (all substeps) under clipped ``action`` in [-1, 1]; differentiable in torch."""

    @abc.abstractmethod
    def _observe(self, state: State) -> torch.Tensor:
        """The ``[n, obs_dim]`` observation of ``state``."""

    @abc.abstractmethod
    def _reward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Per-env reward from an observation and the clipped action (dflex computes rewards from observations)."""

    def _terminated(self, obs: torch.Tensor) -> torch.Tensor:
        """Early-termination flags from the post-step observation; tasks without early termination keep this."""
        return torch.zeros(obs.shape[0], dtype=torch.bool, device=obs.device)

    # ---- public API --------------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """Reseed the reset randomness; ``reset()`` after ``seed(s)`` repeats the same trajectories. Any integer
        (numpy ones included) is a seed; anything else is a one-line ConfigError."""
        self.generator.manual_seed(as_seed(seed, self.name))

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every env (fresh randomised start states); returns the ``[num_envs, obs_dim]`` observation."""
        if seed is not None:
            self.seed(seed)
        with torch.no_grad():
            self.state = self._initial_state(self.num_envs)
            self.obs = self._observe(self.state)
        self.progress.zero_()
        return self.obs.clone()

    def detach(self) -> torch.Tensor:
        """Cut the autograd graph here: later losses reach no earlier state or action. Returns the observation."""
        self.state = {k: v.detach() for k, v in self.state.items()}
        self.obs = self.obs.detach()
        return self.obs.clone()

    def set_requires_grad(self, enabled: bool) -> None:
        """Switch between differentiable steps (SHAC) and ``no_grad`` steps (PWM's data collection)."""
        self.requires_grad = enabled
        if not enabled:
            self.detach()

    def step(self, actions: torch.Tensor) -> EnvStep:
        """Advance every env by one control step; finished envs are reset before returning (see ``EnvStep``)."""
        if not self.state:
            raise RuntimeError(f"{self.name}: call reset() before step()")
        action = self._check_actions(actions)
        with torch.set_grad_enabled(self.requires_grad):
            return self._step(action)

    # ---- internals ---------------------------------------------------------------------------------------------
    def _check_actions(self, actions: torch.Tensor) -> torch.Tensor:
        if not isinstance(actions, torch.Tensor):
            raise TypeError(f"{self.name}: actions must be a torch.Tensor, got {type(actions).__name__}")
        if actions.shape != (self.num_envs, self.action_dim):
            raise ValueError(
                f"{self.name}: actions must have shape ({self.num_envs}, {self.action_dim}), got {tuple(actions.shape)}"
            )
        if not torch.isfinite(actions.detach()).all():
            bad = (~torch.isfinite(actions.detach())).any(-1).nonzero().flatten().tolist()
            raise NonFiniteActionError(
                f"{self.name}: the actions are NaN/inf (envs {bad[:8]}; a diverged policy: learning rate too high?)"
            )
        return actions.to(device=self.device, dtype=torch.float32).clamp(-1.0, 1.0)

    def _step(self, action: torch.Tensor) -> EnvStep:
        prev_obs = self.obs
        state = self._simulate(self.state, action)
        obs = self._observe(state)
        reward = self._reward(prev_obs if self.cfg.reward_timing == "pre" else obs, action)
        self.progress += 1
        blown_up = ~torch.isfinite(obs).all(-1)
        terminated = blown_up
        if self.cfg.early_termination:
            terminated = terminated | self._terminated(obs)
        truncated = (self.progress >= self.episode_length) & ~terminated
        done = terminated | truncated
        info = {"obs_before_reset": obs}
        # A non-finite state must not leak into the next rollout or the returns.
        reward = torch.where(torch.isfinite(reward), reward, torch.zeros_like(reward))
        if done.any():
            if blown_up.any():  # a blown-up env's last observation is meaningless: hand back zeros, no gradient
                info["obs_before_reset"] = torch.where(blown_up[:, None], torch.zeros_like(obs), obs)
            state, obs = self._reset_done(state, obs, done)
        self.state, self.obs = state, obs
        return EnvStep(obs.clone() if not self.requires_grad else obs, reward, terminated, truncated, info)

    def _reset_done(self, state: State, obs: torch.Tensor, done: torch.Tensor) -> tuple[State, torch.Tensor]:
        """Replace the rows of finished envs by fresh start states (the others keep their graph)."""
        ids = done.nonzero().flatten()
        with torch.no_grad():
            fresh = self._initial_state(len(ids))
            fresh_obs = self._observe(fresh)
        new_state = {}
        for key, value in state.items():
            value = torch.nan_to_num(value) if not torch.isfinite(value).all() else value
            new_state[key] = value.index_put((ids,), fresh[key].to(value.dtype))
        self.progress[ids] = 0
        obs = torch.nan_to_num(obs).index_put((ids,), fresh_obs)
        return new_state, obs

    def state_dict(self) -> dict:
        """Physics state, progress counters and reset RNG: restoring them continues the same trajectories."""
        return {
            "state": {k: v.detach().cpu() for k, v in self.state.items()},
            "obs": self.obs.detach().cpu(),
            "progress": self.progress.cpu(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, saved: dict) -> None:
        self.state = {k: v.to(self.device) for k, v in saved["state"].items()}
        self.obs = saved["obs"].to(self.device)
        self.progress = saved["progress"].to(self.device)
        self.generator.set_state(saved["generator"])

    def random_actions(self) -> torch.Tensor:
        """Uniform actions in [-1, 1] drawn from the env's own generator (repeatable with the seed)."""
        return torch.rand(self.num_envs, self.action_dim, generator=self.generator, device=self.device) * 2 - 1
