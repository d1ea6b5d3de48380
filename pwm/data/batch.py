"""The time-major batch that samplers produce and world-model / PWM updates consume."""

from __future__ import annotations

from typing import NamedTuple

import torch


class SequenceBatch(NamedTuple):
    """B windows of H+1 consecutive steps of one episode each, time-major.

    For a window starting at episode row s: ``obs`` holds obs_s .. obs_{s+H}; ``action[t]`` / ``reward[t]`` are
    the action taken at obs_{s+t} and the reward it earned (dataset rows s+1 .. s+H, since row k stores the
    transition *into* obs_k).
    """

    obs: torch.Tensor  # [H+1, B, O] float32
    action: torch.Tensor  # [H, B, A] float32
    reward: torch.Tensor  # [H, B] float32
    task: torch.Tensor | None = None  # [B] int64 task ids (multitask), else None
    terminated: torch.Tensor | None = None  # [H, B] float32 (1 where the step ended the episode), else None

    @property
    def horizon(self) -> int:
        return self.action.shape[0]

    @property
    def batch_size(self) -> int:
        return self.action.shape[1]

    def to(self, device: torch.device | str) -> SequenceBatch:
        return SequenceBatch(*(None if x is None else x.to(device, non_blocking=True) for x in self))
