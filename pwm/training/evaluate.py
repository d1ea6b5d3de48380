"""``evaluate``: a deterministic policy's episodes on a real environment, with one set of metric keys for every
runner: ``return``, ``return_std``, ``length``, ``success`` and ``final_reward`` (the mean reward over each
episode's last ``tail`` steps, which tells a policy that ends in the goal state from one that only passes it)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from pwm.envs.sim.base import BatchedEnv


def evaluate(
    policy: Callable, env, episodes: int, *, seed: int | None = None, on_reset: Callable[[], None] | None = None,
    tail: int = 60,
) -> dict[str, float]:  # fmt: skip
    """``episodes`` episodes of ``policy`` (obs -> action).

    A batched differentiable env (:class:`BatchedEnv`, torch tensors) runs one episode per env, all at once, from
    ``reset(seed=seed)``; ``episodes`` must equal its ``num_envs``. An evaluation env (``reset() -> obs``,
    ``step(action) -> StepResult``, numpy) runs them one after another; ``on_reset`` runs before each (a planner
    clears its warm start there) and success is that of each episode's last step (TD-MPC2's convention).
    """
    if isinstance(env, BatchedEnv):
        if episodes != env.num_envs:
            raise ValueError(f"evaluate: {episodes} episodes on a batched env of {env.num_envs}; they must be equal")
        return _evaluate_batched(env, policy, seed, tail)
    return _evaluate_sequential(env, policy, episodes, on_reset, tail)


@torch.no_grad()
def _evaluate_batched(env: BatchedEnv, policy, seed: int | None, tail: int) -> dict[str, float]:
    obs = env.reset(seed=seed)
    rewards, alive = [], []
    running = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)
    while running.any():
        out = env.step(policy(obs))
        rewards.append(out.reward.double())
        alive.append(running.clone())
        running &= ~(out.terminated | out.truncated)
        obs = out.obs
    reward, mask = torch.stack(rewards), torch.stack(alive)
    reward = torch.where(mask, reward, torch.zeros_like(reward))
    lengths = mask.sum(0)
    returns = reward.sum(0)
    steps = torch.arange(reward.shape[0], device=reward.device)[:, None]
    in_tail = mask & (steps >= lengths - tail)
    final = (reward * in_tail).sum(0) / in_tail.sum(0).clamp(min=1)
    return {
        "return": float(returns.mean()),
        "return_std": float(returns.std()) if env.num_envs > 1 else 0.0,
        "length": float(lengths.double().mean()),
        "success": 0.0,
        "final_reward": float(final.mean()),
    }


def _evaluate_sequential(env, policy, episodes: int, on_reset, tail: int) -> dict[str, float]:
    returns, successes, lengths, finals = [], [], [], []
    for _ in range(episodes):
        if on_reset is not None:
            on_reset()
        obs, rewards, total, done = env.reset(), [], 0.0, False
        info: dict = {}
        while not done:
            result = env.step(policy(obs))
            obs, total = result.obs, total + float(result.reward)  # summed in order (no compensated sum)
            rewards.append(float(result.reward))
            done = bool(result.terminated or result.truncated)
            info = getattr(result, "info", None) or {}
        returns.append(total)
        successes.append(float(info.get("success", 0.0)))
        lengths.append(len(rewards))
        finals.append(float(np.mean(rewards[-tail:])))
    return {
        "return": float(np.mean(returns)),
        "return_std": float(np.std(returns, ddof=1)) if episodes > 1 else 0.0,
        "length": float(np.mean(lengths)),
        "success": float(np.mean(successes)),
        "final_reward": float(np.mean(finals)),
    }
