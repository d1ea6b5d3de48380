"""The contract every algorithm implements, so that the training loop and the checkpoints treat them alike.

An algorithm owns its networks, optimisers, normalisers and schedules, and nothing else:

- ``act(obs, deterministic)`` -> actions in [-1, 1] (evaluation, data collection);
- ``update(data)`` -> a flat dict of float metrics: one training step on ``data``, which is a batch for the
  batch-driven algorithms (TD-MPC2's world-model update: a :class:`~pwm.data.batch.SequenceBatch`; multitask PWM:
  start observations) and an :class:`EnvData` for the env-driving ones (SHAC, single-task PWM), which step the
  training envs themselves;
- ``state_dict()`` / ``load_state_dict()``: everything that resumes it exactly, written once here from the
  attribute names in ``state_keys``.

The runners in ``pwm.training`` build an algorithm and its data source and hand the loop one step function.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from pwm.data.buffer import ReplayBuffer
from pwm.envs.sim.base import BatchedEnv, EnvStep

StepHook = Callable[[torch.Tensor, EnvStep], None]
"""Called with (action, step result) after every real env step (episode recording)."""


@dataclass
class EnvData:
    """What an env-driving algorithm's ``update`` steps: the training envs (continuing from their current state),
    a per-step hook, and for model-based ones the replay buffer their model trains on."""

    env: BatchedEnv
    on_step: StepHook | None = None
    buffer: ReplayBuffer | None = None


class Algorithm(ABC):
    state_keys: ClassVar[tuple[str, ...]] = ()
    """Attributes saved by :meth:`state_dict`: objects with a ``state_dict`` (modules, optimisers, normalisers)
    are saved through it, other values (counters, flags) as they are; ``None`` is saved as ``None``."""
    state_aliases: ClassVar[dict[str, str]] = {}
    """Checkpoint key -> attribute name, where they differ."""

    @abstractmethod
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions in [-1, 1] for observations ``[B, O]``."""

    @abstractmethod
    def update(self, data: Any) -> dict[str, float]:
        """One training step; returns detached float metrics named ``<part>/<metric>``."""

    def _attr(self, key: str) -> str:
        return self.state_aliases.get(key, key)

    def state_dict(self) -> dict:
        out = {}
        for key in self.state_keys:
            value = getattr(self, self._attr(key))
            out[key] = value.state_dict() if hasattr(value, "state_dict") else value
        return out

    def load_state_dict(self, state: dict) -> None:
        for key in self.state_keys:
            attr = self._attr(key)
            current = getattr(self, attr)
            if current is None and state.get(key) is None:
                continue  # an optional part this configuration does not have
            if hasattr(current, "load_state_dict"):
                current.load_state_dict(state[key])
            else:
                setattr(self, attr, state[key])
