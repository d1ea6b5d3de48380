"""PolyGRAD's actor and critic: MLPs with LayerNorm (eps 1e-3) and ELU. The actor is ``Normal(tanh(f(s)), sigma)``
with a state-independent ``sigma = exp(log_std) + min_std``: its mean is squashed, its samples are not (the env
clips them), which keeps ``grad_a log pi`` a plain Gaussian score for policy guidance."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal


def elu_mlp(in_dim: int, hidden: list[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.LayerNorm(width, eps=1e-3), nn.ELU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


class GaussianPolicy(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, hidden: list[int], init_std: float = 1.0,
                 min_std: float = 0.1) -> None:  # fmt: skip
        super().__init__()
        if init_std <= min_std:
            raise ValueError(f"init_std={init_std} must exceed min_std={min_std}")
        self.net = elu_mlp(obs_dim, hidden, action_dim)
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std - min_std)))
        self.min_std = min_std

    def forward(self, obs: torch.Tensor) -> Normal:
        mean = torch.tanh(self.net(obs))
        return Normal(mean, (self.log_std.exp() + self.min_std).expand_as(mean))


class Critic(nn.Module):
    def __init__(self, obs_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = elu_mlp(obs_dim, hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)
