"""The evaluation-env contract and TD-MPC2's multitask view of an env (padded observations, sliced actions)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from pwm.data.tasks import TaskSet
from pwm.envs.suites.dmcontrol import StepResult


class Env(Protocol):
    """What every evaluation env offers (``DMControlEnv``, ``MetaWorldEnv``, ``MultitaskEnv``).

    ``reset`` returns a float32 observation of ``obs_dim``; ``step`` takes an action of ``action_dim`` in [-1, 1]
    and returns a ``StepResult`` whose ``info`` holds ``success`` (float); an episode is truncated after
    ``episode_length`` agent steps.
    """

    name: str
    obs_dim: int
    action_dim: int
    episode_length: int

    def reset(self) -> np.ndarray: ...

    def step(self, action: np.ndarray) -> StepResult: ...

    def render(self, width: int = ..., height: int = ...) -> np.ndarray: ...

    def close(self) -> None: ...


class MultitaskEnv:
    """Wraps a single-task env so it speaks the padded dims of its task set (what multitask models see).

    ``reset``/``step`` return observations zero-padded to ``task_set.obs_dim``; ``step`` takes actions of
    ``task_set.action_dim`` and passes only the first ``env.action_dim`` entries to the environment (the
    multitask policy's extra action entries are masked out of training, so their values carry no meaning).
    """

    def __init__(self, env: Env, task_set: TaskSet, task_id: int) -> None:
        if env.obs_dim > task_set.obs_dim or env.action_dim > task_set.action_dim:
            raise ValueError(
                f"{task_set.name} pads to obs {task_set.obs_dim} / action {task_set.action_dim}, but the env has "
                f"obs {env.obs_dim} / action {env.action_dim}"
            )
        self.env, self.task_set, self.task_id = env, task_set, task_id
        self.name = env.name
        self.obs_dim, self.action_dim = task_set.obs_dim, task_set.action_dim
        self.episode_length = env.episode_length

    def _pad(self, obs: np.ndarray) -> np.ndarray:
        out = np.zeros(self.obs_dim, dtype=np.float32)
        out[: obs.shape[0]] = obs
        return out

    def reset(self) -> np.ndarray:
        return self._pad(self.env.reset())

    def step(self, action: np.ndarray) -> StepResult:
        action = np.asarray(action).ravel()
        if action.shape != (self.action_dim,):
            raise ValueError(
                f"{self.name} in {self.task_set.name} takes actions of {self.action_dim} entries, got {action.shape}"
            )
        result = self.env.step(action[: self.env.action_dim])
        return result._replace(obs=self._pad(result.obs))

    def render(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.env.render(*args, **kwargs)

    def close(self) -> None:
        self.env.close()
