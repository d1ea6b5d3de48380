"""Evaluate a policy on a real environment: mean episode return, success and length over several episodes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray], env, episodes: int, on_reset: Callable[[], None] | None = None
) -> dict[str, float]:
    """Run ``episodes`` full episodes of ``policy`` (obs -> action, both numpy) on ``env``.

    ``env`` follows pwm's env contract: ``reset() -> obs`` and ``step(action) -> StepResult`` with
    ``terminated``, ``truncated`` and ``info["success"]``. Success is that of each episode's last step
    (TD-MPC2's convention for Meta-World; 0 for tasks without a success notion). ``on_reset`` runs before each
    episode (a planner clears its warm start there).
    """
    returns, successes, lengths = [], [], []
    for _ in range(episodes):
        if on_reset is not None:
            on_reset()
        obs, total, steps, done = env.reset(), 0.0, 0, False
        info: dict = {}
        while not done:
            result = env.step(policy(obs))
            obs, total, steps = result.obs, total + float(result.reward), steps + 1
            done = bool(result.terminated or result.truncated)
            info = getattr(result, "info", None) or {}
        returns.append(total)
        successes.append(float(info.get("success", 0.0)))
        lengths.append(steps)
    return {
        "episode_reward": float(np.mean(returns)),
        "episode_success": float(np.mean(successes)),
        "episode_length": float(np.mean(lengths)),
    }
