"""DreamerV2 / PreLAR loss terms as pure functions of tensors.

- ``kl_balanced``: KL(post || prior) between the RSSMs' categorical latents, with DreamerV2's balancing (the
  prior is pulled towards the posterior with weight ``balance``, the posterior towards the prior with
  ``1 - balance``) and optional free nats.
- ``image_nll``: negative log-likelihood of a unit-variance Normal without its constant, summed over pixels.
- ``gaussian_kl_to_standard``: KL(N(mean, std) || N(0, I)), the prior on PreLAR's latent actions.
- ``lambda_return``: TD(lambda) targets of imagined trajectories.
- ``consistency_loss``: PreLAR's action-state consistency ("rank") loss, ``sign`` as released (its gradient is
  zero almost everywhere: torch.sign's derivative is 0) or ``soft``, our differentiable variant.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def categorical_kl(lhs_logits: torch.Tensor, rhs_logits: torch.Tensor) -> torch.Tensor:
    """KL(lhs || rhs) summed over the groups and classes of [..., groups, classes] logits."""
    lhs_log = F.log_softmax(lhs_logits, -1)
    rhs_log = F.log_softmax(rhs_logits, -1)
    return (lhs_log.exp() * (lhs_log - rhs_log)).sum((-2, -1))


def kl_balanced(post: torch.Tensor, prior: torch.Tensor, balance: float = 0.8, free: float = 0.0) -> torch.Tensor:
    """DreamerV2's balanced KL (a scalar) between posterior and prior logits; ``free`` nats clip each side's mean."""
    lhs = categorical_kl(post.detach(), prior).mean()
    rhs = categorical_kl(post, prior.detach()).mean()
    if free > 0:
        lhs, rhs = lhs.clamp(min=free), rhs.clamp(min=free)
    return balance * lhs + (1 - balance) * rhs


def image_nll(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0.5 * sum of squared errors over C, H, W, averaged over the leading dims."""
    return 0.5 * (pred - target).pow(2).flatten(-3).sum(-1).mean()


def gaussian_kl_to_standard(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std^2) || N(0, 1)) summed over the last dim ([...] per sample)."""
    var = std.pow(2)
    return 0.5 * (var + mean.pow(2) - 1 - torch.log(var)).sum(-1)


def gaussian_kl(mean_a: torch.Tensor, std_a: torch.Tensor, mean_b: torch.Tensor, std_b: torch.Tensor) -> torch.Tensor:
    """KL(N_a || N_b) of diagonal Gaussians, summed over the last dim."""
    var_a, var_b = std_a.pow(2), std_b.pow(2)
    return 0.5 * (var_a / var_b + (mean_b - mean_a).pow(2) / var_b - 1 + torch.log(var_b / var_a)).sum(-1)


def lambda_return(reward: torch.Tensor, value: torch.Tensor, discount: float, lam: float) -> torch.Tensor:
    """Targets R_0..R_{H-1} for ``reward[t]`` earned on entering state t+1 ([H, N]) and ``value`` of states
    0..H ([H+1, N]): R_t = r_t + discount * ((1 - lam) * v_{t+1} + lam * R_{t+1}), R_H = v_H."""
    out = []
    last = value[-1]
    for t in reversed(range(reward.shape[0])):
        last = reward[t] + discount * ((1 - lam) * value[t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1])


def _pairwise_sign_target(d_state: torch.Tensor) -> torch.Tensor:
    return torch.sign(d_state[:, None] - d_state[None, :])


def consistency_loss(d_state: torch.Tensor, d_action: torch.Tensor, kind: str, temperature: float = 1.0):
    """PreLAR's action-state consistency loss over N (batch x time) pairs of distances.

    ``d_state[i]``: how far the prior moves when sample i's latent action is swapped for another sample's (taken
    as a fixed target); ``d_action[i]``: how far the two latent-action distributions are. Both are turned into
    pairwise orderings and compared with a mean squared error. ``sign`` orders ``d_action`` with torch.sign as
    the released code does, which has zero gradient; ``soft`` (ours) orders it with tanh(diff / temperature),
    whose gradient pushes larger action distances where the state distances are larger.
    """
    target = _pairwise_sign_target(d_state.detach())
    diff = d_action[:, None] - d_action[None, :]
    if kind == "sign":
        pred = torch.sign(diff)
    elif kind == "soft":
        pred = torch.tanh(diff / temperature)
    else:
        raise ValueError(f"consistency loss {kind!r}; choose none, sign or soft")
    return F.mse_loss(pred, target)
