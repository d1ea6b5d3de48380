"""Pieces PWM and SHAC share: the sequential-minibatch critic fit, its gradient clipping and the linear LR decay."""

from __future__ import annotations

import torch
from torch import nn

from pwm.losses.actor import critic_loss
from pwm.models.actor_critic import CriticEnsemble


def fit_critic(
    critic: CriticEnsemble,
    optim: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    iterations: int,
    batches: int,
    grad_norm: float,
) -> float:
    """``iterations`` passes over the (input, target) pairs in ``batches`` sequential minibatches (no shuffling,
    as SHAC and PWM do); rows with non-finite inputs or targets are dropped. Returns the mean loss."""
    x, y = inputs.reshape(-1, inputs.shape[-1]), targets.reshape(-1)
    keep = torch.isfinite(y) & torch.isfinite(x).all(-1)
    x, y = x[keep], y[keep]
    size = max(x.shape[0] // batches, 1)
    losses = []
    for _ in range(iterations):
        for start in range(0, x.shape[0], size):
            loss = critic_loss(critic, x[start : start + size], y[start : start + size])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            clip_grads_finite(critic.parameters(), grad_norm)
            optim.step()
            losses.append(loss.detach())
    return float(torch.stack(losses).mean()) if losses else float("nan")


def clip_grads_finite(parameters, max_norm: float) -> torch.Tensor:
    """Clip to ``max_norm``; NaN/inf entries are zeroed first (the references' nan_to_num), which is only needed,
    and only paid for, when the norm is not finite."""
    params = [p for p in parameters if p.grad is not None]
    norm = nn.utils.clip_grad_norm_(params, max_norm)
    if not torch.isfinite(norm):
        for p in params:
            p.grad.nan_to_num_(0.0, 0.0, 0.0)
        norm = nn.utils.clip_grad_norm_(params, max_norm)
    return norm


def set_linear_lr(optims: list[tuple[torch.optim.Optimizer, float]], iteration: int, total: int, lr_min: float):
    """lr = lr0 + (lr_min - lr0) * iteration / total for each (optimizer, lr0)."""
    frac = min(iteration / max(total, 1), 1.0)
    for optim, lr0 in optims:
        for group in optim.param_groups:
            group["lr"] = lr0 + (lr_min - lr0) * frac


def actor_step(actor: nn.Module, optim: torch.optim.Optimizer, loss: torch.Tensor, max_norm: float, who: str) -> float:
    """Backward, clip, step; a non-finite gradient norm stops the run before it corrupts the actor."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(actor.parameters(), max_norm)
    if not torch.isfinite(norm):
        raise FloatingPointError(f"{who}: actor gradient norm is {norm.item()}")
    optim.step()
    return float(norm)
