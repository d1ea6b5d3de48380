"""A2C with GAE on imagined trajectories (PolyGRAD's policy learner, arXiv 2312.08533): pure functions of a batch
``[B, h]`` of rewards, terminals and values."""

from __future__ import annotations

import torch


def gae(rewards: torch.Tensor, terminals: torch.Tensor, values: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Advantages and value targets for steps 0..h-2 of ``[B, h]`` tensors (step h-1 only bootstraps).

    ``delta_k = r_k + gamma (1 - d_k) V(s_{k+1}) - V(s_k)``, ``A_k = delta_k + gamma lam (1 - d_k) A_{k+1}``,
    target = A + V. ``terminals[k]`` marks that the step from ``s_k`` ended the episode.
    """
    cont = 1.0 - terminals.float()
    deltas = rewards[:, :-1] + gamma * cont[:, :-1] * values[:, 1:] - values[:, :-1]
    adv = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[:, 0])
    for k in range(deltas.shape[1] - 1, -1, -1):
        running = deltas[:, k] + gamma * lam * cont[:, k] * running
        adv[:, k] = running
    return adv, adv + values[:, :-1]


def alive_weights(terminals: torch.Tensor) -> torch.Tensor:
    """``w_k = prod_{j<k} (1 - d_j)`` for k = 0..h-2: steps after an imagined terminal carry no weight (the step
    that terminates still counts: its reward is real)."""
    cont = 1.0 - terminals[:, :-1].float()
    ones = torch.ones_like(cont[:, :1])
    return torch.cumprod(torch.cat([ones, cont[:, :-1]], dim=1), dim=1)


def actor_loss(log_prob: torch.Tensor, entropy: torch.Tensor, adv: torch.Tensor, weights: torch.Tensor,
               entropy_coef: float) -> torch.Tensor:  # fmt: skip
    """``mean[w (-log pi(a|s) A_hat - alpha H)]`` with A_hat the advantages normalised over the batch."""
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    return (weights * (-log_prob * adv.detach() - entropy_coef * entropy)).mean()


def critic_loss(values: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (0.5 * weights * (values - targets.detach()) ** 2).mean()
