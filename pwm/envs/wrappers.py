"""Multitask conventions of TD-MPC2: observations zero-padded to the task set's size, actions sliced to the task."""

from __future__ import annotations

import numpy as np

from pwm.data.tasks import TaskSet
from pwm.envs.dmcontrol import StepResult


class MultitaskEnv:
    """Wraps a single-task env so it speaks the padded dims of its task set (what multitask models see).

    ``reset``/``step`` return observations zero-padded to ``task_set.obs_dim``; ``step`` takes actions of
    ``task_set.action_dim`` and passes only the first ``env.action_dim`` entries to the environment.
    """

    def __init__(self, env, task_set: TaskSet, task_id: int) -> None:
        if env.obs_dim > task_set.obs_dim or env.action_dim > task_set.action_dim:
            raise ValueError(
                f"{task_set.name} pads to obs {task_set.obs_dim} / action {task_set.action_dim}, but the env has "
                f"obs {env.obs_dim} / action {env.action_dim}"
            )
        self.env, self.task_set, self.task_id = env, task_set, task_id
        self.obs_dim, self.action_dim = task_set.obs_dim, task_set.action_dim
        self.episode_length = env.episode_length

    def _pad(self, obs: np.ndarray) -> np.ndarray:
        out = np.zeros(self.obs_dim, dtype=np.float32)
        out[: obs.shape[0]] = obs
        return out

    def reset(self) -> np.ndarray:
        return self._pad(self.env.reset())

    def step(self, action: np.ndarray) -> StepResult:
        result = self.env.step(np.asarray(action)[: self.env.action_dim])
        return result._replace(obs=self._pad(result.obs))

    def close(self) -> None:
        self.env.close()
