"""A Stable-Baselines3 ``VecEnv`` over one batched env, so SB3's PPO and SAC step all copies at once.

SB3 drives ``n`` envs through ``VecEnv.step`` with numpy arrays; a ``BatchedEnv`` already holds ``n`` copies as
torch tensors and resets finished ones itself. ``BatchedVecEnv`` is therefore a thin converter: one batched
``step`` per SB3 step (no per-env Python loop over the physics), numpy in and out, and SB3's auto-reset
conventions filled in from the batched env's own flags: for every finished env, ``infos[i]["terminal_observation"]``
is the observation before the reset (``info["obs_before_reset"]``) and ``infos[i]["TimeLimit.truncated"]`` says the
episode hit its time limit without terminating, which PPO and SAC use to bootstrap from that observation.

Seeding follows SB3: ``seed(s)`` takes effect at the next ``reset()``; the batched env takes one seed for all its
copies, so the first env's seed (``s``) is the one used.

SB3 is imported here, at module level, because the class derives from its ``VecEnv``; install it with
``pip install -e .[baselines]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

try:
    import gymnasium
    from stable_baselines3.common.vec_env import VecCheckNan, VecEnv
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(f"{err.name} is missing: install the baselines extra (pip install -e .[baselines])") from None

from pwm.envs.sim.base import BatchedEnv
from pwm.envs.sim.registry import make_dflex_env


class BatchedVecEnv(VecEnv):
    """``VecEnv`` with ``num_envs == env.num_envs`` over a ``BatchedEnv``; actions in [-1, 1]^action_dim."""

    def __init__(self, env: BatchedEnv) -> None:
        self.env = env
        self._actions: torch.Tensor | None = None
        observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (env.obs_dim,), np.float32)
        action_space = gymnasium.spaces.Box(-1.0, 1.0, (env.action_dim,), np.float32)
        super().__init__(env.num_envs, observation_space, action_space)

    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        obs = self.env.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return self._numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1)
        self._actions = torch.as_tensor(actions, device=self.env.device)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("BatchedVecEnv: step_wait() without step_async()")
        with torch.no_grad():
            out = self.env.step(self._actions)
        self._actions = None
        dones = (out.terminated | out.truncated).cpu().numpy()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(dones)
        if finished.size:  # only the envs that ended this step: usually none, at most a few
            before = self._numpy(out.info["obs_before_reset"][finished])
            time_limit = (out.truncated & ~out.terminated)[finished].cpu().numpy()
            for k, i in enumerate(finished):
                infos[i]["terminal_observation"] = before[k]
                infos[i]["TimeLimit.truncated"] = bool(time_limit[k])
        rewards = out.reward.detach().to(torch.float32).cpu().numpy()
        return self._numpy(out.obs), rewards, dones, infos

    def close(self) -> None:
        self._actions = None

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        if attr_name == "render_mode":  # the batched envs do not render through SB3
            value = None
        else:
            value = getattr(self.env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        if list(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError("BatchedVecEnv: attributes are shared by every env; set them on all at once")
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        count = len(list(self._get_indices(indices)))
        return [getattr(self.env, method_name)(*method_args, **method_kwargs)] * count

    def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    @staticmethod
    def _numpy(x: torch.Tensor) -> np.ndarray:
        return x.detach().to(torch.float32).cpu().numpy()


def make_vec_env(name: str, **overrides: Any) -> BatchedVecEnv:
    """``BatchedVecEnv`` of task ``name`` (e.g. ``dflex_hopper``) with config overrides (num_envs, seed, device)."""
    return BatchedVecEnv(make_dflex_env(name, overrides))


def check_vec_env(venv: VecEnv, steps: int = 50, seed: int = 0) -> None:
    """SB3's environment checks that apply to a ``VecEnv`` (``stable_baselines3.common.env_checker`` checks a single
    ``gymnasium.Env`` only): supported spaces (its ``_check_unsupported_spaces``), returned shapes and dtypes
    against the spaces (``vec_env.util.obs_space_info``), no NaN or inf in actions, observations or rewards
    (``VecCheckNan`` raising), and the auto-reset info SB3's algorithms read. A failed check is a one-line ValueError.
    """
    from stable_baselines3.common.env_checker import _check_unsupported_spaces
    from stable_baselines3.common.vec_env.util import obs_space_info

    _check_unsupported_spaces(venv, venv.observation_space, venv.action_space)
    _, shapes, dtypes = obs_space_info(venv.observation_space)
    shape, dtype = (venv.num_envs, *shapes[None]), dtypes[None]
    checked = VecCheckNan(venv, raise_exception=True)
    venv.seed(seed)
    _check_obs(checked.reset(), shape, dtype, venv.observation_space, "reset")
    venv.action_space.seed(seed)
    for _ in range(steps):
        actions = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
        try:
            obs, rewards, dones, infos = checked.step(actions)
        except ValueError as err:  # VecCheckNan's message spans lines; its first line names the array
            raise ValueError(f"check_vec_env: {str(err).splitlines()[0]}") from None
        _check_obs(obs, shape, dtype, venv.observation_space, "step")
        _require(rewards.shape == (venv.num_envs,) and rewards.dtype == np.float32, f"rewards {rewards.shape}")
        _require(dones.shape == (venv.num_envs,) and dones.dtype == np.bool_, f"dones {dones.shape} {dones.dtype}")
        _require(isinstance(infos, list) and len(infos) == venv.num_envs, "infos must be a list of num_envs dicts")
        for done, info in zip(dones, infos, strict=True):
            _require(done == ("terminal_observation" in info), "terminal_observation exactly when an env is done")
            if done:
                _require(venv.observation_space.contains(info["terminal_observation"]), "terminal_observation")
                _require(isinstance(info["TimeLimit.truncated"], bool), "TimeLimit.truncated must be a bool")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"check_vec_env: {message}")


def _check_obs(obs: np.ndarray, shape: Sequence[int], dtype: np.dtype, space, where: str) -> None:
    _require(isinstance(obs, np.ndarray), f"{where}: observations must be a numpy array, got {type(obs).__name__}")
    _require(obs.shape == tuple(shape) and obs.dtype == dtype, f"{where}: obs {obs.shape} {obs.dtype}, want {shape}")
    _require(all(space.contains(o) for o in obs), f"{where}: an observation lies outside the observation space")
