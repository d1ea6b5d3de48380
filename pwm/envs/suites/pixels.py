"""Pixel observations for the DreamerV2 / PreLAR agents: Meta-World v3 and DMControl seen through a 64x64 camera.

Observations are uint8 frames [3 * frame_stack, H, W]. ``action_repeat`` repeats each agent action that many env
steps (rewards summed); ``episode_length`` counts env steps, so an episode has episode_length / action_repeat
agent steps. ``reset(seed)`` reseeds the task's randomness (Meta-World: object and goal positions), so that a
resumed run replays the same episodes.

Meta-World follows PreLAR / APV's protocol (docs/prelar.md): ``<task>-v3-goal-observable`` with a new goal each
reset, camera ``corner`` (v3 keeps v2's camera of that name; upright under ``mujoco.Renderer``), 500 env steps,
action repeat 1, never terminated on success; ``info["success"]`` is the step's success and an episode counts
as a success if *any* step succeeded (:func:`episode_success`).
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import numpy as np

from pwm.envs.suites.dmcontrol import StepResult, as_action, split_task_name
from pwm.envs.suites.gl import use_headless_gl
from pwm.envs.suites.metaworld import _import_metaworld, metaworld_id

use_headless_gl()  # before anything (metaworld.policies included) imports mujoco, which picks its GL backend then


class RenderBackendError(ImportError):
    """MuJoCo cannot render offscreen here; the message is one line naming the backend."""


def _backend_error(err: BaseException) -> RenderBackendError:
    backend = os.environ.get("MUJOCO_GL", "<unset>")
    first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    return RenderBackendError(
        f"pixel observations need MuJoCo offscreen rendering, but MUJOCO_GL={backend} failed ({first}); "
        "use MUJOCO_GL=egl (GPU or Mesa EGL) or MUJOCO_GL=osmesa (software)"
    )


def import_mujoco() -> Any:
    use_headless_gl()
    try:
        import mujoco
    except (ImportError, RuntimeError) as err:
        raise _backend_error(err) from None
    return mujoco


def make_renderer(mujoco: Any, model: Any, size: int) -> Any:
    try:
        return mujoco.Renderer(model, size, size)
    except Exception as err:  # GL context creation: the error type depends on the backend
        raise _backend_error(err) from None


def episode_success(successes: list[float]) -> float:
    """PreLAR / APV's Meta-World metric: 1.0 if the task succeeded at any step of the episode."""
    return float(any(s > 0 for s in successes))


class PixelMetaWorld:
    """A Meta-World v3 task from a 64x64 camera; ``reset(seed) -> frame``, ``step(action) -> StepResult``."""

    def __init__(self, task: str, seed: int = 0, size: int = 64, camera: str | None = None,
                 action_repeat: int = 1, episode_length: int = 500) -> None:  # fmt: skip
        try:
            metaworld, mujoco = _import_metaworld()  # metaworld first: it settles the GL setup mujoco uses
        except RuntimeError as err:
            raise _backend_error(err) from None

        envs = metaworld.env_dict.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
        key = metaworld_id(task)
        if key not in envs:
            raise ValueError(f"unknown Meta-World task {task!r}")
        env = envs[key](seed=seed)
        env._freeze_rand_vec = False  # a new goal each reset ...
        env.seeded_rand_vec = True  # ... from the env's own seeded generator
        env.max_path_length = episode_length + 1
        self._env, self.camera, self.size = env, camera or "corner", size
        self._renderer = make_renderer(mujoco, env.model, size)
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
            self._renderer.scene.flags[flag] = False  # 64x64 frames: not worth their cost in software GL
        self.name, self.action_repeat, self.episode_length = task, action_repeat, episode_length
        self.action_dim = int(env.action_space.shape[0])
        self._t = 0

    def render(self) -> np.ndarray:
        self._renderer.update_scene(self._env.data, camera=self.camera)
        return np.ascontiguousarray(self._renderer.render().transpose(2, 0, 1))

    def reset(self, seed: int | None = None) -> np.ndarray:
        self._t = 0
        if seed is not None:
            self._env.seed(seed)  # Meta-World ignores reset's seed argument
        self.state_obs, _ = self._env.reset()
        return self.render()

    def step(self, action: np.ndarray) -> StepResult:
        action = as_action(action, self.action_dim, self.name).astype(np.float32)
        reward, success = 0.0, 0.0
        for _ in range(self.action_repeat):
            self.state_obs, r, _, _, info = self._env.step(action.copy())
            reward, success = reward + float(r), max(success, float(info["success"]))
            self._t += 1
            if self._t >= self.episode_length:
                break
        done = self._t >= self.episode_length
        return StepResult(self.render(), reward, False, done, {"success": success})

    def close(self) -> None:
        self._renderer.close()
        self._env.close()


class PixelDMControl:
    """A DMControl task from a 64x64 camera (camera 0 unless ``camera`` names one); success is always 0."""

    def __init__(self, task: str, seed: int = 0, size: int = 64, camera: str | None = None,
                 action_repeat: int = 1, episode_length: int = 1000) -> None:  # fmt: skip
        import_mujoco()
        from dm_control import suite
        from dm_control.suite.wrappers import action_scale

        domain, name = split_task_name(task)
        if (domain, name) not in suite.ALL_TASKS:
            raise ValueError(f"unknown DMControl task {task!r}")
        self._env = action_scale.Wrapper(suite.load(domain, name, task_kwargs={"random": seed}), -1.0, 1.0)
        self.camera = 0 if camera is None else camera
        self.name, self.size, self.action_repeat, self.episode_length = task, size, action_repeat, episode_length
        self.action_dim = int(self._env.action_spec().shape[0])
        self._t = 0

    def render(self) -> np.ndarray:
        try:
            frame = self._env.physics.render(height=self.size, width=self.size, camera_id=self.camera)
        except Exception as err:
            raise _backend_error(err) from None
        return np.ascontiguousarray(frame.transpose(2, 0, 1))

    def reset(self, seed: int | None = None) -> np.ndarray:
        self._t = 0
        if seed is not None:
            self._env.task.random.seed(seed)
        self._env.reset()
        return self.render()

    def step(self, action: np.ndarray) -> StepResult:
        action = as_action(action, self.action_dim, self.name)
        reward = 0.0
        for _ in range(self.action_repeat):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
            self._t += 1
            if self._t >= self.episode_length or time_step.last():
                break
        done = self._t >= self.episode_length or time_step.last()
        return StepResult(self.render(), float(reward), False, done, {"success": 0.0})

    def close(self) -> None:
        self._env.close()


class FrameStack:
    """The last ``k`` frames stacked on the channel axis (the first frame repeated after a reset)."""

    def __init__(self, env: Any, k: int) -> None:
        self.env, self.k = env, k
        self.name, self.action_dim, self.episode_length = env.name, env.action_dim, env.episode_length
        self._frames: deque[np.ndarray] = deque(maxlen=k)

    def reset(self, seed: int | None = None) -> np.ndarray:
        frame = self.env.reset(seed)
        self._frames.extend([frame] * self.k)
        return np.concatenate(self._frames, 0)

    def step(self, action: np.ndarray) -> StepResult:
        result = self.env.step(action)
        self._frames.append(result.obs)
        return result._replace(obs=np.concatenate(self._frames, 0))

    def close(self) -> None:
        self.env.close()


def make_pixel_env(task: str, seed: int, size: int = 64, camera: str | None = None, action_repeat: int = 1,
                   frame_stack: int = 1, episode_length: int | None = None) -> Any:  # fmt: skip
    """``mw-<task>`` -> :class:`PixelMetaWorld` (500 env steps by default), else :class:`PixelDMControl` (1000)."""
    cls = PixelMetaWorld if task.startswith("mw-") else PixelDMControl
    kwargs = {} if episode_length is None else {"episode_length": episode_length}
    env = cls(task, seed=seed, size=size, camera=camera, action_repeat=action_repeat, **kwargs)
    return FrameStack(env, frame_stack) if frame_stack > 1 else env
