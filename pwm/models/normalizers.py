"""Running statistics kept as buffers, so they are saved and restored with the run state."""

from __future__ import annotations

import torch
from torch import nn


class RunningScale(nn.Module):
    """TD-MPC2's value scale: a Polyak average of the 5th-95th percentile range of Q (at least 1).

    Dividing Q by it makes the policy-prior loss insensitive to the task's reward scale.
    """

    def __init__(self, tau: float = 0.01) -> None:
        super().__init__()
        self.tau = tau
        self.register_buffer("value", torch.ones(()))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        q = torch.quantile(x.detach().flatten().float(), torch.tensor([0.05, 0.95], device=x.device))
        self.value.lerp_(torch.clamp(q[1] - q[0], min=1.0), self.tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.value
