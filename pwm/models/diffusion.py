"""Gaussian diffusion over trajectories (PolyGRAD, Rigter et al. 2023, arXiv 2312.08533): the noise schedule, the
x0-prediction training loss and the DDPM posterior a reverse step samples from.

Trajectories are ``x [B, h, D]`` with ``D = obs + reward + terminal`` per step; the actions ``a [B, h, A]`` are kept
outside ``x`` and enter the denoiser only as an input (scaled by ``sqrt(alpha_bar_t)``), because in PolyGRAD the
policy, not the denoiser, supplies their score. The first step's observation is the condition: it is imposed on
the noisy input and on the prediction (``condition``), so the model never spends capacity on it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def cosine_tau_alphas_cumprod(steps: int, tau: float = 1.0) -> torch.Tensor:
    """``alpha_bar_t`` for t = 0..steps-1 of the cosine schedule with exponent ``tau`` (Chen 2023, arXiv
    2301.10972): ``alpha_bar(u) = cos(pi u / 2) ** (2 tau)``, u = (t+1)/steps, through betas clipped to
    [0, 0.999]. ``tau < 1`` keeps the noise low until the last steps (PolyGRAD uses 0.1 on Hopper)."""
    if steps < 1 or tau <= 0:
        raise ValueError(f"diffusion steps must be >= 1 and tau > 0, got {steps} and {tau}")
    u = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    alpha_bar = torch.cos(u * math.pi / 2).clamp(min=0) ** (2 * tau)
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(0, 0.999)
    return torch.cumprod(1 - betas, 0)


def condition(x: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
    """``x`` with the first step's observation slots set to the condition ``s0 [B, O]``."""
    x = x.clone()
    x[:, 0, : s0.shape[-1]] = s0
    return x


class GaussianDiffusion(nn.Module):
    """Schedule buffers and the three operations PolyGRAD needs: noising, the training loss and the posterior."""

    def __init__(self, steps: int, tau: float = 1.0) -> None:
        super().__init__()
        self.steps = steps
        alpha_bar = cosine_tau_alphas_cumprod(steps, tau)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        betas = 1 - alpha_bar / alpha_bar_prev
        post_var = betas * (1 - alpha_bar_prev) / (1 - alpha_bar)
        buffers = {
            "alpha_bar": alpha_bar,
            "sqrt_alpha_bar": alpha_bar.sqrt(),
            "sqrt_one_minus_alpha_bar": (1 - alpha_bar).sqrt(),
            "post_log_var": post_var.clamp(min=1e-20).log(),
            "post_coef_x0": betas * alpha_bar_prev.sqrt() / (1 - alpha_bar),
            "post_coef_xt": (1 - alpha_bar_prev) * (1 - betas).sqrt() / (1 - alpha_bar),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.float(), persistent=False)

    @staticmethod
    def _at(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return values[t].view(-1, 1, 1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise``."""
        return self._at(self.sqrt_alpha_bar, t) * x0 + self._at(self.sqrt_one_minus_alpha_bar, t) * noise

    def action_input(self, actions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoiser's action input at step t: the (clean) actions scaled like the signal part of ``x_t``."""
        return self._at(self.sqrt_alpha_bar, t) * actions

    def predict_x0(self, model: nn.Module, x_t: torch.Tensor, actions: torch.Tensor, t: torch.Tensor,
                   s0: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The model's clean trajectory, with the condition re-imposed. ``actions`` is the current action sample,
        scaled here like in training."""
        return condition(model(x_t, self.action_input(actions, t), t), s0)

    def loss(self, model: nn.Module, x0: torch.Tensor, actions: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """Plain L2 between the model's x0 and the true one (every channel weighted alike), t uniform in
        [0, steps), the first observation clean in the input."""
        t = torch.randint(self.steps, (x0.shape[0],), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        s0 = x0[:, 0, : self._obs_slots(x0)]
        x_t = condition(self.q_sample(x0, t, noise), s0)
        return F.mse_loss(self.predict_x0(model, x_t, actions, t, s0), x0)

    @staticmethod
    def _obs_slots(x: torch.Tensor) -> int:
        return x.shape[-1] - 2  # [obs, reward, terminal]

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: int) -> tuple[torch.Tensor, float]:
        """Mean and standard deviation of q(x_{t-1} | x_t, x0) at integer step ``t`` (std 0 at t = 0)."""
        mean = self.post_coef_x0[t] * x0 + self.post_coef_xt[t] * x_t
        std = float(torch.exp(0.5 * self.post_log_var[t])) if t > 0 else 0.0
        return mean, std
