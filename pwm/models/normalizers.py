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


class RunningMeanStd(nn.Module):
    """Mean and variance of a stream of batches (parallel Welford), kept as buffers for checkpoints."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double().reshape(-1, *self.mean.shape)
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.mean += delta * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def std(self, epsilon: float = 1e-5) -> torch.Tensor:
        return torch.sqrt(self.var + epsilon)


def clip_normalized(x: torch.Tensor, clip: float | None) -> torch.Tensor:
    """Clip normalised values to [-clip, clip] (``None``: unchanged). Clipped entries pass no gradient."""
    return x if clip is None else x.clamp(-clip, clip)
