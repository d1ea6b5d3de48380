"""The per-dimension Gaussian normaliser PolyGRAD fits on its replay buffer (refitted after every real episode):
``(v - mean) / (std + 1e-6)`` for the trajectory channels [obs, reward, terminal] and, separately, for actions.
Kept as buffers so a run state restores it."""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-6


class TrajectoryNormalizer(nn.Module):
    def __init__(self, x_dim: int, action_dim: int) -> None:
        super().__init__()
        self.register_buffer("x_mean", torch.zeros(x_dim))
        self.register_buffer("x_std", torch.ones(x_dim))
        self.register_buffer("a_mean", torch.zeros(action_dim))
        self.register_buffer("a_std", torch.ones(action_dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, actions: torch.Tensor) -> None:
        """Statistics of ``x [N, D]`` and ``actions [N, A]`` (every stored step)."""
        self.x_mean.copy_(x.mean(0))
        self.x_std.copy_(x.std(0, unbiased=False))
        self.a_mean.copy_(actions.mean(0))
        self.a_std.copy_(actions.std(0, unbiased=False))

    def norm_x(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.x_mean) / (self.x_std + EPS)

    def unnorm_x(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.x_std + EPS) + self.x_mean

    def norm_obs(self, obs: torch.Tensor) -> torch.Tensor:
        o = obs.shape[-1]
        return (obs - self.x_mean[:o]) / (self.x_std[:o] + EPS)

    def unnorm_obs(self, obs: torch.Tensor) -> torch.Tensor:
        o = obs.shape[-1]
        return obs * (self.x_std[:o] + EPS) + self.x_mean[:o]

    def norm_a(self, a: torch.Tensor) -> torch.Tensor:
        return (a - self.a_mean) / (self.a_std + EPS)

    def unnorm_a(self, a: torch.Tensor) -> torch.Tensor:
        return a * (self.a_std + EPS) + self.a_mean
