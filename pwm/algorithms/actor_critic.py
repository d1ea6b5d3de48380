"""What PWM and SHAC share, written once: the LR schedule, the actor-loss scaling and step, the critic-target
choice and the sequential-minibatch critic fit with its gradient clipping."""

from __future__ import annotations

import torch
from torch import nn

from pwm.config import ActorCriticConfig
from pwm.losses.actor import critic_loss
from pwm.losses.returns import one_step_targets, td_lambda_targets
from pwm.models.actor_critic import CriticEnsemble
from pwm.models.normalizers import RunningMeanStd
from pwm.utils.precision import Precision


def apply_lr_schedule(cfg: ActorCriticConfig, iteration: int, optims: list[tuple[torch.optim.Optimizer, float]]):
    """``lr_schedule=linear``: lr = lr0 + (lr_min - lr0) * iteration / max_iterations for each (optimizer, lr0);
    ``constant`` leaves the rates alone."""
    if cfg.lr_schedule != "linear":
        return
    frac = min(iteration / max(cfg.max_iterations, 1), 1.0)
    for optim, lr0 in optims:
        for group in optim.param_groups:
            group["lr"] = lr0 + (cfg.lr_min - lr0) * frac


def scaled_actor_loss(per_sample: torch.Tensor, cfg: ActorCriticConfig, ret_rms: RunningMeanStd) -> torch.Tensor:
    """Mean of the per-sample negative returns, divided by their running std (``ret_rms``) or else by H."""
    if cfg.ret_rms:
        ret_rms.update(per_sample)
        return (per_sample / ret_rms.std().to(per_sample.dtype)).mean()
    return per_sample.mean() / cfg.horizon


def actor_step(actor: nn.Module, optim: torch.optim.Optimizer, loss: torch.Tensor, max_norm: float, who: str) -> float:
    """Backward, clip, step; a non-finite gradient norm stops the run before it corrupts the actor."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(actor.parameters(), max_norm)
    if not torch.isfinite(norm):
        raise FloatingPointError(f"{who}: actor gradient norm is {norm.item()}")
    optim.step()
    if not all(bool(torch.isfinite(p).all()) for p in actor.parameters()):
        raise FloatingPointError(f"{who}: the actor's parameters became NaN/inf in its step (learning rate too high?)")
    return float(norm)


def critic_targets(
    cfg: ActorCriticConfig, rewards: torch.Tensor, next_values: torch.Tensor, dones: torch.Tensor
) -> torch.Tensor:
    """``critic_targets=td_lambda`` (segments end where ``dones``) or ``one_step`` (r + γV)."""
    if cfg.critic_targets == "one_step":
        return one_step_targets(rewards, next_values, cfg.gamma)
    return td_lambda_targets(rewards, next_values, dones, cfg.gamma, cfg.lam)


def fit_critic(
    critic: CriticEnsemble, optim: torch.optim.Optimizer, inputs: torch.Tensor, targets: torch.Tensor,
    cfg: ActorCriticConfig, precision: Precision | None = None,
) -> float:  # fmt: skip
    """``critic_iterations`` passes over the (input, target) pairs in ``critic_batches`` sequential minibatches (no
    shuffling, as SHAC and PWM do); rows with non-finite inputs or targets are dropped. Returns the mean loss.
    Forward passes run under ``precision``'s autocast; the critic's output layer, the targets and the squared
    error stay fp32 (``HeadLinear``)."""
    precision = precision or Precision()
    x, y = inputs.reshape(-1, inputs.shape[-1]), targets.reshape(-1)
    keep = torch.isfinite(y) & torch.isfinite(x).all(-1)
    x, y = x[keep], y[keep]
    if precision.bf16:  # autocast would round each minibatch to bf16 for the first layer: once gives the same values
        x = x.to(torch.bfloat16)
    autocast = precision.autocast
    size = max(x.shape[0] // cfg.critic_batches, 1)
    losses = []
    for _ in range(cfg.critic_iterations):
        for start in range(0, x.shape[0], size):
            with autocast():
                loss = critic_loss(critic, x[start : start + size], y[start : start + size])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            clip_grads_finite(critic.parameters(), cfg.critic_grad_norm)
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
