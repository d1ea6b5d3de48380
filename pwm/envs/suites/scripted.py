"""Action-free clips from Meta-World's scripted policies (``metaworld.policies``, one ``Sawyer<Task>V3Policy``
per v3 task) with Gaussian action noise, and from random actions on DMControl: the local stand-in for APV /
PreLAR's downloaded pretraining videos (docs/prelar.md). Only frames come out; actions are dropped."""

from __future__ import annotations

from typing import Any

import numpy as np

from pwm.envs.suites.pixels import PixelMetaWorld, make_pixel_env

_POLICY_NAMES = {"mw-peg-insert-side": "SawyerPegInsertionSideV3Policy"}  # the one name that does not follow the rule


def policy_class_name(task: str) -> str:
    """``mw-drawer-open`` -> ``SawyerDrawerOpenV3Policy`` (metaworld.policies' naming)."""
    if task in _POLICY_NAMES:
        return _POLICY_NAMES[task]
    words = task.removeprefix("mw-").split("-")
    return "Sawyer" + "".join(w.capitalize() for w in words) + "V3Policy"


def scripted_policy(task: str) -> Any:
    import metaworld.policies as policies

    name = policy_class_name(task)
    if not hasattr(policies, name):
        raise ValueError(f"metaworld.policies has no scripted policy {name} for {task}")
    return getattr(policies, name)()


def render_clip(task: str, seed: int, frames: int, noise: float = 0.1, size: int = 64) -> tuple[np.ndarray, float]:
    """(uint8 [frames, 3, size, size], success of the episode) of one noisy scripted (Meta-World) or random
    (DMControl) episode; the env is seeded with ``seed`` and closed before returning."""
    rng = np.random.default_rng(seed)
    env = make_pixel_env(task, seed, size=size, episode_length=frames - 1)
    try:
        out, success = [env.reset(seed)], 0.0
        policy = scripted_policy(task) if isinstance(env, PixelMetaWorld) else None
        for _ in range(frames - 1):
            if policy is not None:
                action = policy.get_action(env.state_obs) + noise * rng.standard_normal(env.action_dim)
            else:
                action = rng.uniform(-1, 1, env.action_dim)
            result = env.step(np.clip(action, -1, 1))
            out.append(result.obs)
            success = max(success, float(result.info["success"]))
        return np.stack(out), success
    finally:
        env.close()
