"""A Gymnasium view of one evaluation-suite env (DMControl, Meta-World), so Stable-Baselines3 agents train on the
same task conventions (action repeat 2, 500-step episodes) that the datasets and evaluations use."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np

from pwm.envs.suites.wrappers import Env


class SuiteGymEnv(gymnasium.Env):
    """``gymnasium.Env`` over an ``Env`` (``reset() -> obs``, ``step(a) -> StepResult``) with its own dims.

    The wrapped env owns its randomness (seeded at construction), so ``reset(seed=...)`` only seeds Gymnasium's
    RNG; episodes end by the env's own time limit (``truncated``).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, env: Env) -> None:
        self.env = env
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (env.obs_dim,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (env.action_dim,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.env.reset(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        out = self.env.step(np.asarray(action, dtype=np.float32))
        return out.obs, float(out.reward), bool(out.terminated), bool(out.truncated), dict(out.info or {})

    def close(self) -> None:
        self.env.close()
