"""PWM's first-order actor objective: returns of H imagined steps through a (frozen) world model."""

from __future__ import annotations

from typing import NamedTuple

import torch

from pwm.config import PWMConfig
from pwm.models.actor_critic import CriticEnsemble, StochasticActor
from pwm.models.world_model import WorldModel


class ImaginedRollout(NamedTuple):
    """Per-sample actor loss and the detached buffers the critic is fitted on."""

    loss: torch.Tensor  # [B] negative discounted return incl. bootstrap (differentiable w.r.t. the actor)
    latents: torch.Tensor  # [H, B, L] z_t, detached
    rewards: torch.Tensor  # [H, B] predicted r_t, detached
    next_values: torch.Tensor  # [H, B] min-ensemble V(z_{t+1}) under the pre-update critic


def imagined_actor_loss(
    wm: WorldModel, actor: StochasticActor, critic: CriticEnsemble, z: torch.Tensor, task, cfg: PWMConfig
) -> ImaginedRollout:
    """Roll ``z [B, L]`` forward H steps with a_t = tanh(π(sg(z_t))).

    Gradients reach the actor only through the actions' effect on the world model's dynamics and rewards and on
    the bootstrapped critic value. The policy's own input is a stop-gradient (PWM's ``detach=True``) unless
    ``cfg.detach_actor_input`` is off. Values at intermediate steps are only critic targets: they are computed
    without a graph, in one call over the stacked latents after the rollout (one GEMM per layer instead of H-1).
    """
    horizon, gamma = cfg.horizon, cfg.gamma
    latents, rewards = [], []
    ret = torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)
    for t in range(horizon):
        latents.append(z.detach())
        a = torch.tanh(actor(z.detach() if cfg.detach_actor_input else z))
        r = wm.decode(wm.reward(z, a, task), cfg.reward_space).nan_to_num(0.0)
        z = wm.next(z, a, task)
        ret = ret + gamma**t * r
        rewards.append(r.detach())
    v_final = critic.bootstrap(z)  # gradient to z (and so the actor), none to the critic
    stacked = torch.stack(latents)
    with torch.no_grad():  # V(z_{t+1}) for t < H-1: the latents of steps 1..H-1
        next_values = torch.cat([critic.min(stacked[1:]), v_final.detach().unsqueeze(0)])
    power = horizon if cfg.terminal_bootstrap == "gamma_h" else horizon + 1
    loss = -(ret + gamma**power * v_final)
    return ImaginedRollout(loss, stacked, torch.stack(rewards), next_values)


def critic_loss(critic: CriticEnsemble, latents: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error of every ensemble member against the same targets."""
    return (critic(latents) - targets).pow(2).mean()
