"""Policy-guided trajectory sampling (PolyGRAD, arXiv 2312.08533): the reverse diffusion of a trajectory's states,
rewards and terminals, in which the actions are moved by the policy's score ``grad_a log pi(a | s)`` instead of a
learned action denoiser, so that the imagined actions follow the current policy on the imagined states.

Each reverse step t = T-1 .. 0 (all in normalised space, ``x_T ~ N(0, I)`` with the start state imposed, actions
``a_T ~ N(0, I)``):

1. ``x0_hat = D(x_t, sqrt(alpha_bar_t) a_t, t)`` with the start state re-imposed; the DDPM posterior's mean and std;
2. for ``t <= clip_below_t`` the posterior mean moves at most ``clip_state_change`` from ``x_t`` per dimension;
3. the policy is scored on the predicted clean states (``x0_hat``'s observations, unnormalised);
4. for t > 0 the actions (unnormalised) are clamped to ``pi``'s mean +- ``clip_std`` stds and then guided:
   ``grad``: one step ``a += g grad_a log pi(a | s)``, renormalised and re-noised with the *state* posterior's std;
   ``sample``: replaced by a policy sample; ``none``: left as they are (not clamped either);
   ``x_{t-1} = mean + std eps``;
5. at t = 0 the actions are only clamped (every guidance kind) and the posterior mean (no noise) is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Normal

from pwm.models.diffusion import GaussianDiffusion, condition
from pwm.models.trajectory_normalizer import TrajectoryNormalizer

PolicyDist = Callable[[torch.Tensor], Normal]
"""Observations [..., O] (unnormalised) -> the policy's action distribution [..., A]."""
GUIDANCE = ("grad", "sample", "none")


@dataclass(frozen=True)
class GuidanceSettings:
    kind: str = "grad"
    """``grad`` (PolyGRAD), ``sample`` (replace actions by policy samples) or ``none`` (ablations)."""
    scale: float = 0.005
    """g of the grad step (auto-tuned by the agent)."""
    clip_std: float | None = 3.0
    """Clamp actions to the policy mean +- this many stds before guiding (None: no clamp)."""
    clip_state_change: float = 0.25
    clip_below_t: int = 10
    action_noise: float = 1.0
    """Scale of the re-noising of the actions, relative to the state posterior's std."""


@dataclass
class Imagined:
    """An imagined batch, unnormalised: ``obs [B, h, O]``, ``actions [B, h, A]``, ``rewards``/``terminals [B, h]``."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    terminals: torch.Tensor


def guide_actions(actions: torch.Tensor, obs: torch.Tensor, policy: PolicyDist, s: GuidanceSettings,
                  final: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """Step 4 (or 5 with ``final``) on unnormalised ``actions`` scored against ``obs``."""
    if s.kind == "none" and not final:
        return actions
    with torch.no_grad():
        dist = policy(obs)
    mean, std = dist.loc, dist.scale
    if s.clip_std is not None:
        actions = torch.maximum(torch.minimum(actions, mean + s.clip_std * std), mean - s.clip_std * std)
    if final:
        return actions
    if s.kind == "sample":
        return mean + std * torch.randn(mean.shape, generator=generator).to(mean.device)
    with torch.enable_grad():  # the score of the distribution at these states (one policy evaluation per step)
        a = actions.detach().requires_grad_(True)
        score = torch.autograd.grad(Normal(mean, std).log_prob(a).sum(), a)[0]
    return actions + s.scale * score


@torch.no_grad()
def policy_guided_sample(
    diffusion: GaussianDiffusion, denoiser: nn.Module, norm: TrajectoryNormalizer, policy: PolicyDist,
    s0: torch.Tensor, horizon: int, s: GuidanceSettings, generator: torch.Generator | None = None,
    fixed_actions: torch.Tensor | None = None,
) -> Imagined:  # fmt: skip
    """Imagine ``horizon`` steps from start observations ``s0 [B, O]`` (unnormalised). ``fixed_actions [B, h, A]``
    (unnormalised) conditions on given actions instead (the autoregressive baseline: no guidance, no noise)."""
    b, o, a_dim = s0.shape[0], s0.shape[-1], norm.a_mean.shape[0]
    dev = s0.device
    s0n = norm.norm_obs(s0)

    def noise(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(dev)

    x = condition(noise(b, horizon, norm.x_mean.shape[0]), s0n)
    a = norm.norm_a(fixed_actions) if fixed_actions is not None else noise(b, horizon, a_dim)
    for t in range(diffusion.steps - 1, -1, -1):
        tt = torch.full((b,), t, device=dev, dtype=torch.long)
        x0 = diffusion.predict_x0(denoiser, x, a, tt, s0n)  # 1
        mean, std = diffusion.posterior(x0, x, t)
        if t <= s.clip_below_t:  # 2
            mean = x + (mean - x).clamp(-s.clip_state_change, s.clip_state_change)
        if fixed_actions is None and (s.kind != "none" or t == 0):
            guide_obs = norm.unnorm_obs(x0[..., :o])  # 3
            a_u = guide_actions(norm.unnorm_a(a), guide_obs, policy, s, final=t == 0, generator=generator)
            a = norm.norm_a(a_u)  # 4, 5: only the grad step's actions are re-noised (a sample already is one)
            if s.kind == "grad" and t > 0:
                a = a + s.action_noise * std * noise(*a.shape)
        x = condition(mean + std * noise(*mean.shape), s0n) if t > 0 else condition(mean, s0n)
    x = norm.unnorm_x(x)
    return Imagined(x[..., :o], norm.unnorm_a(a), x[..., o], x[..., o + 1] > 0.5)
