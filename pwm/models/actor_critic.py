"""PWM's actor and critic ensemble, acting on world-model latents (docs/pwm_reference.md, "Networks")."""

from __future__ import annotations

import torch
from torch import nn

from pwm.models.activations import Activation
from pwm.models.layers import EnsembleMLP, HeadLinear
from pwm.utils.precision import fp32


class StochasticActor(nn.Module):
    """Gaussian policy with a state-independent log-std; tanh squashing is applied by the algorithm.

    Hidden layers are Linear -> Mish -> LayerNorm, as in PWM (``activation="elu"``: ELU, as SHAC's original). The
    log-std has a floor (PWM: -1.427, σ ≥ 0.24) enforced on the parameter itself, so an update can never push it
    below the floor where its gradient dies.
    """

    def __init__(
        self, in_dim: int, action_dim: int, hidden: list[int], init_logstd: float, min_logstd: float,
        activation: str = "mish",
    ) -> None:  # fmt: skip
        super().__init__()
        dims = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for i in range(len(hidden)):
            layers += [nn.Linear(dims[i], dims[i + 1]), Activation(activation), nn.LayerNorm(dims[i + 1])]
        layers.append(HeadLinear(dims[-1], action_dim))  # fp32 under bf16 autocast (see HeadLinear)
        self.mu = nn.Sequential(*layers)
        self.logstd = nn.Parameter(torch.full((action_dim,), float(init_logstd)))
        self.min_logstd = min_logstd

    def forward(self, z: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Pre-tanh action: the mean, or a reparameterised sample."""
        mu = self.mu(z)
        if deterministic:
            return mu
        with torch.no_grad():
            self.logstd.clamp_(min=self.min_logstd)
        return mu + torch.randn_like(mu) * self.logstd.exp()


class CriticEnsemble(nn.Module):
    """``members`` value functions V(z) (Linear -> Mish -> LayerNorm hidden layers), orthogonal init (gain √2)."""

    def __init__(self, in_dim: int, hidden: list[int], members: int, activation: str = "mish") -> None:
        super().__init__()
        self.net = EnsembleMLP(members, in_dim, hidden, 1, act_first=True, activation=activation)
        for layer in self.net.params:
            for k in range(members):
                nn.init.orthogonal_(layer.weight.data[k], gain=2**0.5)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """All members' values ``[K, ...]``; ``detach`` records no gradients for the critic's parameters."""
        return self.net(z, detach=detach).squeeze(-1)

    def min(self, z: torch.Tensor, detach: bool = False) -> torch.Tensor:
        return self.forward(z, detach).min(0).values

    @fp32
    def bootstrap(self, z: torch.Tensor) -> torch.Tensor:
        """The min-ensemble value that ends an actor's objective: gradient to ``z`` only, and fp32 under bf16
        autocast. The actor's gradient flows through it; on CartPole, bf16 here left a 6% relative error in that
        gradient that fp32 brings to 2%, for one small forward and backward per update."""
        return self.min(z, detach=True)


def build_actor_critic(in_dim: int, action_dim: int, cfg, device: torch.device | str = "cpu"):
    """The actor and critic ensemble an actor-critic config (``pwm.config.ActorCriticConfig``) describes."""
    actor = StochasticActor(in_dim, action_dim, cfg.actor_hidden, cfg.init_logstd, cfg.min_logstd, cfg.activation)
    critic = CriticEnsemble(in_dim, cfg.critic_hidden, cfg.num_critics, cfg.activation)
    return actor.to(device), critic.to(device)
