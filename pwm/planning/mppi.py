"""TD-MPC2's MPPI planner in latent space, with a pluggable action prior and terminal value.

The algorithm and its settings are summarised in docs/tdmpc2_reference.md, section "MPPI".

With the world model's own policy prior and Q it is the TD-MPC2 baseline; with PWM's actor as the prior and
its critic as the terminal value it is PWM's planning evaluation (docs/pwm_reference.md, "Multitask setting").
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pwm.config import MPPIConfig
from pwm.models.world_model import WorldModel
from pwm.utils.precision import Precision


class MPPIPlanner:
    """Plans one action per call; keeps the previous mean as a warm start until :meth:`reset`.

    ``precision="bf16"`` evaluates the world model, prior and terminal value under bf16 autocast; their outputs
    (decoded rewards, values, actions) are fp32, so the elite selection and the softmax weights stay fp32.
    """

    def __init__(
        self,
        wm: WorldModel,
        cfg: MPPIConfig,
        discount: float,
        prior: Callable[[torch.Tensor], torch.Tensor],
        terminal_value: Callable[[torch.Tensor], torch.Tensor],
        action_mask: torch.Tensor | None = None,
        precision: str = "fp32",
    ) -> None:
        self.wm, self.cfg, self.discount = wm, cfg, discount
        self.prior, self.terminal_value = prior, terminal_value
        self.action_mask = action_mask
        self.precision = Precision(precision, next(wm.parameters()).device)
        self._prev_mean: torch.Tensor | None = None

    def reset(self) -> None:
        self._prev_mean = None

    def _returns(self, z: torch.Tensor, actions: torch.Tensor, task) -> torch.Tensor:
        """Discounted predicted rewards of ``actions [H, N, A]`` from ``z [N, L]`` plus the terminal value."""
        total = torch.zeros(z.shape[0], device=z.device)
        for t in range(actions.shape[0]):
            r = self.wm.decode(self.wm.reward(z, actions[t], task), self.cfg.reward_space)
            total += self.discount**t * r
            z = self.wm.next(z, actions[t], task)
        return (total + self.discount ** actions.shape[0] * self.terminal_value(z)).nan_to_num(0.0)

    def _prior_trajectories(self, z: torch.Tensor, task) -> torch.Tensor:
        cfg, acts = self.cfg, []
        z = z.expand(cfg.num_pi_trajs, -1)
        for t in range(cfg.horizon):
            acts.append(self.prior(z))
            if t < cfg.horizon - 1:
                z = self.wm.next(z, acts[-1], task)
        return torch.stack(acts)

    @torch.no_grad()
    def plan(self, obs: torch.Tensor, task: int | None = None, explore: bool = False) -> torch.Tensor:
        """The first action of the chosen plan for one observation ``obs [O]``."""
        with self.precision.autocast():
            return self._plan(obs, task, explore)

    def _plan(self, obs: torch.Tensor, task: int | None, explore: bool) -> torch.Tensor:
        cfg, device = self.cfg, obs.device
        action_dim = self.wm.cfg.action_dim
        z = self.wm.encode(obs.unsqueeze(0), task)
        pi_actions = self._prior_trajectories(z, task) if cfg.num_pi_trajs else None
        mean = torch.zeros(cfg.horizon, action_dim, device=device)
        std = torch.full((cfg.horizon, action_dim), cfg.max_std, device=device)
        if self._prev_mean is not None:
            mean[:-1] = self._prev_mean[1:]
        z_all = z.expand(cfg.num_samples, -1)
        for _ in range(cfg.iterations):
            noise = torch.randn(cfg.horizon, cfg.num_samples - cfg.num_pi_trajs, action_dim, device=device)
            sampled = (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp(-1, 1)
            actions = sampled if pi_actions is None else torch.cat([pi_actions, sampled], dim=1)
            if self.action_mask is not None:
                actions = actions * self.action_mask
            values = self._returns(z_all, actions, task)
            elite_values, idx = values.topk(cfg.num_elites)
            elites = actions[:, idx]
            score = torch.exp(cfg.temperature * (elite_values - elite_values.max()))
            score = score / score.sum()
            mean = (score.view(1, -1, 1) * elites).sum(1)
            std = (score.view(1, -1, 1) * (elites - mean.unsqueeze(1)).pow(2)).sum(1).sqrt()
            std = std.clamp(cfg.min_std, cfg.max_std)
            if self.action_mask is not None:
                mean, std = mean * self.action_mask, std * self.action_mask
        choice = torch.multinomial(score, 1).item()
        action = elites[0, choice]
        if explore:
            action = action + std[0] * torch.randn_like(action)
        self._prev_mean = mean
        return action.clamp(-1, 1)
