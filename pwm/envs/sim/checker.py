"""``check_env``: verifies that a ``BatchedEnv`` keeps the contract SHAC and PWM rely on.

Run it on any new task (the tests run it on all seven). Each violated rule raises ``EnvContractError`` with one
line naming the rule and what was seen.
"""

from __future__ import annotations

import torch

from pwm.envs.sim.base import BatchedEnv


class EnvContractError(AssertionError):
    """A ``BatchedEnv`` broke its contract."""


def _require(ok: bool, env: BatchedEnv, message: str) -> None:
    if not ok:
        raise EnvContractError(f"{env.name}: {message}")


def _check_step_output(env: BatchedEnv, out) -> None:
    n = env.num_envs
    _require(out.obs.shape == (n, env.obs_dim), env, f"obs shape {tuple(out.obs.shape)} != ({n}, {env.obs_dim})")
    _require(out.obs.dtype == torch.float32, env, f"obs dtype {out.obs.dtype} is not float32")
    _require(out.obs.device.type == env.device.type, env, f"obs on {out.obs.device}, env device {env.device}")
    _require(out.reward.shape == (n,), env, f"reward shape {tuple(out.reward.shape)} != ({n},)")
    for flag in ("terminated", "truncated"):
        value = getattr(out, flag)
        _require(value.shape == (n,) and value.dtype == torch.bool, env, f"{flag} must be a bool tensor of ({n},)")
    _require(not (out.terminated & out.truncated).any(), env, "an env is both terminated and truncated")
    _require("obs_before_reset" in out.info, env, "info lacks 'obs_before_reset'")
    _require(out.info["obs_before_reset"].shape == out.obs.shape, env, "obs_before_reset has the wrong shape")
    _require(bool(torch.isfinite(out.obs).all()), env, "obs contains NaN/Inf after auto-reset")
    _require(bool(torch.isfinite(out.reward).all()), env, "reward contains NaN/Inf")


def _check_bad_actions(env: BatchedEnv) -> None:
    for bad, what in (
        (torch.zeros(env.num_envs, env.action_dim + 1), "a wrong action shape"),
        (torch.full((env.num_envs, env.action_dim), float("nan")), "NaN actions"),
    ):
        try:
            env.step(bad)
        except (ValueError, TypeError):
            continue
        raise EnvContractError(f"{env.name}: {what} did not raise a ValueError/TypeError")


def _rollout(env: BatchedEnv, seed: int, steps: int) -> torch.Tensor:
    obs = [env.reset(seed=seed)]
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        action = (torch.rand(env.num_envs, env.action_dim, generator=gen) * 2 - 1).to(env.device)
        obs.append(env.step(action).obs.detach())
    return torch.stack(obs)


def _check_gradients(env: BatchedEnv, steps: int) -> None:
    env.set_requires_grad(True)
    env.reset(seed=0)
    actions = torch.zeros(steps, env.num_envs, env.action_dim, device=env.device, requires_grad=True)
    total = sum(env.step(actions[t] * 0.5).reward.sum() for t in range(steps))
    total.backward()
    grad = actions.grad
    _require(grad is not None and bool(torch.isfinite(grad).all()), env, "return gradient w.r.t. actions not finite")
    _require(bool(grad[0].abs().sum() > 0), env, "the first action gets no gradient from the rollout's return")
    obs = env.detach()
    _require(not obs.requires_grad and obs.grad_fn is None, env, "detach() left the observation in the graph")
    later = torch.zeros(env.num_envs, env.action_dim, device=env.device, requires_grad=True)
    out = env.step(later)
    loss = out.reward.sum() + out.obs.sum()
    (reached,) = torch.autograd.grad(loss, [actions], allow_unused=True)
    _require(reached is None or not reached.any(), env, "after detach() a new loss still reaches earlier actions")
    env.set_requires_grad(False)


def check_env(env: BatchedEnv, steps: int = 8, max_episode_steps: int = 300, gradients: bool = True) -> list[str]:
    """Check ``env`` and return the names of the checks that ran (all passed; a failure raises).

    Episode truncation is checked only when ``env.episode_length <= max_episode_steps`` (long episodes of the
    articulated robots cost minutes on a CPU); gradient checks run when ``gradients`` is true.
    """
    ran = []
    for attr in ("name", "obs_dim", "action_dim", "num_envs", "episode_length"):
        _require(hasattr(env, attr), env, f"missing attribute {attr}")
    obs = env.reset(seed=0)
    _require(obs.shape == (env.num_envs, env.obs_dim), env, f"reset obs shape {tuple(obs.shape)} is wrong")
    _require(bool(torch.isfinite(obs).all()), env, "reset obs contains NaN/Inf")
    ran.append("reset")
    _check_step_output(env, env.step(env.random_actions()))
    ran.append("step outputs")
    _check_bad_actions(env)
    ran.append("bad actions")
    first, second = _rollout(env, 3, steps), _rollout(env, 3, steps)
    _require(torch.equal(first, second), env, "same seed and actions gave different trajectories")
    ran.append("seed determinism")
    if env.episode_length <= max_episode_steps:
        _check_truncation(env)
        ran.append("truncation and auto-reset")
    if gradients:
        _check_gradients(env, min(steps, 4))
        ran.append("gradients")
    return ran


def _check_truncation(env: BatchedEnv) -> None:
    """Run one full episode with zero actions: truncation fires exactly at episode_length for surviving envs."""
    env.reset(seed=1)
    zero = torch.zeros(env.num_envs, env.action_dim, device=env.device)
    alive = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)
    for t in range(1, env.episode_length + 1):
        out = env.step(zero)
        _check_step_output(env, out)
        if t < env.episode_length:
            _require(not out.truncated.any(), env, f"truncated at step {t} < episode_length {env.episode_length}")
        alive &= ~out.terminated
    _require(bool(out.truncated[alive].all()), env, "envs alive at episode_length were not truncated")
    reset_obs = out.obs[alive]
    before = out.info["obs_before_reset"][alive]
    _require(not torch.equal(reset_obs, before), env, "after truncation the obs was not reset")
