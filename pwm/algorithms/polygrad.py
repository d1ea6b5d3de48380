"""PolyGRAD (Rigter, Yamada, Posner 2023, arXiv 2312.08533) on the algorithm contract: a trajectory-diffusion world
model whose imagined actions are guided by the policy's score, and on-policy A2C with GAE on its imagined
trajectories.

One ``update(buffer)`` (the runner calls it every ``env_steps_per_update`` real steps) is ``denoiser_updates``
denoiser steps on replay windows, then, once the denoiser has had ``pretrain_denoiser`` steps, one imagination of
``agent_batch`` trajectories with the EMA denoiser, one A2C step and one step of the guidance-scale tuner. The
runner refits the normaliser (``fit_normalizer``) after every real episode.

The actor's step size is controlled as the reference implementation's is: a line search towards a target update
size and a learned log learning rate (``pwm.algorithms.step_size_control``). Deviation (``docs/polygrad.md``): no
fp16 autocast.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from pwm.algorithms.base import Algorithm
from pwm.algorithms.step_size_control import LearnedLogLR, line_search
from pwm.config.polygrad import PolyGRADConfig
from pwm.data.trajectories import TrajectoryBuffer
from pwm.losses.a2c import actor_loss, alive_weights, critic_loss, gae
from pwm.models.diffusion import GaussianDiffusion
from pwm.models.gaussian_policy import Critic, GaussianPolicy
from pwm.models.trajectory_denoisers import make_denoiser
from pwm.models.trajectory_normalizer import TrajectoryNormalizer
from pwm.planning.guided_sampling import GuidanceSettings, Imagined, policy_guided_sample


def standardized_action_std(policy: GaussianPolicy, obs: torch.Tensor, actions: torch.Tensor) -> float:
    """Std over batch and time of ``(a - mu(s)) / sigma(s)``: 1 when the actions look like on-policy samples."""
    with torch.no_grad():
        dist = policy(obs)
        return float(((actions - dist.loc) / dist.scale).std())


def tune_guidance(log_scale: float, act_std: float, lr: float) -> float:
    """One SGD step on ``-log_g (act_std - 1)``: too spread actions (std > 1) raise g, which pulls them in."""
    return log_scale + lr * (act_std - 1.0)


class PolyGRAD(Algorithm):
    state_keys = (
        "denoiser", "ema_denoiser", "denoiser_opt", "normalizer", "actor", "critic", "target_critic", "actor_opt",
        "critic_opt", "log_guidance", "actor_step_size", "denoiser_steps", "agent_steps",
    )  # fmt: skip

    def __init__(self, obs_dim: int, action_dim: int, cfg: PolyGRADConfig, device: torch.device | str = "cpu"):
        self.cfg, self.obs_dim, self.action_dim = cfg, obs_dim, action_dim
        self.device = torch.device(device)
        x_dim = obs_dim + 2
        self.denoiser = make_denoiser(
            cfg.denoiser, cfg.horizon, x_dim, action_dim, cfg.denoiser_width, cfg.denoiser_blocks, cfg.denoiser_heads
        ).to(self.device)
        self.ema_denoiser = copy.deepcopy(self.denoiser).requires_grad_(False)
        self.denoiser_opt = torch.optim.Adam(self.denoiser.parameters(), lr=cfg.denoiser_lr)
        self.diffusion = GaussianDiffusion(cfg.diffusion_steps, cfg.tau).to(self.device)
        self.normalizer = TrajectoryNormalizer(x_dim, action_dim).to(self.device)
        self.actor = GaussianPolicy(obs_dim, action_dim, cfg.hidden, cfg.init_std, cfg.min_std).to(self.device)
        self.critic = Critic(obs_dim, cfg.hidden).to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.AdamW(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.AdamW(self.critic.parameters(), lr=cfg.critic_lr)
        self.log_guidance = math.log(cfg.guidance_scale)
        self.actor_step_size = LearnedLogLR(cfg.actor_lr, cfg.actor_lr_lr)
        self.denoiser_steps = self.agent_steps = 0

    # ---- the contract --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        dist = self.actor(obs.to(self.device).float())
        return (dist.loc if deterministic else dist.sample()).clamp(-1.0, 1.0)

    def update(self, data: TrajectoryBuffer) -> dict[str, float]:
        """``denoiser_updates`` denoiser steps, then (after the denoiser's pretraining) one imagined A2C step."""
        metrics: dict[str, float] = {}
        for _ in range(self.cfg.denoiser_updates):
            metrics["denoiser/loss"] = self.denoiser_step(*data.sample(self.cfg.denoiser_batch, self.cfg.horizon))
        if self.denoiser_steps >= self.cfg.pretrain_denoiser:
            starts = data.sample_starts(self.cfg.agent_batch, self.cfg.horizon).to(self.device)
            metrics.update(self.agent_step(self.imagine(starts)))
        return metrics

    # ---- world model ---------------------------------------------------------------------------------------------
    def fit_normalizer(self, data: TrajectoryBuffer) -> None:
        x, actions = data.all_steps()
        self.normalizer.fit(x.to(self.device), actions.to(self.device))

    def denoiser_step(self, x: torch.Tensor, actions: torch.Tensor) -> float:
        """One denoiser update on unnormalised windows; the EMA copy follows every ``ema_every`` steps."""
        n = self.normalizer
        loss = self.diffusion.loss(self.denoiser, n.norm_x(x.to(self.device)), n.norm_a(actions.to(self.device)))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"denoiser loss is {float(loss)}")
        self.denoiser_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.denoiser_opt.step()
        self.denoiser_steps += 1
        if self.denoiser_steps % self.cfg.ema_every == 0:
            self._update_ema()
        return float(loss.detach())

    @torch.no_grad()
    def _update_ema(self) -> None:
        warm = self.denoiser_steps < self.cfg.ema_start
        for ema, p in zip(self.ema_denoiser.parameters(), self.denoiser.parameters(), strict=True):
            ema.copy_(p) if warm else ema.lerp_(p, 1 - self.cfg.ema_decay)

    def guidance(self) -> GuidanceSettings:
        c = self.cfg
        return GuidanceSettings(
            c.guidance, math.exp(self.log_guidance), c.clip_std, c.clip_state_change, c.clip_below_t, c.action_noise
        )

    def imagine(self, starts: torch.Tensor, denoiser: nn.Module | None = None) -> Imagined:
        """Policy-guided trajectories of ``horizon`` steps from ``starts [B, O]`` (the EMA denoiser by default)."""
        return policy_guided_sample(
            self.diffusion, denoiser or self.ema_denoiser, self.normalizer, self.actor, starts, self.cfg.horizon,
            self.guidance(),
        )  # fmt: skip

    # ---- A2C -----------------------------------------------------------------------------------------------------
    def agent_step(self, traj: Imagined) -> dict[str, float]:
        """One critic and one actor step on an imagined batch, the step-size control and the guidance tuner."""
        c = self.cfg
        obs, actions, terminals = traj.obs.detach(), traj.actions.detach(), traj.terminals
        with torch.no_grad():
            self._polyak(self.target_critic, self.critic, c.target_critic_decay)
            adv, targets = gae(traj.rewards, terminals, self.target_critic(obs), c.gamma, c.gae_lambda)
        weights = alive_weights(terminals)
        closs = critic_loss(self.critic(obs[:, :-1]), targets, weights)
        self._step(self.critic_opt, self.critic, closs, c.critic_lr)
        metrics = self._actor_step(obs[:, :-1], actions[:, :-1], adv, weights)
        act_std = standardized_action_std(self.actor, obs, actions)
        if c.tune_guidance:
            self.log_guidance = tune_guidance(self.log_guidance, act_std, c.guidance_lr)
        self.agent_steps += 1
        return {
            **metrics, "critic/loss": float(closs.detach()), "imagine/reward": float(traj.rewards.mean()),
            "imagine/terminal": float(terminals.float().mean()), "guidance/act_std": act_std,
            "guidance/scale": math.exp(self.log_guidance),
        }  # fmt: skip

    def _actor_step(self, obs: torch.Tensor, actions: torch.Tensor, adv: torch.Tensor,
                    weights: torch.Tensor) -> dict[str, float]:  # fmt: skip
        """One actor step at the learned rate, the line search on its size, then the rate's own update."""
        c = self.cfg
        dist = self.actor(obs)
        log_prob = dist.log_prob(actions).sum(-1)
        loss = actor_loss(log_prob, dist.entropy().sum(-1), adv, weights, c.entropy_coef)
        before = copy.deepcopy(self.actor.state_dict()) if c.linesearch else None  # what a re-step restarts from
        self._step(self.actor_opt, self.actor, loss, self.actor_step_size.lr)
        old_log_prob = log_prob.detach()

        def update_size() -> float:
            with torch.no_grad():
                return float((self.actor(obs).log_prob(actions).sum(-1) - old_log_prob).abs().mean())

        first = size = update_size()
        steps = 1
        if c.linesearch:
            size, steps = line_search(
                self.actor_opt, self.actor, before, update_size, size, c.update_size, c.linesearch_tolerance,
                c.linesearch_ratio, c.actor_lr, c.linesearch_max_steps,
            )  # fmt: skip
        self.actor_step_size.adapt(first, c.update_size)
        return {
            "actor/loss": float(loss.detach()),
            "actor/update_size": size,
            "actor/first_update_size": first,
            "actor/linesearch_steps": steps,
            "actor/lr": self.actor_step_size.lr,
            "actor/std": float(dist.scale.detach().mean()),
        }

    def _step(self, opt: torch.optim.Optimizer, net: nn.Module, loss: torch.Tensor, lr: float) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{type(net).__name__} loss is {float(loss)}")
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), self.cfg.grad_clip)
        opt.step()

    @staticmethod
    def _polyak(target: nn.Module, source: nn.Module, decay: float) -> None:
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.lerp_(s, 1 - decay)
