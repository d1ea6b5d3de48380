"""TD-MPC2 world-model losses (docs/tdmpc2_reference.md, "Losses") as functions of a model and a batch.

Each returns ``(loss, metrics)``; optimiser steps, clipping and target updates belong to the algorithm.
"""

from __future__ import annotations

import torch

from pwm.config import TDMPC2Config
from pwm.data.batch import SequenceBatch
from pwm.models.normalizers import RunningScale
from pwm.models.world_model import WorldModel
from pwm.utils.math import soft_ce


def temporal_weights(rho: float, steps: int, like: torch.Tensor) -> torch.Tensor:
    return rho ** torch.arange(steps, device=like.device, dtype=like.dtype)


@torch.no_grad()
def td_targets(
    model: WorldModel, next_z: torch.Tensor, reward: torch.Tensor, task, discount: torch.Tensor, not_done
) -> torch.Tensor:
    """r_t + γ (1 - terminated_t) min-of-two target Q(z'_t, a'), a' ~ π(z'_t); all shapes ``[H, B]``."""
    action, _ = model.pi(next_z, task)
    return reward + discount * not_done * model.Q(next_z, action, task, "min", target=True)


def world_model_loss(
    model: WorldModel, batch: SequenceBatch, next_z: torch.Tensor, td: torch.Tensor, cfg: TDMPC2Config
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Consistency + two-hot reward + two-hot value losses over a latent rollout of H predicted steps.

    Returns the weighted total, unweighted terms as metrics, and the latents ``zs [H+1, B, L]`` (for the
    policy-prior update). Latents after step 0 are predicted, so reward/value gradients reach the dynamics.
    """
    horizon, task = batch.horizon, batch.task
    weights = temporal_weights(cfg.rho, horizon, next_z)
    z = model.encode(batch.obs[0], task)
    zs = [z]
    for t in range(horizon):
        z = model.next(z, batch.action[t], task)
        zs.append(z)
    zs_t = torch.stack(zs)
    consistency = ((zs_t[1:] - next_z).pow(2).mean(dim=(1, 2)) * weights).mean()
    za = model._za(zs_t[:-1], batch.action, task)
    reward_ce = soft_ce(model._reward(za), batch.reward, model.support).mean(1)
    value_ce = soft_ce(model._Qs(za), td.unsqueeze(0), model.support).mean(dim=(0, 2))
    reward_loss = (reward_ce * weights).mean()
    value_loss = (value_ce * weights).mean()
    total = cfg.consistency_coef * consistency + cfg.reward_coef * reward_loss + cfg.value_coef * value_loss
    metrics = {"consistency_loss": consistency, "reward_loss": reward_loss, "value_loss": value_loss, "loss": total}
    return total, metrics, zs_t


def policy_prior_loss(
    model: WorldModel, zs: torch.Tensor, task, scale: RunningScale, cfg: TDMPC2Config
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Maximise scaled Q of the prior's actions (Q parameters frozen) with a small entropy bonus."""
    action, info = model.pi(zs, task)
    q = model.Q(zs, action, task, "avg", detach=True)
    scale.update(q[0])
    weights = temporal_weights(cfg.rho, zs.shape[0], q)
    loss = ((cfg.entropy_coef * info["log_prob"] - scale(q)).mean(1) * weights).mean()
    return loss, {"pi_loss": loss, "pi_scale": scale.value, "pi_log_std": info["log_std"].mean()}


def scalar_world_model_loss(
    model: WorldModel,
    obs: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    gamma: float,
    consistency_coef: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PWM's single-task world-model loss (docs/pwm_reference.md, "Single-task (dflex): trained online next to
    the policy"): γ^t-weighted latent consistency plus the squared error of a scalar reward head, summed over the
    H steps and divided by H. ``obs [H+1, B, O]``, ``action [H, B, A]``, ``reward [H, B]`` (already normalised);
    steps after an episode's end must be masked out by the caller. PWM weighs the two terms 1:1;
    ``consistency_coef`` > 1 is TD-MPC2's choice (20)."""
    horizon = action.shape[0]
    weights = temporal_weights(gamma, horizon, reward)
    with torch.no_grad():
        targets = model.encode(obs[1:])
    z = model.encode(obs[0])
    dynamics, rewards = [], []
    for t in range(horizon):
        rewards.append(model.decode(model.reward(z, action[t])))
        z = model.next(z, action[t])
        dynamics.append(z)
    consistency = ((torch.stack(dynamics) - targets).pow(2).mean(dim=(1, 2)) * weights).sum()
    reward_loss = ((torch.stack(rewards) - reward).pow(2).mean(1) * weights).sum()
    total = (consistency_coef * consistency + reward_loss) / horizon
    return total, {"consistency_loss": consistency / horizon, "reward_loss": reward_loss / horizon, "loss": total}
