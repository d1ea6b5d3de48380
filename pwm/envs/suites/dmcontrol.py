"""DMControl tasks with TD-MPC2's conventions, so that rollouts match the official datasets and evaluations.

Conventions (TD-MPC2 ``envs/dmcontrol.py``): ``suite.load(domain, task, task_kwargs={"random": seed})``;
task names are ``<domain>-<task>`` with ``cup`` meaning ``ball_in_cup`` and the dashes of the task part becoming
underscores (``finger-turn-easy`` -> ``finger`` / ``turn_easy``); actions in [-1, 1] (dm_control's
``action_scale`` wrapper); action repeat 2 with the two rewards summed (each in [0, 1], so [0, 2] per agent
step); 500 agent steps per episode, which ends by time limit only (never ``terminated``); observations are the
flattened values of the observation dict in spec order, concatenated as float32.

TD-MPC2's 11 custom tasks (walker-walk-backwards ... pendulum-spin, ids 19-29 of mt30) come from
:mod:`pwm.envs.suites.dmc_tasks`; they are registered with dm_control the first time one is requested.

``info["success"]`` is always 0.0: DMControl tasks have no success notion (TD-MPC2 scores them by return / 10),
but evaluation code averages ``success`` over every suite, so every env reports it (Meta-World: 0.0 or 1.0).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from pwm.data.tasks import DMC_EPISODE_LENGTH, MT30
from pwm.envs.suites.gl import use_headless_gl

ACTION_REPEAT = 2
CUSTOM_TASKS: frozenset[str] = frozenset(MT30.names[19:])
_DOMAIN_ALIASES = {"cup": "ball_in_cup"}


class StepResult(NamedTuple):
    obs: np.ndarray  # [O] float32
    reward: float  # summed over the action repeat
    terminated: bool  # always False for DMControl and Meta-World
    truncated: bool  # True at the time limit
    info: dict | None = None  # {"success": float, ...}; Meta-World reports task success here


def as_action(action: np.ndarray, dim: int, name: str) -> np.ndarray:
    """``action`` as a float64 vector of ``dim`` entries clipped to [-1, 1]; a wrong size is a one-line error."""
    action = np.asarray(action, dtype=np.float64).ravel()
    if action.shape != (dim,):
        raise ValueError(f"{name} takes actions of {dim} entries, got shape {action.shape}")
    return np.clip(action, -1.0, 1.0)


def split_task_name(name: str) -> tuple[str, str]:
    """``cartpole-balance-sparse`` -> (``cartpole``, ``balance_sparse``); ``cup-catch`` -> (``ball_in_cup``, ...)."""
    domain, sep, task = name.partition("-")
    if not sep or not task:
        raise ValueError(f"task name {name!r} is not of the form <domain>-<task>, e.g. 'walker-walk'")
    return _DOMAIN_ALIASES.get(domain, domain), task.replace("-", "_")


def _import_suite() -> Any:
    use_headless_gl()
    try:
        from dm_control import suite
        from dm_control.suite.wrappers import action_scale
    except ImportError as e:
        raise ImportError(f'DMControl tasks need dm_control ({e}); install with: pip install -e ".[dmc]"') from e
    return suite, action_scale


class DMControlEnv:
    """One DMControl task; ``reset() -> obs``, ``step(action) -> StepResult`` with numpy float32 observations."""

    def __init__(self, name: str, seed: int = 0, episode_length: int = DMC_EPISODE_LENGTH) -> None:
        suite, action_scale = _import_suite()
        domain, task = split_task_name(name)
        if name in CUSTOM_TASKS:
            from pwm.envs.suites import dmc_tasks

            dmc_tasks.register()
        elif (domain, task) not in suite.ALL_TASKS:
            raise ValueError(f"unknown DMControl task {name!r} ({domain}/{task} is not in dm_control.suite)")
        env = suite.load(domain, task, task_kwargs={"random": seed})
        self._env = action_scale.Wrapper(env, minimum=-1.0, maximum=1.0)
        self.name = name
        self.episode_length = episode_length
        self.action_dim = int(self._env.action_spec().shape[0])
        self.obs_dim = int(sum(np.prod(s.shape, dtype=int) for s in self._env.observation_spec().values()))
        self._t = 0

    @property
    def physics(self) -> Any:
        """The dm_control ``Physics`` (for rendering, tests and state inspection)."""
        return self._env.physics

    @property
    def task(self) -> Any:
        """The dm_control ``Task``, whose ``get_reward(physics)`` is the per-env-step reward."""
        return self._env.task

    def reset(self) -> np.ndarray:
        self._t = 0
        return _flatten(self._env.reset().observation)

    def step(self, action: np.ndarray) -> StepResult:
        action = as_action(action, self.action_dim, self.name)
        reward = 0.0
        for _ in range(ACTION_REPEAT):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
        self._t += 1
        truncated = self._t >= self.episode_length or time_step.last()
        return StepResult(_flatten(time_step.observation), float(reward), False, truncated, {"success": 0.0})

    def render(self, width: int = 384, height: int = 384, camera_id: int = 0) -> np.ndarray:
        """RGB frame [height, width, 3] uint8 of the current state; camera 0 is each domain's default view."""
        return self._env.physics.render(height=height, width=width, camera_id=camera_id)

    def close(self) -> None:
        self._env.close()


def _flatten(observation: dict[str, Any]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in observation.values()])
