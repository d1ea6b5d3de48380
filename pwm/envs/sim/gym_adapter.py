"""A Gymnasium view of one batched-env instance, so external baselines (Stable-Baselines3 SAC/PPO) run our tasks.

The batched env resets finished episodes itself; this adapter hands Gymnasium the observation from before that
reset as the final observation, and returns the already-reset start state on the next ``reset()`` only when no
seed is asked for (a seeded ``reset`` always starts afresh from that seed).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch

from pwm.envs.sim.base import BatchedEnv
from pwm.envs.sim.registry import make_dflex_env


class GymnasiumEnv(gymnasium.Env):
    """``gymnasium.Env`` over a ``BatchedEnv`` with ``num_envs == 1``; actions in [-1, 1]^action_dim."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, env: BatchedEnv) -> None:
        if env.num_envs != 1:
            raise ValueError(f"GymnasiumEnv wraps one env; {env.name} has num_envs={env.num_envs}")
        self.env = env
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (env.obs_dim,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (env.action_dim,), np.float32)
        self._pending_obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is None and self._pending_obs is not None:
            obs, self._pending_obs = self._pending_obs, None
            return obs, {}
        self._pending_obs = None
        return self.env.reset(seed=seed)[0].cpu().numpy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        tensor = torch.as_tensor(np.asarray(action, dtype=np.float32).reshape(1, -1), device=self.env.device)
        out = self.env.step(tensor)
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        obs = out.info["obs_before_reset"][0].cpu().numpy()
        if terminated or truncated:
            self._pending_obs = out.obs[0].cpu().numpy()
        return obs, float(out.reward[0]), terminated, truncated, {}


def make_gym_env(name: str, **overrides: Any) -> GymnasiumEnv:
    """``GymnasiumEnv`` of task ``name`` (e.g. ``dflex_cartpole``) with config overrides; num_envs is forced to 1."""
    return GymnasiumEnv(make_dflex_env(name, {**overrides, "num_envs": 1}))
