"""Gymnasium MuJoCo locomotion tasks (Hopper, Walker2d, HalfCheetah) on the evaluation-env protocol, with the
simulator state exposed so that a trajectory can be replayed from any recorded step.

PolyGRAD's paper used gym 0.26's ``*-v3`` tasks on mujoco-py (MuJoCo 2.1); with our pins (gymnasium 1.2.3, mujoco
3.3.0) the newest versions are ``*-v5``: same bodies, rewards and termination rules, but v5 fixes v3's contact-force
and model bugs and runs on the maintained ``mujoco`` bindings, so returns are close but not identical
(``docs/polygrad.md``). The time limit is kept here (not by gymnasium's wrapper), so that a run state holds the
whole env: simulator state, step count and the reset generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pwm.envs.suites.dmcontrol import StepResult, as_action
from pwm.envs.suites.gl import use_headless_gl
from pwm.utils.errors import ConfigError

GYM_TASKS = {"gym_hopper": "Hopper-v5", "gym_walker2d": "Walker2d-v5", "gym_halfcheetah": "HalfCheetah-v5"}


def gym_id(name: str, override: str | None = None) -> str:
    """The Gymnasium id of task ``name`` (``override`` wins); an unknown name is a one-line ConfigError."""
    if override:
        return override
    if name not in GYM_TASKS:
        raise ConfigError(f"unknown gymnasium task {name!r}; choose one of {', '.join(GYM_TASKS)}")
    return GYM_TASKS[name]


class GymMujocoEnv:
    """``reset() -> obs``, ``step(action in [-1, 1]) -> StepResult`` (float32 observations), plus ``sim_state`` /
    ``set_sim_state`` (qpos and qvel) and a ``state_dict`` for run states."""

    def __init__(self, name: str, seed: int = 0, episode_length: int | None = None, env_id: str | None = None):
        use_headless_gl()  # before gymnasium's MuJoCo envs import mujoco, which picks its GL backend at import
        import gymnasium as gym

        env_id = gym_id(name, env_id)
        try:
            spec = gym.spec(env_id)
        except gym.error.Error as err:
            raise ConfigError(f"{name}: gymnasium has no env {env_id!r} ({str(err).splitlines()[0]})") from None
        self._env = gym.make(env_id).unwrapped
        space = self._env.observation_space
        if len(space.shape or ()) != 1:
            self._env.close()
            raise ConfigError(
                f"{name} ({env_id}) has image-like observations of shape {space.shape}; PolyGRAD models state vectors"
            )
        if not hasattr(self._env, "set_state"):
            raise ConfigError(f"{name} ({env_id}) is not a MuJoCo env (no set_state); the error study needs one")
        self.name, self.env_id = name, env_id
        self.obs_dim = int(space.shape[0])
        self.action_dim = int(self._env.action_space.shape[0])
        self.state_dim = int(self._env.model.nq + self._env.model.nv)
        self.episode_length = int(episode_length or spec.max_episode_steps or 1000)
        if self.episode_length < 1:
            raise ConfigError(f"{name}: episode_length must be >= 1, got {self.episode_length}")
        self._low, self._high = self._env.action_space.low, self._env.action_space.high
        self._seed, self._t = seed, 0
        self._renderers: dict[tuple[int, int], Any] = {}

    def reset(self) -> np.ndarray:
        """A new episode; the first reset seeds the generator of initial states, later ones continue it."""
        seed, self._seed = self._seed, None
        obs, _ = self._env.reset(seed=seed)
        self._t = 0
        return obs.astype(np.float32)

    def seed(self, seed: int) -> None:
        """The next reset reseeds the initial-state generator (evaluations reseed per evaluation)."""
        self._seed = seed

    def step(self, action: np.ndarray) -> StepResult:
        a = as_action(action, self.action_dim, self.name)
        obs, reward, terminated, _, _ = self._env.step(self._low + (a + 1) * 0.5 * (self._high - self._low))
        self._t += 1
        truncated = self._t >= self.episode_length and not terminated
        return StepResult(obs.astype(np.float32), float(reward), bool(terminated), truncated, {"success": 0.0})

    def sim_state(self) -> np.ndarray:
        """MuJoCo ``[qpos, qvel]`` (float64): with it, ``set_sim_state`` puts the simulator back at this step."""
        data = self._env.data
        return np.concatenate([data.qpos, data.qvel]).copy()

    def set_sim_state(self, state: np.ndarray) -> np.ndarray:
        """Restore ``[qpos, qvel]``; returns the observation there."""
        nq = self._env.model.nq
        self._env.set_state(np.asarray(state[:nq], np.float64), np.asarray(state[nq:], np.float64))
        return self.observe()

    def observe(self) -> np.ndarray:
        return self._env._get_obs().astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        rng = self._env.np_random.bit_generator.state
        return {"sim_state": torch.from_numpy(self.sim_state()), "t": self._t, "seed": self._seed, "rng": rng}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_sim_state(np.asarray(state["sim_state"], dtype=np.float64))
        self._t, self._seed = int(state["t"]), state["seed"]
        self._env.np_random.bit_generator.state = state["rng"]

    def render(self, width: int = 384, height: int = 384) -> np.ndarray:
        """RGB frame [height, width, 3] uint8 of the current state, from a camera that follows the torso (body 1)
        from the side, as gymnasium's own locomotion viewers do."""
        import mujoco

        renderer = self._renderers.get((width, height))
        if renderer is None:
            visual = self._env.model.vis.global_  # the offscreen buffer must hold the frame
            visual.offwidth, visual.offheight = max(visual.offwidth, width), max(visual.offheight, height)
            renderer = self._renderers[width, height] = mujoco.Renderer(self._env.model, height, width)
        camera = mujoco.MjvCamera()
        camera.type, camera.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, 1
        camera.distance, camera.elevation, camera.azimuth = 4.0, -15.0, 90.0
        renderer.update_scene(self._env.data, camera=camera)
        return renderer.render()

    def close(self) -> None:
        """Free the GL contexts now: left to interpreter exit, EGL teardown prints harmless tracebacks."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self._env.close()
