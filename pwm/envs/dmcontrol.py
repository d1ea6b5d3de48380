"""DMControl tasks with TD-MPC2's conventions, so that rollouts match the official datasets and evaluations.

Conventions (TD-MPC2 ``envs/dmcontrol.py``): ``suite.load(domain, task, task_kwargs={"random": seed})``;
task names are ``<domain>-<task>`` with ``cup`` meaning ``ball_in_cup`` and the dashes of the task part becoming
underscores (``finger-turn-easy`` -> ``finger`` / ``turn_easy``); actions in [-1, 1] (dm_control's
``action_scale`` wrapper); action repeat 2 with the two rewards summed (each in [0, 1], so [0, 2] per agent
step); 500 agent steps per episode, which ends by time limit only (never ``terminated``); observations are the
flattened values of the observation dict in spec order, concatenated as float32.

TD-MPC2's 11 custom tasks (walker-walk-backwards ... pendulum-spin, ids 19-29 of mt30) are not part of dm_control
and are not implemented here yet.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from pwm.data.tasks import DMC_EPISODE_LENGTH, MT30

ACTION_REPEAT = 2
CUSTOM_TASKS: frozenset[str] = frozenset(MT30.names[19:])
_DOMAIN_ALIASES = {"cup": "ball_in_cup"}


class StepResult(NamedTuple):
    obs: np.ndarray  # [O] float32
    reward: float  # summed over the action repeat
    terminated: bool  # always False for DMControl
    truncated: bool  # True at the time limit
    info: dict | None = None  # e.g. {"success": 0.0}; Meta-World reports task success here


def split_task_name(name: str) -> tuple[str, str]:
    """``cartpole-balance-sparse`` -> (``cartpole``, ``balance_sparse``); ``cup-catch`` -> (``ball_in_cup``, ...)."""
    domain, sep, task = name.partition("-")
    if not sep or not task:
        raise ValueError(f"task name {name!r} is not of the form <domain>-<task>, e.g. 'walker-walk'")
    return _DOMAIN_ALIASES.get(domain, domain), task.replace("-", "_")


def _import_suite() -> Any:
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless; only rendering needs a GL backend
    try:
        from dm_control import suite
        from dm_control.suite.wrappers import action_scale
    except ImportError as e:
        raise ImportError(f'DMControl tasks need dm_control ({e}); install with: pip install -e ".[dmc]"') from e
    return suite, action_scale


class DMControlEnv:
    """One DMControl task; ``reset() -> obs``, ``step(action) -> StepResult`` with numpy float32 observations."""

    def __init__(self, name: str, seed: int = 0, episode_length: int = DMC_EPISODE_LENGTH) -> None:
        if name in CUSTOM_TASKS:
            raise ValueError(
                f"task {name!r} is one of TD-MPC2's custom DMControl tasks (mt30 ids 19-29), which are "
                "not implemented yet"
            )
        suite, action_scale = _import_suite()
        domain, task = split_task_name(name)
        if (domain, task) not in suite.ALL_TASKS:
            raise ValueError(f"unknown DMControl task {name!r} ({domain}/{task} is not in dm_control.suite)")
        env = suite.load(domain, task, task_kwargs={"random": seed})
        self._env = action_scale.Wrapper(env, minimum=-1.0, maximum=1.0)
        self.name = name
        self.episode_length = episode_length
        self.action_dim = int(self._env.action_spec().shape[0])
        self.obs_dim = int(sum(np.prod(s.shape, dtype=int) for s in self._env.observation_spec().values()))
        self._t = 0

    def reset(self) -> np.ndarray:
        self._t = 0
        return _flatten(self._env.reset().observation)

    def step(self, action: np.ndarray) -> StepResult:
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(self.action_dim), -1.0, 1.0)
        reward = 0.0
        for _ in range(ACTION_REPEAT):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
        self._t += 1
        truncated = self._t >= self.episode_length or time_step.last()
        return StepResult(_flatten(time_step.observation), float(reward), False, truncated, {"success": 0.0})

    def close(self) -> None:
        self._env.close()


def _flatten(observation: dict[str, Any]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in observation.values()])
