"""Meta-World MT50 tasks (``mw-*``, MT80 ids 30-79) with TD-MPC2's conventions.

TD-MPC2 (``envs/metaworld.py``) builds ``<task>-v2-goal-observable`` with the env seed, sets
``_freeze_rand_vec = False`` so that every reset draws a new object/goal position, and then:

- ``reset`` returns the reset observation, then takes one zero-action step whose result is discarded (so the
  returned observation is one env step older than the state the first action acts on);
- ``step`` repeats the action twice, sums the two rewards and returns the second step's observation and info;
- an episode is 100 agent steps (200 env steps), never terminated early;
- success is ``info["success"]`` of the episode's last step (0.0 or 1.0);
- it renders camera ``corner2`` moved to (0.75, 0.075, 0.7).

Differences here, because TD-MPC2 used the old metaworld (v2 tasks, mujoco-py, gym) and only metaworld 3.1.1
installs beside dm_control 1.0.28 / mujoco 3.3.0:

- ``mw-<task>`` maps to ``<task>-v3-goal-observable``: Meta-World v3 keeps the 50 task names but has only v3
  versions, whose reward functions and some object placements were revised. Scores are therefore comparable with
  TD-MPC2's v2 numbers only approximately, and the official mt80 dataset was collected on v2.
- Random goals each reset come from the env's own seeded generator (``seeded_rand_vec = True``) instead of
  NumPy's global one, so an env is reproducible from its seed alone without touching global RNG state.
- v3's camera ``corner4`` is exactly TD-MPC2's moved ``corner2`` (same position, orientation and field of view);
  it is the default render camera. Its orientation rolls it past 180°, which mujoco-py's bottom-up frames hid;
  ``mujoco.Renderer`` frames from ``corner2``/``corner4`` are therefore rotated by 180° to come out upright.
- Observations (39 entries) are cast from float64 to float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pwm.data.tasks import METAWORLD_EPISODE_LENGTH
from pwm.envs.suites.dmcontrol import ACTION_REPEAT, StepResult, as_action
from pwm.envs.suites.gl import use_headless_gl

CAMERA = "corner4"  # = TD-MPC2's corner2 at (0.75, 0.075, 0.7)
_ROLLED_CAMERAS = frozenset({"corner2", "corner4"})  # render upside down unless rotated


def _import_metaworld() -> tuple[Any, Any]:
    use_headless_gl()
    try:
        import metaworld
        import mujoco
    except ImportError as e:
        raise ImportError(f'Meta-World tasks need metaworld ({e}); install with: pip install -e ".[metaworld]"') from e
    return metaworld, mujoco


def metaworld_id(name: str) -> str:
    """``mw-assembly`` -> ``assembly-v3-goal-observable`` (the key in metaworld's goal-observable env dict)."""
    if not name.startswith("mw-"):
        raise ValueError(f"Meta-World task names start with 'mw-', got {name!r}")
    return f"{name.removeprefix('mw-')}-v3-goal-observable"


class MetaWorldEnv:
    """One Meta-World task; ``reset() -> obs``, ``step(action) -> StepResult`` with float32 observations of 39."""

    def __init__(self, name: str, seed: int = 0, episode_length: int = METAWORLD_EPISODE_LENGTH) -> None:
        metaworld, self._mujoco = _import_metaworld()
        envs = metaworld.env_dict.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
        key = metaworld_id(name)
        if key not in envs:
            valid = sorted("mw-" + k.removesuffix("-v3-goal-observable") for k in envs)
            raise ValueError(f"unknown Meta-World task {name!r}; valid tasks: {', '.join(valid)}")
        env = envs[key](seed=seed)
        env._freeze_rand_vec = False  # a new object/goal position at every reset (TD-MPC2)
        env.seeded_rand_vec = True  # ... drawn from the env's seeded generator, not np.random
        # Meta-World refuses to step past max_path_length env steps (500); an episode takes 1 + 2 * length.
        env.max_path_length = max(env.max_path_length, ACTION_REPEAT * episode_length + 1)
        self._env = env
        self.name = name
        self.episode_length = episode_length
        self.obs_dim = int(env.observation_space.shape[0])
        self.action_dim = int(env.action_space.shape[0])
        self._t = 0
        self._renderers: dict[tuple[int, int], Any] = {}

    def reset(self) -> np.ndarray:
        self._t = 0
        obs, _ = self._env.reset()
        self._env.step(np.zeros(self.action_dim, dtype=np.float32))  # TD-MPC2's discarded zero-action step
        return obs.astype(np.float32)

    def step(self, action: np.ndarray) -> StepResult:
        action = as_action(action, self.action_dim, self.name).astype(np.float32)
        reward = 0.0
        for _ in range(ACTION_REPEAT):
            obs, r, _, _, info = self._env.step(action.copy())
            reward += float(r)
        self._t += 1
        info = {**info, "success": float(info["success"])}
        return StepResult(obs.astype(np.float32), reward, False, self._t >= self.episode_length, info)

    def render(self, width: int = 384, height: int = 384, camera_id: int | str = CAMERA) -> np.ndarray:
        """RGB frame [height, width, 3] uint8 of the current state from ``camera_id`` (a camera name or index)."""
        renderer = self._renderers.get((width, height))
        if renderer is None:
            visual = self._env.model.vis.global_  # the offscreen buffer must hold the frame
            visual.offwidth, visual.offheight = max(visual.offwidth, width), max(visual.offheight, height)
            renderer = self._renderers[width, height] = self._mujoco.Renderer(self._env.model, height, width)
        renderer.update_scene(self._env.data, camera=camera_id)
        frame = renderer.render()
        return np.ascontiguousarray(frame[::-1, ::-1]) if camera_id in _ROLLED_CAMERAS else frame

    def close(self) -> None:
        """Free the GL contexts now: left to interpreter exit, EGL teardown prints harmless tracebacks."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self._env.close()
