"""Gradient variance and ESNR of a policy's return gradient against the rollout horizon (PWM's second
pedagogical experiment, Georgiev et al. 2024, arXiv:2407.02466; details in docs/pedagogy.md).

For each horizon h and each of N samples, a stochastic policy acts for h steps from one fixed start, either in
the differentiable simulator or in a world model's latent space, and we record the gradient g of the h-step
loss (minus the summed reward) with respect to the policy's parameters. Over the N samples, per parameter p:

- variance: mean_p Var_n[g_np] (unbiased);
- ESNR: mean_p ( E_n[g_np]² / (Var_n[g_np] + 1e-9) ), the mean of per-parameter ratios, as the reference computes it.

The N samples run as one batch: each sample gets its own copy of the policy parameters (:func:`replicate`), so
one backward pass gives all N per-sample gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from pwm.envs.sim.base import BatchedEnv
from pwm.models.layers import NormedLinear, init_weights, mlp
from pwm.models.world_model import WorldModel
from pwm.pedagogy.esnr_models import scaled_reward

ESNR_EPS = 1e-9
Params = dict[str, torch.Tensor]
Rollout = Callable[[int, Params], torch.Tensor]
"""(horizon, per-sample parameters) -> per-sample loss ``[N]``."""


def gradient_stats(grads: torch.Tensor) -> tuple[float, float]:
    """(variance, ESNR) of per-sample gradients ``[N, P]`` (formulas in the module docstring)."""
    g = grads.double()
    var = g.var(dim=0, unbiased=True)
    esnr = g.mean(dim=0).pow(2) / (var + ESNR_EPS)
    return float(var.mean()), float(esnr.mean())


def replicate(module: nn.Module, n: int) -> Params:
    """``n`` independent leaf copies of ``module``'s parameters, stacked on a new leading axis."""
    return {
        name: p.detach().unsqueeze(0).repeat(n, *([1] * p.dim())).requires_grad_()
        for name, p in module.named_parameters()
    }


def per_sample_gradients(rollout: Rollout, template: nn.Module, samples: int, horizon: int) -> torch.Tensor:
    """``[samples, P]``: the gradient of each sample's loss with respect to its own copy of ``template``'s
    parameters. Parameters that the loss does not reach get zero gradients."""
    params = replicate(template, samples)
    loss = rollout(horizon, params)
    if loss.shape != (samples,):
        raise ValueError(f"rollout must return one loss per sample, shape ({samples},), got {tuple(loss.shape)}")
    if not loss.requires_grad:  # e.g. one simulator step: its reward is r(s_0), which no action changes
        return loss.new_zeros(samples, sum(p[0].numel() for p in params.values()))
    grads = torch.autograd.grad(loss.sum(), list(params.values()), allow_unused=True, materialize_grads=True)
    return torch.cat([g.reshape(samples, -1) for g in grads], dim=1)


@dataclass
class Curve:
    name: str
    horizons: list[int] = field(default_factory=list)
    variance: list[float] = field(default_factory=list)
    esnr: list[float] = field(default_factory=list)


def measure(name: str, rollout: Rollout, template: nn.Module, horizons: Sequence[int], samples: int, seed: int = 0):
    """The variance and ESNR curve of ``rollout`` over ``horizons``; the noise of horizon h is seeded by
    ``(seed, h)``, so a curve repeats exactly and the curves of different rollouts share their noise draws."""
    curve = Curve(name)
    for h in horizons:
        torch.manual_seed(seed * 100_003 + h)
        var, esnr = gradient_stats(per_sample_gradients(rollout, template, samples, h))
        curve.horizons.append(h)
        curve.variance.append(var)
        curve.esnr.append(esnr)
    return curve


# ---- the policy ------------------------------------------------------------------------------------------------
class Policy:
    """TD-MPC2's policy prior (an ``mlp`` head on the latent and its tanh-squashed Gaussian), evaluated with
    per-sample parameters. As in the reference, it is re-initialised (TD-MPC2 init after seeding) rather than
    trained, and it acts on detached latents, so gradients reach its parameters only through the actions."""

    def __init__(self, latent_dim: int, hidden: int, action_dim: int, log_std: tuple[float, float], seed: int = 0):
        torch.manual_seed(seed)
        self.head = mlp(latent_dim, [hidden, hidden], 2 * action_dim)
        self.head.apply(init_weights)
        self.log_std_min, self.log_std_max = log_std

    @classmethod
    def for_world_model(cls, model: WorldModel, seed: int = 0) -> Policy:
        c = model.cfg
        return cls(c.latent_dim, c.mlp_dim, c.action_dim, (c.log_std_min, c.log_std_max), seed)

    def __call__(self, z: torch.Tensor, params: Params) -> torch.Tensor:
        """A reparameterised action sample for latents ``z [N, L]`` with parameters ``params`` (``[N, ...]``)."""
        mean, x = batched_mlp(self.head, params, z).chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(x) + 1)
        return torch.tanh(mean + torch.randn_like(mean) * log_std.exp())


def batched_mlp(seq: nn.Sequential, params: Params, x: torch.Tensor) -> torch.Tensor:
    """``seq`` (NormedLinear layers and a final Linear, as :func:`pwm.models.layers.mlp` builds) applied to
    ``x [N, in]`` with sample n using ``params[k][n]``."""
    h = x.unsqueeze(1)
    for i, layer in enumerate(seq):
        w, b = params[f"{i}.weight"], params[f"{i}.bias"]
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if isinstance(layer, NormedLinear):
            if layer.dropout is not None:
                raise ValueError("batched_mlp does not apply dropout")
            gain, bias = params[f"{i}.ln.weight"].unsqueeze(1), params[f"{i}.ln.bias"].unsqueeze(1)
            h = layer.act(torch.addcmul(bias, F.layer_norm(h, h.shape[-1:]), gain))
        elif not isinstance(layer, nn.Linear):
            raise TypeError(f"batched_mlp handles NormedLinear and Linear layers, got {type(layer).__name__}")
    return h.squeeze(1)


# ---- the two rollouts --------------------------------------------------------------------------------------------
def simulator_rollout(env: BatchedEnv, encoder: Callable[[torch.Tensor], torch.Tensor], policy: Policy) -> Rollout:
    """h steps of the differentiable simulator from its (deterministic) reset; loss = -Σ r' (rescaled reward).

    The encoder only turns observations into the policy's input (it sees detached observations)."""

    def rollout(horizon: int, params: Params) -> torch.Tensor:
        obs = env.reset()
        loss = obs.new_zeros(env.num_envs)
        for _ in range(horizon):
            with torch.no_grad():
                z = encoder(obs)
            step = env.step(policy(z, params))
            loss = loss - scaled_reward(step.reward)
            obs = step.obs
        return loss

    return rollout


def model_rollout(model: WorldModel, policy: Policy, obs0: torch.Tensor) -> Rollout:
    """h latent steps of ``model`` from ``encode(obs0)``; loss = -Σ R(z_t, a_t), gradients through the dynamics."""
    model.requires_grad_(False)

    def rollout(horizon: int, params: Params) -> torch.Tensor:
        z = model.encode(obs0)
        loss = obs0.new_zeros(obs0.shape[0])
        for _ in range(horizon):
            a = policy(z.detach(), params)
            loss = loss - model.decode(model.reward(z, a))
            z = model.next(z, a)
        return loss

    return rollout


def plot(curves: Sequence[Curve], path) -> object:
    """Two panels against H, both log-scale: gradient variance and ESNR (zeros are not drawn on a log axis)."""
    from pathlib import Path

    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for c in curves:
        left.plot(c.horizons, c.variance, label=c.name)
        right.plot(c.horizons, c.esnr, label=c.name)
    left.set(xlabel="H (rollout steps)", ylabel="Var[∇J(θ)] (mean over params)", yscale="log")
    right.set(xlabel="H (rollout steps)", ylabel="ESNR(∇J(θ))", yscale="log")
    left.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path


def format_curves(curves: Sequence[Curve], horizons: Sequence[int]) -> str:
    """A table of variance and ESNR at the given horizons, one row per curve."""
    head = f"{'curve':<20}" + "".join(f" {'var H=' + str(h):>11}" for h in horizons)
    head += "".join(f" {'ESNR H=' + str(h):>11}" for h in horizons)
    lines = [head]
    for c in curves:
        at = {h: i for i, h in enumerate(c.horizons)}
        cells = [f" {c.variance[at[h]]:11.3e}" for h in horizons] + [f" {c.esnr[at[h]]:11.3e}" for h in horizons]
        lines.append(f"{c.name:<20}" + "".join(cells))
    return "\n".join(lines)
